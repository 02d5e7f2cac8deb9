package parsers

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
)

// CSVOptions configure a CSVReader. The zero value reads RFC 4180 CSV
// (comma, double quote) without a header row.
type CSVOptions struct {
	Options
	// Delimiter separates fields; 0 means ','. Must be an ASCII character.
	Delimiter byte
	// Quote encloses fields that contain delimiters, quotes or newlines
	// (a quote inside is doubled); 0 means '"'. NoQuote turns quoting off.
	Quote byte
	// NoQuote treats quote characters as ordinary text.
	NoQuote bool
	// Comment, if not 0, starts a comment line that is skipped.
	Comment byte
	// Header makes the first record the header returned by Columns.
	Header bool
	// TrimSpace removes leading and trailing spaces and tabs of unquoted fields.
	TrimSpace bool
}

// Validate reports option errors.
func (o CSVOptions) Validate() error {
	d, q := o.delim(), o.quote()
	if d >= 0x80 || d == '\n' || d == '\r' {
		return fmt.Errorf("parsers: csv: invalid Delimiter %q", d)
	}
	if !o.NoQuote && (q >= 0x80 || q == d || q == '\n' || q == '\r') {
		return fmt.Errorf("parsers: csv: invalid Quote %q", q)
	}
	if o.Comment != 0 && (o.Comment == d || (!o.NoQuote && o.Comment == q) || o.Comment >= 0x80) {
		return fmt.Errorf("parsers: csv: invalid Comment %q", o.Comment)
	}
	return nil
}

func (o CSVOptions) delim() byte {
	if o.Delimiter == 0 {
		return ','
	}
	return o.Delimiter
}

func (o CSVOptions) quote() byte {
	if o.Quote == 0 {
		return '"'
	}
	return o.Quote
}

// CSVReader streams the records of delimited text. Memory is bounded by
// MaxCellBytes and MaxCellsPerRow whatever the input: a field is never
// buffered past its limit. Cells are KindString, or KindEmpty for empty
// fields. Not safe for concurrent use; must be closed.
type CSVReader struct {
	opts    CSVOptions
	lim     Limits
	file    string
	br      *bufio.Reader
	closer  io.Closer
	columns []string
	rec     int64
	line    int64
	field   []byte
	done    bool
	d, q    byte
}

// OpenCSV opens the csv file at path.
func OpenCSV(ctx context.Context, path string, opts CSVOptions) (*CSVReader, error) {
	return openPath(path, "csv", &opts.Name, func(f *os.File, _ int64) (*CSVReader, error) {
		return NewCSVReader(ctx, f, opts)
	}, func(r *CSVReader, c io.Closer) { r.closer = c })
}

// NewCSVReader reads csv from src; the caller keeps ownership of src.
func NewCSVReader(ctx context.Context, src io.Reader, opts CSVOptions) (*CSVReader, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	lim := opts.Limits.withDefaults()
	r := &CSVReader{opts: opts, lim: lim, file: opts.name(), br: bufio.NewReaderSize(src, 64<<10), line: 1, d: opts.delim(), q: opts.quote()}
	if opts.Header {
		row, err := r.read()
		if err != nil && err != io.EOF {
			return nil, err
		}
		r.columns = row.Strings()
		r.rec = 0
	}
	return r, nil
}

// Columns returns the header record (nil without CSVOptions.Header).
func (r *CSVReader) Columns() []string { return r.columns }

// Next returns the next record, or io.EOF. Row.Index is the 1-based record
// number after the header.
func (r *CSVReader) Next(ctx context.Context) (Row, error) {
	if err := checkCtx(ctx, r.file); err != nil {
		return Row{}, err
	}
	return r.read()
}

func (r *CSVReader) limitErr(limit string, max, got int64) error {
	return &LimitError{File: r.file, Part: "record " + strconv.FormatInt(r.rec, 10) + " (line " + strconv.FormatInt(r.line, 10) + ")", Limit: limit, Max: max, Got: got}
}

func (r *CSVReader) read() (Row, error) {
	if r.done {
		return Row{}, io.EOF
	}
	// skip comment lines and blank lines
	for {
		c, err := r.br.ReadByte()
		if err == io.EOF {
			r.done = true
			return Row{}, io.EOF
		}
		if err != nil {
			return Row{}, fmt.Errorf("parsers: csv %s: %w", r.file, err)
		}
		if c == '\n' {
			r.line++
			continue
		}
		if c == '\r' {
			continue
		}
		if r.opts.Comment != 0 && c == r.opts.Comment {
			if err := r.skipLine(); err != nil {
				return Row{}, err
			}
			continue
		}
		r.br.UnreadByte()
		break
	}
	r.rec++
	if r.rec > r.lim.MaxRows {
		return Row{}, r.limitErr("MaxRows", r.lim.MaxRows, r.rec)
	}
	row := Row{Index: int(r.rec)}
	if len(r.columns) > 0 {
		row.Cells = make([]Cell, 0, len(r.columns))
	}
	for {
		end, err := r.readField()
		if err != nil {
			return Row{}, err
		}
		if int64(len(row.Cells)) >= r.lim.MaxCellsPerRow {
			return Row{}, r.limitErr("MaxCellsPerRow", r.lim.MaxCellsPerRow, int64(len(row.Cells))+1)
		}
		if len(r.field) == 0 {
			row.Cells = append(row.Cells, Cell{})
		} else {
			row.Cells = append(row.Cells, Cell{Kind: KindString, Text: string(r.field)})
		}
		if end {
			return row, nil
		}
	}
}

func (r *CSVReader) skipLine() error {
	for {
		c, err := r.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("parsers: csv %s: %w", r.file, err)
		}
		if c == '\n' {
			r.line++
			return nil
		}
	}
}

func (r *CSVReader) add(c byte) error {
	if int64(len(r.field)) >= r.lim.MaxCellBytes {
		return r.limitErr("MaxCellBytes", r.lim.MaxCellBytes, int64(len(r.field))+1)
	}
	r.field = append(r.field, c)
	return nil
}

// readField reads one field into r.field; end reports the end of the record.
func (r *CSVReader) readField() (end bool, err error) {
	r.field = r.field[:0]
	c, err := r.br.ReadByte()
	if err == io.EOF {
		r.done = true
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("parsers: csv %s: %w", r.file, err)
	}
	if r.opts.TrimSpace {
		for c == ' ' || c == '\t' {
			if c, err = r.br.ReadByte(); err == io.EOF {
				r.done = true
				return true, nil
			}
		}
	}
	if !r.opts.NoQuote && c == r.q {
		startLine := r.line
		for {
			c, err = r.br.ReadByte()
			if err == io.EOF {
				return false, corruptf(r.file, "record "+strconv.FormatInt(r.rec, 10), "quoted field opened on line %d is not closed", startLine)
			}
			if err != nil {
				return false, fmt.Errorf("parsers: csv %s: %w", r.file, err)
			}
			if c == r.q {
				n, err := r.br.ReadByte()
				if err == io.EOF {
					r.done = true
					return true, nil
				}
				if n == r.q {
					if err := r.add(c); err != nil {
						return false, err
					}
					continue
				}
				c = n
				break
			}
			if c == '\n' {
				r.line++
			}
			if err := r.add(c); err != nil {
				return false, err
			}
		}
		// after the closing quote: text until delimiter/newline is kept (lenient)
	}
	for {
		switch c {
		case r.d:
			r.trim()
			return false, nil
		case '\n':
			r.line++
			r.trim()
			return true, nil
		case '\r':
			n, err := r.br.ReadByte()
			if err == nil && n != '\n' {
				r.br.UnreadByte()
			}
			if err == nil && n == '\n' {
				r.line++
			}
			r.trim()
			return true, nil
		default:
			if err := r.add(c); err != nil {
				return false, err
			}
		}
		c, err = r.br.ReadByte()
		if err == io.EOF {
			r.done = true
			r.trim()
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("parsers: csv %s: %w", r.file, err)
		}
	}
}

func (r *CSVReader) trim() {
	if r.opts.TrimSpace {
		r.field = bytes.TrimRight(r.field, " \t")
	}
}

// Close releases the reader (and the file, for OpenCSV).
func (r *CSVReader) Close() error {
	r.done = true
	if r.closer != nil {
		err := r.closer.Close()
		r.closer = nil
		return err
	}
	return nil
}
