package parsers

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
)

// openPath is the body of every Open* function: it opens path, builds a
// reader over the file with build (name is path unless set), and hands the
// file to the reader to close (keep), closing it itself when build fails.
func openPath[R any](path, kind string, name *string, build func(f *os.File, size int64) (R, error), keep func(R, io.Closer)) (R, error) {
	var zero R
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("parsers: open %s: %w", kind, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return zero, fmt.Errorf("parsers: open %s: %w", kind, err)
	}
	if *name == "" {
		*name = path
	}
	r, err := build(f, st.Size())
	if err != nil {
		f.Close()
		return zero, err
	}
	keep(r, f)
	return r, nil
}

// mainPart returns the officeDocument target of the package, or def.
func mainPart(ar *archive, lim Limits, def string) (string, error) {
	rels, err := readRels(ar, "_rels/.rels", lim)
	if err != nil {
		return "", err
	}
	for _, r := range rels {
		if strings.HasSuffix(r.typ, "/officeDocument") {
			return resolve("", r.target), nil
		}
	}
	return def, nil
}

// textCollector accumulates block text under the MaxCellBytes limit.
type textCollector struct {
	b    []byte
	lim  Limits
	file string
	part string
}

func (t *textCollector) add(s []byte) error {
	if int64(len(t.b)+len(s)) > t.lim.MaxCellBytes {
		return &LimitError{File: t.file, Part: t.part, Limit: "MaxCellBytes", Max: t.lim.MaxCellBytes, Got: int64(len(t.b) + len(s))}
	}
	t.b = append(t.b, s...)
	return nil
}

func (t *textCollector) addString(s string) error { return t.add([]byte(s)) }

func checkCtx(ctx context.Context, file string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("parsers: %s: %w", file, err)
	}
	return nil
}

// readRunText collects the text of the element just started (a paragraph
// or table cell): <t> character data, tabs and breaks; deleted text and
// field instructions are left out. Paragraph ends become newlines
// (trimmed at the end).
func readRunText(x *xmlStream, tc *textCollector) error {
	d := x.depth
	inT := false
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inT = true
			case "tab":
				if err := tc.addString("\t"); err != nil {
					return err
				}
			case "br", "cr":
				if err := tc.addString("\n"); err != nil {
					return err
				}
			case "delText", "instrText":
				if err := x.skip(); err != nil {
					return err
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inT = false
			case "p":
				if x.depth >= d {
					if err := tc.addString("\n"); err != nil {
						return err
					}
				}
			}
		case xml.CharData:
			if inT {
				if err := tc.add(t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func trimText(b []byte) string { return strings.TrimRight(string(b), "\n") }

// readRowCells reads the cells (<tc>) of the table row the stream is in,
// each cell's text trimmed, bounded by MaxCellsPerRow.
func readRowCells(x *xmlStream, tc *textCollector, lim Limits, file, part string) ([]string, error) {
	d := x.depth
	var cells []string
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "tc" {
			tc.b = tc.b[:0]
			if err := readRunText(x, tc); err != nil {
				return nil, err
			}
			if int64(len(cells)) >= lim.MaxCellsPerRow {
				return nil, &LimitError{File: file, Part: part, Limit: "MaxCellsPerRow", Max: lim.MaxCellsPerRow, Got: int64(len(cells)) + 1}
			}
			cells = append(cells, trimText(tc.b))
		}
	}
	return cells, nil
}
