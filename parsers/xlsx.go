package parsers

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MergeMode says how merged cell ranges appear in xlsx rows.
type MergeMode uint8

const (
	// MergeFill (the default) repeats a merged range's top-left value in
	// every cell of the range, on every row it spans. It costs one extra
	// decompression pass over each sheet (merges are stored after the
	// rows), with no XML decoding.
	MergeFill MergeMode = iota
	// MergeTopLeft leaves the other cells of a merged range empty, as
	// they are stored; no extra pass.
	MergeTopLeft
)

// XLSXOptions configure an XLSXReader. The zero value reads the first
// sheet, with no header row and merged ranges filled.
type XLSXOptions struct {
	Options
	// Sheet selects a sheet by name. Empty means SheetIndex.
	Sheet string
	// SheetIndex selects a sheet by 1-based position in the workbook;
	// 0 means the first sheet.
	SheetIndex int
	// AllSheets reads every sheet in workbook order (Sheet and SheetIndex
	// are then ignored); Row.Sheet tells them apart.
	AllSheets bool
	// HeaderRow is the 1-based row number of the header; rows above it
	// are skipped and Columns returns its texts. 0 means no header.
	HeaderRow int
	// Merged says how merged ranges are returned.
	Merged MergeMode
	// RawValues skips number-format rendering: Cell.Text of numbers is
	// the stored value and dates are returned as numbers.
	RawValues bool
}

type sheetRef struct {
	name string
	part string
}

// XLSXReader streams the rows of one or more worksheets of an xlsx file.
// Memory stays bounded whatever the file size: rows are decoded from the
// compressed part as they are read and a large shared-string table is
// spilled to a temporary file. Not safe for concurrent use; must be closed.
type XLSXReader struct {
	opts     XLSXOptions
	lim      Limits
	file     string
	closer   io.Closer
	ar       *archive
	sheets   []sheetRef
	todo     []sheetRef
	sst      *sharedStrings
	xf       []*numFmt // by cellXfs index
	date1904 bool

	cur     sheetRef
	rc      io.ReadCloser
	x       *xmlStream
	columns []string
	rows    int64
	merges  []mergeRange
	active  []*mergeRange
	nextM   int
	done    bool
	pending *Row

	vbuf, tbuf []byte
}

type mergeRange struct {
	r1, c1, r2, c2 int
	val            Cell
}

// OpenXLSX opens the xlsx file at path.
func OpenXLSX(ctx context.Context, path string, opts XLSXOptions) (*XLSXReader, error) {
	return openPath(path, "xlsx", &opts.Name, func(f *os.File, size int64) (*XLSXReader, error) {
		return NewXLSXReader(ctx, f, size, opts)
	}, func(r *XLSXReader, c io.Closer) { r.closer = c })
}

// NewXLSXReader reads an xlsx file of the given size from ra. The caller
// keeps ownership of ra (Close does not close it).
func NewXLSXReader(ctx context.Context, ra io.ReaderAt, size int64, opts XLSXOptions) (*XLSXReader, error) {
	r := &XLSXReader{opts: opts, lim: opts.Limits.withDefaults(), file: opts.name()}
	var err error
	if r.ar, err = openArchive(ra, size, opts.Options, r.lim); err != nil {
		return nil, err
	}
	if err := r.readWorkbook(); err != nil {
		r.Close()
		return nil, err
	}
	switch {
	case opts.AllSheets:
		r.todo = append(r.todo, r.sheets...)
	case opts.Sheet != "":
		for _, s := range r.sheets {
			if s.name == opts.Sheet {
				r.todo = []sheetRef{s}
			}
		}
		if r.todo == nil {
			r.Close()
			return nil, fmt.Errorf("%w: %s has no sheet %q (sheets: %s)", ErrNoSheet, r.file, opts.Sheet, strings.Join(r.Sheets(), ", "))
		}
	default:
		i := max(opts.SheetIndex, 1)
		if i > len(r.sheets) {
			r.Close()
			return nil, fmt.Errorf("%w: %s has %d sheets, no sheet %d", ErrNoSheet, r.file, len(r.sheets), i)
		}
		r.todo = []sheetRef{r.sheets[i-1]}
	}
	if err := r.nextSheet(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Sheets returns the names of the workbook's sheets in order.
func (r *XLSXReader) Sheets() []string {
	out := make([]string, len(r.sheets))
	for i, s := range r.sheets {
		out[i] = s.name
	}
	return out
}

// Columns returns the header row of the current sheet (nil without
// XLSXOptions.HeaderRow).
func (r *XLSXReader) Columns() []string { return r.columns }

// SharedStringsSpilled reports whether the shared-string table was spilled
// to a temporary file.
func (r *XLSXReader) SharedStringsSpilled() bool { return r.sst != nil && r.sst.spilled() }

// Close releases the reader: the open part, the temporary shared-string
// files and, for OpenXLSX, the file.
func (r *XLSXReader) Close() error {
	var errs []error
	if r.rc != nil {
		errs = append(errs, r.rc.Close())
		r.rc = nil
	}
	if r.sst != nil {
		errs = append(errs, r.sst.close())
		r.sst = nil
	}
	if r.closer != nil {
		errs = append(errs, r.closer.Close())
		r.closer = nil
	}
	r.done = true
	return errors.Join(errs...)
}

func (r *XLSXReader) readWorkbook() error {
	rels, err := r.readRels("xl/_rels/workbook.xml.rels")
	if err != nil {
		return err
	}
	const part = "xl/workbook.xml"
	rc, err := r.ar.open(part)
	if err != nil {
		return err
	}
	defer rc.Close()
	x := newXMLStream(rc, r.file, part, r.lim)
	for {
		tok, err := x.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "workbookPr":
			v := attr(se, "date1904")
			r.date1904 = v == "1" || v == "true"
		case "sheet":
			target, ok := rels[relID(se)]
			if !ok {
				return corruptf(r.file, part, "sheet %q has no relationship", attr(se, "name"))
			}
			if len(r.sheets) >= 65536 {
				return &LimitError{File: r.file, Part: part, Limit: "sheets", Max: 65536, Got: 65537}
			}
			r.sheets = append(r.sheets, sheetRef{name: attr(se, "name"), part: resolve(part, target.target)})
		}
	}
	if len(r.sheets) == 0 {
		return corruptf(r.file, part, "no sheets")
	}
	for _, rel := range rels {
		switch {
		case strings.HasSuffix(rel.typ, "/sharedStrings"):
			p := resolve(part, rel.target)
			if !r.ar.has(p) {
				continue
			}
			src, err := r.ar.open(p)
			if err != nil {
				return err
			}
			r.sst, err = readSharedStrings(src, r.file, p, r.lim, r.opts.Options)
			src.Close()
			if err != nil {
				return err
			}
		case strings.HasSuffix(rel.typ, "/styles") && !r.opts.RawValues:
			p := resolve(part, rel.target)
			if !r.ar.has(p) {
				continue
			}
			if err := r.readStyles(p); err != nil {
				return err
			}
		}
	}
	return nil
}

type rel struct{ target, typ string }

func (r *XLSXReader) readRels(part string) (map[string]rel, error) {
	return readRels(r.ar, part, r.lim)
}

func readRels(ar *archive, part string, lim Limits) (map[string]rel, error) {
	out := map[string]rel{}
	if !ar.has(part) {
		return out, nil
	}
	rc, err := ar.open(part)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	x := newXMLStream(rc, ar.file, part, lim)
	for {
		tok, err := x.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Relationship" {
			if len(out) >= 1_000_000 {
				return nil, &LimitError{File: ar.file, Part: part, Limit: "relationships", Max: 1_000_000, Got: 1_000_001}
			}
			if attr(se, "TargetMode") == "External" {
				continue
			}
			out[attr(se, "Id")] = rel{target: attr(se, "Target"), typ: attr(se, "Type")}
		}
	}
}

func (r *XLSXReader) readStyles(part string) error {
	rc, err := r.ar.open(part)
	if err != nil {
		return err
	}
	defer rc.Close()
	x := newXMLStream(rc, r.file, part, r.lim)
	custom := map[int]string{}
	var xfIDs []int
	inCellXfs := false
	for {
		tok, err := x.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "numFmt":
				id, _ := strconv.Atoi(attr(t, "numFmtId"))
				custom[id] = attr(t, "formatCode")
			case "cellXfs":
				inCellXfs = true
			case "xf":
				if inCellXfs {
					id, _ := strconv.Atoi(attr(t, "numFmtId"))
					if len(xfIDs) > 1_000_000 {
						return &LimitError{File: r.file, Part: part, Limit: "cellXfs", Max: 1_000_000, Got: 1_000_001}
					}
					xfIDs = append(xfIDs, id)
				}
			}
		case xml.EndElement:
			if t.Name.Local == "cellXfs" {
				inCellXfs = false
			}
		}
	}
	compiled := map[int]*numFmt{}
	r.xf = make([]*numFmt, len(xfIDs))
	for i, id := range xfIDs {
		if f, ok := compiled[id]; ok {
			r.xf[i] = f
			continue
		}
		code, ok := custom[id]
		if !ok {
			code = builtinNumFmts[id]
		}
		f := compileNumFmt(code)
		compiled[id] = f
		r.xf[i] = f
	}
	return nil
}

// nextSheet opens the next sheet of the queue and reads its header row.
func (r *XLSXReader) nextSheet(ctx context.Context) error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if len(r.todo) == 0 {
		r.done = true
		return nil
	}
	r.cur, r.todo = r.todo[0], r.todo[1:]
	r.columns, r.merges, r.active, r.nextM = nil, nil, nil, 0
	if r.opts.Merged == MergeFill {
		if err := r.scanMerges(); err != nil {
			return err
		}
	}
	rc, err := r.ar.open(r.cur.part)
	if err != nil {
		return err
	}
	r.rc = rc
	r.x = newXMLStream(rc, r.file, r.cur.part, r.lim)
	if r.opts.HeaderRow > 0 {
		for {
			row, err := r.readRow(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if row.Index >= r.opts.HeaderRow {
				if row.Index == r.opts.HeaderRow {
					r.columns = row.Strings()
					r.rows--
				} else {
					r.pending = &row
				}
				break
			}
			r.rows--
		}
	}
	return nil
}

// Next returns the next row, or io.EOF after the last row of the last
// selected sheet. Rows without any cell are not returned; Row.Index is the
// row number in the sheet.
func (r *XLSXReader) Next(ctx context.Context) (Row, error) {
	for {
		if r.done {
			return Row{}, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return Row{}, fmt.Errorf("parsers: xlsx %s: %w", r.file, err)
		}
		if r.pending != nil {
			row := *r.pending
			r.pending = nil
			return row, nil
		}
		row, err := r.readRow(ctx)
		if err == io.EOF {
			if err := r.nextSheet(ctx); err != nil {
				return Row{}, err
			}
			continue
		}
		if err != nil {
			return Row{}, err
		}
		return row, nil
	}
}
