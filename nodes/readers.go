package nodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/parsers"
	"github.com/xuri/excelize/v2"
)

// cellValue converts a parsed cell to a dag row cell.
func cellValue(c parsers.Cell) any {
	switch c.Kind {
	case parsers.KindString:
		return c.Text
	case parsers.KindNumber:
		return c.Number
	case parsers.KindBool:
		return c.Bool
	case parsers.KindDate:
		return c.Time
	case parsers.KindError:
		return dag.CellError(c.Text)
	default:
		return nil
	}
}

// cellString renders a row cell as text.
func cellString(c any) string {
	switch v := c.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 {
			return v.Format("2006-01-02")
		}
		return v.Format(time.RFC3339)
	case dag.CellError:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// tableSource is the shape shared by the parsers' table readers.
type tableSource interface {
	Columns() []string
	Next(ctx context.Context) (parsers.Row, error)
	Close() error
}

// copyTable streams a table reader into a table output. When the reader
// has no header, columns are named col1..colN after the widest of the first
// row.
func copyTable(ctx context.Context, src tableSource, out *dag.Output, extraSheet bool) error {
	defer src.Close()
	cols := src.Columns()
	first, err := src.Next(ctx)
	if err != nil && err != io.EOF {
		return permanentParse(err)
	}
	if cols == nil {
		for i := range first.Cells {
			cols = append(cols, "col"+strconv.Itoa(i+1))
		}
	}
	if extraSheet {
		cols = append([]string{"sheet"}, cols...)
	}
	w, err2 := out.Table(cols)
	if err2 != nil {
		return err2
	}
	if err == io.EOF {
		return nil
	}
	rows := int64(0)
	for {
		row := make(dag.Row, 0, len(first.Cells)+1)
		if extraSheet {
			row = append(row, first.Sheet)
		}
		for _, c := range first.Cells {
			row = append(row, cellValue(c))
		}
		if err := w.Write(ctx, row); err != nil {
			return err
		}
		rows++
		first, err = src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return permanentParse(err)
		}
	}
	if ni := dag.NodeInfoFrom(ctx); ni != nil {
		ni.SetMetric("rows", rows)
	}
	return nil
}

// permanentParse marks parse errors (limits, corrupt files) as not worth a
// retry.
func permanentParse(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return dag.Permanent(err)
}

type limitParams struct {
	MaxFileBytes dag.ByteSize `json:"max_file_bytes"`
	MaxRows      int64        `json:"max_rows"`
	MaxCellBytes dag.ByteSize `json:"max_cell_bytes"`
}

func (l limitParams) apply(o *parsers.Options, name string) {
	o.Name = name
	o.Limits = parsers.DefaultLimits()
	if l.MaxFileBytes > 0 {
		o.Limits.MaxFileSize = int64(l.MaxFileBytes)
		o.Limits.MaxTotalSize = int64(l.MaxFileBytes)
	}
	if l.MaxRows > 0 {
		o.Limits.MaxRows = l.MaxRows
	}
	if l.MaxCellBytes > 0 {
		o.Limits.MaxCellBytes = int64(l.MaxCellBytes)
	}
}

var limitDocs = []dag.Param{
	{Name: "max_file_bytes", Type: "bytesize", Doc: "limit on the file size and the total uncompressed size"},
	{Name: "max_rows", Type: "integer", Doc: "limit on rows/blocks read"},
	{Name: "max_cell_bytes", Type: "bytesize", Doc: "limit on one cell or text block"},
}

type csvParams struct {
	Path      string `json:"path"`
	Delimiter string `json:"delimiter"`
	Quote     string `json:"quote"`
	NoQuote   bool   `json:"no_quote"`
	Header    *bool  `json:"header"`
	TrimSpace bool   `json:"trim_space"`
	Comment   string `json:"comment"`
	limitParams
}

func oneByte(field, s string, errs *[]error) byte {
	switch {
	case s == "":
		return 0
	case s == `\t`:
		return '\t'
	case len(s) == 1:
		return s[0]
	}
	*errs = append(*errs, &dag.ParamError{Field: field, Message: fmt.Sprintf("must be one ASCII character, got %q", s)})
	return 0
}

func csvReadType(opts *Options) dag.Type {
	return dag.Type{
		Name:      "csv.read",
		Doc:       "Streams the rows of a CSV file (or of its single bytes input) as a table; the first record is the header unless header is false.",
		Output:    dag.KindTable,
		MaxInputs: 1,
		Params: append([]dag.Param{
			{Name: "path", Type: "string", Doc: "CSV file (relative to the workflow file); omit to parse the input instead"},
			{Name: "delimiter", Type: "string", Default: ",", Doc: `field delimiter, one character ("\t" for tab)`},
			{Name: "quote", Type: "string", Default: `"`, Doc: "quote character"},
			{Name: "no_quote", Type: "boolean", Doc: "treat quotes as text"},
			{Name: "header", Type: "boolean", Default: "true", Doc: "first record names the columns"},
			{Name: "trim_space", Type: "boolean", Doc: "trim unquoted fields"},
			{Name: "comment", Type: "string", Doc: "comment line prefix character"},
		}, limitDocs...),
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p csvParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			var errs []error
			co := parsers.CSVOptions{
				Delimiter: oneByte("delimiter", p.Delimiter, &errs), Quote: oneByte("quote", p.Quote, &errs),
				Comment: oneByte("comment", p.Comment, &errs), NoQuote: p.NoQuote, TrimSpace: p.TrimSpace,
				Header: p.Header == nil || *p.Header,
			}
			if p.Path == "" && len(spec.Inputs) == 0 {
				errs = append(errs, &dag.ParamError{Field: "path", Message: "required when the node has no input"})
			}
			if len(errs) == 0 {
				if err := co.Validate(); err != nil {
					errs = append(errs, &dag.ParamError{Field: "delimiter", Message: err.Error()})
				}
			}
			if len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var src io.Reader
				name := p.Path
				if p.Path != "" {
					f, err := os.Open(opts.path(p.Path))
					if err != nil {
						return dag.Permanent(err)
					}
					defer f.Close()
					src, name = f, opts.path(p.Path)
				} else {
					rc, err := in.At(0).Open(ctx)
					if err != nil {
						return err
					}
					defer rc.Close()
					src, name = rc, "input "+in.At(0).NodeID()
				}
				o := co
				p.limitParams.apply(&o.Options, name)
				if opts.WholeFile {
					return wholeTable(ctx, out, func() (tableSource, error) {
						b, err := io.ReadAll(src)
						if err != nil {
							return nil, err
						}
						return parsers.NewCSVReader(ctx, bytesReader(b), o)
					})
				}
				r, err := parsers.NewCSVReader(ctx, src, o)
				if err != nil {
					return permanentParse(err)
				}
				return copyTable(ctx, r, out, false)
			}), nil
		},
	}
}

type xlsxParams struct {
	Path       string `json:"path"`
	Sheet      string `json:"sheet"`
	SheetIndex int    `json:"sheet_index"`
	AllSheets  bool   `json:"all_sheets"`
	HeaderRow  *int   `json:"header_row"`
	RawValues  bool   `json:"raw_values"`
	limitParams
}

func xlsxReadType(opts *Options) dag.Type {
	return dag.Type{
		Name:   "xlsx.read",
		Doc:    "Streams the rows of an xlsx sheet as a table with typed cells (numbers, dates, booleans, strings, errors); merged cells filled; large shared-string tables kept on disk.",
		Output: dag.KindTable,
		Params: append([]dag.Param{
			{Name: "path", Type: "string", Required: true, Doc: "xlsx file, relative to the workflow file"},
			{Name: "sheet", Type: "string", Doc: "sheet name (default: the first sheet)"},
			{Name: "sheet_index", Type: "integer", Doc: "1-based sheet position"},
			{Name: "all_sheets", Type: "boolean", Doc: "read every sheet; adds a leading sheet column"},
			{Name: "header_row", Type: "integer", Default: "1", Doc: "1-based header row; 0 for none (columns col1..colN)"},
			{Name: "raw_values", Type: "boolean", Doc: "skip number-format rendering"},
		}, limitDocs...),
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p xlsxParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if err := dag.Require("path", p.Path); err != nil {
				return nil, err
			}
			hr := 1
			if p.HeaderRow != nil {
				hr = *p.HeaderRow
			}
			if hr < 0 || p.SheetIndex < 0 {
				return nil, &dag.ParamError{Field: "header_row", Message: "must be >= 0"}
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				path := opts.path(p.Path)
				if opts.WholeFile {
					return wholeXLSX(ctx, path, p.Sheet, hr, out)
				}
				xo := parsers.XLSXOptions{Sheet: p.Sheet, SheetIndex: p.SheetIndex, AllSheets: p.AllSheets, HeaderRow: hr, RawValues: p.RawValues}
				p.limitParams.apply(&xo.Options, path)
				r, err := parsers.OpenXLSX(ctx, path, xo)
				if err != nil {
					return permanentParse(err)
				}
				return copyTable(ctx, r, out, p.AllSheets)
			}), nil
		},
	}
}

// wholeXLSX reads a sheet the way the incident's workers did: the whole
// workbook into memory, every row materialised (excelize GetRows), then
// emitted. It exists for benchmarks.
func wholeXLSX(ctx context.Context, path, sheet string, headerRow int, out *dag.Output) error {
	f, err := excelize.OpenFile(path, excelize.Options{UnzipXMLSizeLimit: 1 << 40, UnzipSizeLimit: 1 << 40})
	if err != nil {
		return dag.Permanent(err)
	}
	defer f.Close()
	if sheet == "" {
		sheet = f.GetSheetName(0)
	}
	rows, err := f.GetRows(sheet)
	if err != nil {
		return dag.Permanent(err)
	}
	var cols []string
	if headerRow > 0 && len(rows) >= headerRow {
		cols = rows[headerRow-1]
		rows = rows[headerRow:]
	} else if len(rows) > 0 {
		for i := range rows[0] {
			cols = append(cols, "col"+strconv.Itoa(i+1))
		}
	}
	w, err := out.Table(cols)
	if err != nil {
		return err
	}
	for _, r := range rows {
		row := make(dag.Row, len(r))
		for i, c := range r {
			row[i] = c
		}
		if err := w.Write(ctx, row); err != nil {
			return err
		}
	}
	return nil
}

// wholeTable materialises every row before emitting any (incident mode).
func wholeTable(ctx context.Context, out *dag.Output, open func() (tableSource, error)) error {
	src, err := open()
	if err != nil {
		return permanentParse(err)
	}
	defer src.Close()
	var all []parsers.Row
	for {
		r, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return permanentParse(err)
		}
		all = append(all, r)
	}
	return copyTable(ctx, &sliceTable{cols: src.Columns(), rows: all}, out, false)
}

type sliceTable struct {
	cols []string
	rows []parsers.Row
}

func (s *sliceTable) Columns() []string { return s.cols }
func (s *sliceTable) Next(ctx context.Context) (parsers.Row, error) {
	if len(s.rows) == 0 {
		return parsers.Row{}, io.EOF
	}
	r := s.rows[0]
	s.rows = s.rows[1:]
	return r, nil
}
func (s *sliceTable) Close() error { return nil }

type docParams struct {
	Path string `json:"path"`
	limitParams
}

type docReader interface {
	Next(ctx context.Context) (parsers.Block, error)
	Close() error
}

// docReadType is a document reader node: open streams the file; with
// Options.WholeFile, newReader reads it from memory, all blocks first.
func docReadType[R docReader](opts *Options, name, doc, unit string,
	open func(ctx context.Context, path string, o parsers.Options) (R, error),
	newReader func(ctx context.Context, ra io.ReaderAt, size int64, o parsers.Options) (R, error)) dag.Type {
	return dag.Type{
		Name:   name,
		Doc:    doc,
		Output: dag.KindTable,
		Params: append([]dag.Param{
			{Name: "path", Type: "string", Required: true, Doc: "file to read, relative to the workflow file"},
		}, limitDocs...),
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p docParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if err := dag.Require("path", p.Path); err != nil {
				return nil, err
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				path := opts.path(p.Path)
				var o parsers.Options
				p.limitParams.apply(&o, path)
				var r docReader
				var err error
				if opts.WholeFile {
					r, err = wholeDoc(ctx, path, o, func(ra io.ReaderAt, n int64) (docReader, error) { return newReader(ctx, ra, n, o) })
				} else {
					r, err = open(ctx, path, o)
				}
				if err != nil {
					return permanentParse(err)
				}
				defer r.Close()
				w, err := out.Table([]string{unit, "kind", "text"})
				if err != nil {
					return err
				}
				var blocks int64
				for {
					b, err := r.Next(ctx)
					if err == io.EOF {
						break
					}
					if err != nil {
						return permanentParse(err)
					}
					loc := int64(b.Loc.Page + b.Loc.Slide)
					if unit == "paragraph" {
						loc = int64(b.Loc.Paragraph)
					}
					if err := w.Write(ctx, dag.Row{loc, b.Kind.String(), b.Text}); err != nil {
						return err
					}
					blocks++
				}
				if ni := dag.NodeInfoFrom(ctx); ni != nil {
					ni.SetMetric("blocks", blocks)
				}
				return nil
			}), nil
		},
	}
}

// wholeDoc reads the file into memory and every block into a slice before
// emitting (incident mode).
func wholeDoc(ctx context.Context, path string, o parsers.Options, mk func(ra io.ReaderAt, size int64) (docReader, error)) (docReader, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := mk(bytesReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var all []parsers.Block
	for {
		blk, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		all = append(all, blk)
	}
	return &sliceDoc{blocks: all}, nil
}

type sliceDoc struct{ blocks []parsers.Block }

func (s *sliceDoc) Next(ctx context.Context) (parsers.Block, error) {
	if len(s.blocks) == 0 {
		return parsers.Block{}, io.EOF
	}
	b := s.blocks[0]
	s.blocks = s.blocks[1:]
	return b, nil
}
func (s *sliceDoc) Close() error { return nil }

func pdfReadType(opts *Options) dag.Type {
	return docReadType(opts, "pdf.read", "Streams the text of a PDF page by page as a table (page, kind, text).", "page",
		parsers.OpenPDF, parsers.NewPDFReader)
}

func pptxReadType(opts *Options) dag.Type {
	return docReadType(opts, "pptx.read", "Streams slide text (titles, bodies, tables, notes) slide by slide as a table (slide, kind, text); media are skipped unread.", "slide",
		parsers.OpenPPTX, parsers.NewPPTXReader)
}

func docxReadType(opts *Options) dag.Type {
	return docReadType(opts, "docx.read", "Streams docx paragraphs and table rows as they come, as a table (paragraph, kind, text).", "paragraph",
		parsers.OpenDOCX, parsers.NewDOCXReader)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
