package dag

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Kind is the kind of value a node outputs.
type Kind int

const (
	// KindAny is used in a Type to say the output kind is decided at run time.
	KindAny Kind = iota
	// KindBytes is an opaque byte stream (text, a document, a model reply).
	KindBytes
	// KindJSON is a single JSON value.
	KindJSON
	// KindTable is a stream of rows with named columns.
	KindTable
)

// String returns the kind's name as used in reports.
func (k Kind) String() string {
	switch k {
	case KindBytes:
		return "bytes"
	case KindJSON:
		return "json"
	case KindTable:
		return "table"
	default:
		return "any"
	}
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Row is one row of a table. A cell is one of: nil (empty), string, float64,
// int64, bool, time.Time or CellError. Rows handed to a RowWriter belong to
// the writer once written; rows returned by a RowReader stay valid after the
// next call to Next.
type Row []any

// CellError is a cell holding an error value from a spreadsheet, such as
// "#DIV/0!".
type CellError string

// RowReader reads the rows of a table one at a time. Next returns io.EOF
// after the last row. A RowReader is not safe for concurrent use and must be
// closed.
type RowReader interface {
	// Columns returns the column names.
	Columns() []string
	// Next returns the next row, or io.EOF at the end.
	Next(ctx context.Context) (Row, error)
	// Close releases the reader. Closing before io.EOF abandons the rest.
	Close() error
}

// RowWriter writes the rows of a table output.
type RowWriter interface {
	// Write appends one row. It may block while a streaming consumer catches up.
	Write(ctx context.Context, r Row) error
}

// Row encoding, used for materialised and spilled tables:
//
//	header: magic "DGT1", uvarint ncols, ncols x (uvarint len, bytes)
//	row:    uvarint ncells, ncells x cell
//	cell:   tag byte, payload
const tableMagic = "DGT1"

const (
	tagNil byte = iota
	tagString
	tagFloat
	tagInt
	tagTrue
	tagFalse
	tagTime
	tagError
)

// maxCellBytes bounds a single decoded string so that a corrupt table cannot
// ask for an absurd allocation.
const maxCellBytes = 256 << 20

// ErrCorruptTable is returned when a stored table cannot be decoded.
var ErrCorruptTable = errors.New("corrupt table encoding")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeHeader(b []byte, cols []string) []byte {
	b = append(b, tableMagic...)
	b = appendUvarint(b, uint64(len(cols)))
	for _, c := range cols {
		b = appendString(b, c)
	}
	return b
}

func encodeRow(b []byte, r Row) ([]byte, error) {
	b = appendUvarint(b, uint64(len(r)))
	for i, c := range r {
		switch v := c.(type) {
		case nil:
			b = append(b, tagNil)
		case string:
			b = append(b, tagString)
			b = appendString(b, v)
		case float64:
			b = append(b, tagFloat)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		case int64:
			b = append(b, tagInt)
			b = binary.AppendVarint(b, v)
		case int:
			b = append(b, tagInt)
			b = binary.AppendVarint(b, int64(v))
		case bool:
			if v {
				b = append(b, tagTrue)
			} else {
				b = append(b, tagFalse)
			}
		case time.Time:
			b = append(b, tagTime)
			b = binary.AppendVarint(b, v.UnixNano())
		case CellError:
			b = append(b, tagError)
			b = appendString(b, string(v))
		default:
			return b, fmt.Errorf("row cell %d: unsupported type %T", i, c)
		}
	}
	return b, nil
}

// rowSize is the encoded size of a row, used to account piped rows.
func rowSize(r Row) int64 {
	n := int64(binary.MaxVarintLen64)
	for _, c := range r {
		switch v := c.(type) {
		case string:
			n += int64(len(v)) + 3
		case CellError:
			n += int64(len(v)) + 3
		default:
			n += 9
		}
	}
	return n
}

// tableDecoder reads the row encoding from a byte stream.
type tableDecoder struct {
	r    *bufio.Reader
	c    io.Closer
	cols []string
	buf  []byte
}

func newTableDecoder(rc io.ReadCloser) (*tableDecoder, error) {
	d := &tableDecoder{r: bufio.NewReaderSize(rc, 64<<10), c: rc}
	magic := make([]byte, len(tableMagic))
	if _, err := io.ReadFull(d.r, magic); err != nil || string(magic) != tableMagic {
		rc.Close()
		return nil, fmt.Errorf("%w: bad header", ErrCorruptTable)
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil || n > 1<<20 {
		rc.Close()
		return nil, fmt.Errorf("%w: bad column count", ErrCorruptTable)
	}
	d.cols = make([]string, n)
	for i := range d.cols {
		s, err := d.readString()
		if err != nil {
			rc.Close()
			return nil, err
		}
		d.cols[i] = s
	}
	return d, nil
}

func (d *tableDecoder) readString() (string, error) {
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCorruptTable, err)
	}
	if n > maxCellBytes {
		return "", fmt.Errorf("%w: string of %d bytes", ErrCorruptTable, n)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return "", fmt.Errorf("%w: %v", ErrCorruptTable, err)
	}
	return string(b), nil
}

func (d *tableDecoder) Columns() []string { return d.cols }

func (d *tableDecoder) Next(ctx context.Context) (Row, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := binary.ReadUvarint(d.r)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptTable, err)
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("%w: row of %d cells", ErrCorruptTable, n)
	}
	row := make(Row, n)
	for i := range row {
		tag, err := d.r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptTable, err)
		}
		switch tag {
		case tagNil:
		case tagString:
			if row[i], err = d.readString(); err != nil {
				return nil, err
			}
		case tagError:
			s, err := d.readString()
			if err != nil {
				return nil, err
			}
			row[i] = CellError(s)
		case tagFloat:
			var b [8]byte
			if _, err := io.ReadFull(d.r, b[:]); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorruptTable, err)
			}
			row[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
		case tagInt:
			v, err := binary.ReadVarint(d.r)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorruptTable, err)
			}
			row[i] = v
		case tagTrue:
			row[i] = true
		case tagFalse:
			row[i] = false
		case tagTime:
			v, err := binary.ReadVarint(d.r)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorruptTable, err)
			}
			row[i] = time.Unix(0, v).UTC()
		default:
			return nil, fmt.Errorf("%w: unknown cell tag %d", ErrCorruptTable, tag)
		}
	}
	return row, nil
}

func (d *tableDecoder) Close() error { return d.c.Close() }

// RowMap returns the row as a map from column name to cell, for templates and
// JSON. Cells beyond the columns are named "col<N>".
func RowMap(cols []string, r Row) map[string]any {
	m := make(map[string]any, len(r))
	for i, c := range r {
		if i < len(cols) {
			m[cols[i]] = c
		} else {
			m[fmt.Sprintf("col%d", i+1)] = c
		}
	}
	return m
}
