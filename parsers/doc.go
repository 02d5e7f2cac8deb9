// Package parsers reads spreadsheets, documents and delimited text as
// streams, one row, page, slide or paragraph at a time, with memory that
// does not grow with the size of the input.
//
// Two reader shapes cover every format:
//
//   - TableReader (xlsx, csv): Columns returns the header, Next returns the
//     next Row of typed Cells, io.EOF at the end.
//   - DocumentReader (pdf, pptx, docx): Next returns the next text Block with
//     its Location (page, slide, paragraph, table row), io.EOF at the end.
//
// Every reader must be closed; Close releases temporary files (the xlsx
// shared-string table spills to a file in Options.TempDir when it is large).
// Readers are not safe for concurrent use.
//
// Inputs are treated as hostile. Limits (uncompressed sizes, compression
// ratio, rows, cells per row, bytes per cell, shared strings, XML nesting
// depth, PDF stream size) are enforced while reading, with bounded memory;
// crossing one returns a *LimitError that matches ErrLimit with errors.Is.
// Malformed inputs return errors matching ErrCorrupt, encrypted ones
// ErrEncrypted.
//
// Implementation: xlsx, docx and pptx are read with archive/zip and an
// encoding/xml token loop straight from the compressed part; nothing is
// unmarshalled whole. Number formats and dates are rendered by a compact
// formatter in this package covering the common codes (General, fixed
// decimals, thousands separators, percent, scientific, date/time
// patterns); excelize's renderer is unexported and its Rows API holds the
// shared-string index in memory, so excelize serves only as a benchmark
// peer. PDFs are read with github.com/ledongthuc/pdf, walking its page
// tree once.
package parsers
