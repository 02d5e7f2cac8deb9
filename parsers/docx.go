package parsers

import (
	"context"
	"encoding/xml"
	"io"
	"os"
	"strings"
)

// DOCXReader streams the paragraphs and table rows of a docx body in
// document order, decoding word/document.xml token by token. Embedded
// media are never read. Not safe for concurrent use; must be closed.
type DOCXReader struct {
	lim    Limits
	file   string
	part   string
	closer io.Closer
	rc     io.ReadCloser
	x      *xmlStream
	elem   int // body elements seen
	table  int
	row    int
	inTbl  int // depth of the open top-level table, 0 if none
	done   bool
	tc     textCollector
}

// OpenDOCX opens the docx file at path.
func OpenDOCX(ctx context.Context, path string, opts Options) (*DOCXReader, error) {
	return openPath(path, "docx", &opts.Name, func(f *os.File, size int64) (*DOCXReader, error) {
		return NewDOCXReader(ctx, f, size, opts)
	}, func(r *DOCXReader, c io.Closer) { r.closer = c })
}

// NewDOCXReader reads a docx of the given size from ra; the caller keeps
// ownership of ra.
func NewDOCXReader(ctx context.Context, ra io.ReaderAt, size int64, opts Options) (*DOCXReader, error) {
	lim := opts.Limits.withDefaults()
	r := &DOCXReader{lim: lim, file: opts.name()}
	ar, err := openArchive(ra, size, opts, lim)
	if err != nil {
		return nil, err
	}
	if r.part, err = mainPart(ar, lim, "word/document.xml"); err != nil {
		return nil, err
	}
	if r.rc, err = ar.open(r.part); err != nil {
		return nil, err
	}
	r.x = newXMLStream(r.rc, r.file, r.part, lim)
	r.tc = textCollector{lim: lim, file: r.file, part: r.part}
	return r, nil
}

// Next returns the next paragraph (BlockParagraph or BlockHeading) or table
// row (BlockTableRow), or io.EOF. Empty paragraphs are skipped.
// Location.Paragraph is the 1-based index of the body element (paragraph
// or table) the block belongs to.
func (r *DOCXReader) Next(ctx context.Context) (Block, error) {
	if err := checkCtx(ctx, r.file); err != nil {
		return Block{}, err
	}
	for !r.done {
		tok, err := r.x.next()
		if err == io.EOF {
			r.done = true
			break
		}
		if err != nil {
			return Block{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "p":
				if r.inTbl > 0 {
					continue
				}
				r.elem++
				b, err := r.paragraph()
				if err != nil {
					return Block{}, err
				}
				if b.Text != "" {
					return b, nil
				}
			case "tbl":
				if r.inTbl == 0 {
					r.elem++
					r.table++
					r.row = 0
					r.inTbl = int(r.x.depth)
				}
			case "tr":
				if r.inTbl > 0 && int(r.x.depth) == r.inTbl+1 {
					return r.tableRow()
				}
			case "sectPr", "bookmarkStart", "bookmarkEnd":
				if err := r.x.skip(); err != nil {
					return Block{}, err
				}
			}
		case xml.EndElement:
			if t.Name.Local == "tbl" && r.inTbl > 0 && int(r.x.depth) == r.inTbl-1 {
				r.inTbl = 0
			}
		}
	}
	return Block{}, io.EOF
}

func (r *DOCXReader) paragraph() (Block, error) {
	x := r.x
	d := x.depth
	r.tc.b = r.tc.b[:0]
	kind := BlockParagraph
	inT := false
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return Block{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "pStyle":
				v := attr(t, "val")
				if strings.HasPrefix(v, "Heading") || v == "Title" || v == "Subtitle" {
					kind = BlockHeading
				}
			case "t":
				inT = true
			case "tab":
				err = r.tc.addString("\t")
			case "br", "cr":
				err = r.tc.addString("\n")
			case "delText", "instrText":
				err = x.skip()
			}
		case xml.EndElement:
			if t.Name.Local == "t" {
				inT = false
			}
		case xml.CharData:
			if inT {
				err = r.tc.add(t)
			}
		}
		if err != nil {
			return Block{}, err
		}
	}
	return Block{Kind: kind, Text: string(r.tc.b), Loc: Location{Paragraph: r.elem}}, nil
}

func (r *DOCXReader) tableRow() (Block, error) {
	r.row++
	cells, err := readRowCells(r.x, &r.tc, r.lim, r.file, r.part)
	if err != nil {
		return Block{}, err
	}
	return Block{Kind: BlockTableRow, Text: strings.Join(cells, "\t"), Cells: cells, Loc: Location{Paragraph: r.elem, Table: r.table, Row: r.row}}, nil
}

// Close releases the reader (and the file, for OpenDOCX).
func (r *DOCXReader) Close() error {
	var err error
	if r.rc != nil {
		err = r.rc.Close()
		r.rc = nil
	}
	if r.closer != nil {
		if cerr := r.closer.Close(); err == nil {
			err = cerr
		}
		r.closer = nil
	}
	r.done = true
	return err
}
