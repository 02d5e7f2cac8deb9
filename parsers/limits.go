package parsers

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Sentinel errors callers branch on.
var (
	// ErrLimit is matched (errors.Is) by every *LimitError: the input is
	// larger or deeper than a configured limit. Do not retry; the input
	// is rejected.
	ErrLimit = errors.New("parsers: limit exceeded")
	// ErrCorrupt is matched by errors about malformed input: truncated
	// archives, missing parts, bad XML, broken PDF objects.
	ErrCorrupt = errors.New("parsers: corrupt input")
	// ErrEncrypted is returned for password-protected inputs.
	ErrEncrypted = errors.New("parsers: encrypted input")
	// ErrNoSheet is returned when the requested xlsx sheet does not exist.
	ErrNoSheet = errors.New("parsers: no such sheet")
)

// LimitError reports that a configured limit was crossed.
type LimitError struct {
	File  string // input name (Options.Name or the file path)
	Part  string // zip part, PDF page/object or csv record, when known
	Limit string // the Limits field name, e.g. "MaxPartSize"
	Max   int64  // the configured limit
	Got   int64  // the value seen when reading stopped (at least Max+1 for sizes)
}

// Error implements error.
func (e *LimitError) Error() string {
	part := ""
	if e.Part != "" {
		part = " part " + e.Part
	}
	return fmt.Sprintf("parsers: %s%s: limit %s=%d exceeded (got %d)", e.File, part, e.Limit, e.Max, e.Got)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Limits bound what a reader accepts. The zero value of each field means
// its default (see DefaultLimits); a negative value disables that limit.
type Limits struct {
	MaxFileSize         int64   // bytes of the input file itself
	MaxTotalSize        int64   // total uncompressed bytes read from all zip parts
	MaxPartSize         int64   // uncompressed bytes of one zip part
	MaxCompressionRatio float64 // uncompressed/compressed size of a zip part (zip bombs); checked for parts over 1 MiB
	MaxRows             int64   // rows of a table (xlsx: per reader, all sheets; csv: records)
	MaxCellsPerRow      int64   // cells of one row (xlsx: highest column index)
	MaxCellBytes        int64   // bytes of one cell value or one text block
	MaxSharedStrings    int64   // entries of the xlsx shared-string table
	MaxSharedStringSize int64   // total bytes of the xlsx shared-string table
	MaxXMLDepth         int64   // XML element nesting depth
	MaxPDFStreamSize    int64   // decoded bytes of one PDF content stream
	MaxPDFPages         int64   // pages (and page-tree nodes) of a PDF
	MaxMergedCells      int64   // merged ranges of one xlsx sheet
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize:         2 << 30,
		MaxTotalSize:        8 << 30,
		MaxPartSize:         4 << 30,
		MaxCompressionRatio: 200,
		MaxRows:             10_000_000,
		MaxCellsPerRow:      16_384, // Excel's column limit
		MaxCellBytes:        4 << 20,
		MaxSharedStrings:    20_000_000,
		MaxSharedStringSize: 1 << 30,
		MaxXMLDepth:         128,
		MaxPDFStreamSize:    256 << 20,
		MaxPDFPages:         200_000,
		MaxMergedCells:      100_000,
	}
}

// withDefaults fills zero fields from DefaultLimits and turns negative
// fields into "no limit".
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	i64 := func(v *int64, def int64) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 1<<63 - 1
		}
	}
	i64(&l.MaxFileSize, d.MaxFileSize)
	i64(&l.MaxTotalSize, d.MaxTotalSize)
	i64(&l.MaxPartSize, d.MaxPartSize)
	i64(&l.MaxRows, d.MaxRows)
	i64(&l.MaxCellsPerRow, d.MaxCellsPerRow)
	i64(&l.MaxCellBytes, d.MaxCellBytes)
	i64(&l.MaxSharedStrings, d.MaxSharedStrings)
	i64(&l.MaxSharedStringSize, d.MaxSharedStringSize)
	i64(&l.MaxXMLDepth, d.MaxXMLDepth)
	i64(&l.MaxPDFStreamSize, d.MaxPDFStreamSize)
	i64(&l.MaxPDFPages, d.MaxPDFPages)
	i64(&l.MaxMergedCells, d.MaxMergedCells)
	switch {
	case l.MaxCompressionRatio == 0:
		l.MaxCompressionRatio = d.MaxCompressionRatio
	case l.MaxCompressionRatio < 0:
		l.MaxCompressionRatio = 1e300
	}
	return l
}

// Options configure every reader. The zero value is valid.
type Options struct {
	// Name identifies the input in errors; Open* functions default it to
	// the file path.
	Name string
	// Limits bound the input; zero fields take defaults.
	Limits Limits
	// TempDir is where large xlsx shared-string tables spill; empty means
	// os.TempDir(). Files are removed on Close. On a memory-backed
	// filesystem these bytes count against the container's memory.
	TempDir string
	// SharedStringsInMemory is how many bytes of xlsx shared strings are
	// kept in memory before the table spills to disk; 0 means 256 KiB,
	// negative means never spill.
	SharedStringsInMemory int64
}

func (o Options) name() string {
	if o.Name == "" {
		return "input"
	}
	return o.Name
}

func (o Options) tempDir() string {
	if o.TempDir == "" {
		return os.TempDir()
	}
	return o.TempDir
}

// corruptf returns an error matching ErrCorrupt naming the file and part.
func corruptf(file, part, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if part != "" {
		return fmt.Errorf("%w: %s part %s: %s", ErrCorrupt, file, part, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, file, msg)
}

// wrapCorrupt wraps err (keeping it inspectable) as an ErrCorrupt error,
// unless it already is a limit, corrupt or context error.
func wrapCorrupt(file, part string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrLimit) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrEncrypted) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if part != "" {
		return fmt.Errorf("%w: %s part %s: %w", ErrCorrupt, file, part, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, file, err)
}
