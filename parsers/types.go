package parsers

import (
	"context"
	"strconv"
	"time"
)

// Kind is the type of a Cell's value.
type Kind uint8

// Cell kinds.
const (
	KindEmpty  Kind = iota // no value
	KindString             // text, in Cell.Text
	KindNumber             // number, in Cell.Number
	KindBool               // boolean, in Cell.Bool
	KindDate               // date/time, in Cell.Time (and the serial in Cell.Number)
	KindError              // spreadsheet error such as #DIV/0!, in Cell.Text
)

var kindNames = [...]string{"empty", "string", "number", "bool", "date", "error"}

// String returns the lower-case name of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Cell is one typed value of a table row.
type Cell struct {
	Kind   Kind
	Text   string    // the value as displayed: string value, formatted number/date, error code
	Number float64   // KindNumber and KindDate (Excel serial)
	Bool   bool      // KindBool
	Time   time.Time // KindDate, in UTC
}

// String returns the display text of the cell.
func (c Cell) String() string { return c.Text }

// Row is one row of a table.
type Row struct {
	Sheet string // xlsx sheet name; empty for csv
	Index int    // 1-based row number in the source (xlsx row number, csv record number)
	Cells []Cell
}

// Strings returns the display texts of the row's cells.
func (r Row) Strings() []string {
	out := make([]string, len(r.Cells))
	for i, c := range r.Cells {
		out[i] = c.Text
	}
	return out
}

// TableReader streams the rows of a table.
type TableReader interface {
	// Columns returns the header row's texts, or nil when no header row
	// was requested. It is valid after the reader is opened.
	Columns() []string
	// Next returns the next row, or io.EOF after the last one. The
	// returned Row and its Cells are owned by the caller.
	Next(ctx context.Context) (Row, error)
	// Close releases the reader's resources (including temporary files).
	Close() error
}

// BlockKind says what a text Block is.
type BlockKind uint8

// Block kinds.
const (
	BlockParagraph BlockKind = iota // a docx paragraph
	BlockHeading                    // a docx paragraph with a heading or title style
	BlockTableRow                   // a table row (docx, pptx); cells in Block.Cells
	BlockPage                       // the text of one PDF page
	BlockTitle                      // a pptx title placeholder
	BlockBody                       // other pptx slide text (body, text boxes)
	BlockNotes                      // pptx speaker notes
)

var blockKindNames = [...]string{"paragraph", "heading", "table-row", "page", "title", "body", "notes"}

// String returns the name of k.
func (k BlockKind) String() string {
	if int(k) < len(blockKindNames) {
		return blockKindNames[k]
	}
	return "block(" + strconv.Itoa(int(k)) + ")"
}

// Location says where a Block comes from. Numbers are 1-based; zero means
// not applicable.
type Location struct {
	Page      int // pdf page
	Slide     int // pptx slide
	Paragraph int // docx: index of the body element (paragraph or table); pptx: shape index on the slide
	Table     int // docx/pptx: table number within the document/slide
	Row       int // table row within the table
}

// Block is one piece of document text.
type Block struct {
	Kind  BlockKind
	Text  string   // the text; table rows have their cells joined by tabs
	Cells []string // BlockTableRow only
	Loc   Location
}

// DocumentReader streams the text blocks of a document.
type DocumentReader interface {
	// Next returns the next block, or io.EOF after the last one.
	Next(ctx context.Context) (Block, error)
	// Close releases the reader's resources.
	Close() error
}
