package parsers_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dagrun/dagrun/parsers"
)

// fuzzLimits keep every fuzz input cheap: the readers must stop at them.
var fuzzLimits = parsers.Limits{
	MaxFileSize: 1 << 20, MaxTotalSize: 16 << 20, MaxPartSize: 8 << 20, MaxRows: 10_000,
	MaxCellsPerRow: 1000, MaxCellBytes: 64 << 10, MaxSharedStrings: 100_000, MaxSharedStringSize: 4 << 20,
	MaxXMLDepth: 64, MaxPDFStreamSize: 4 << 20, MaxPDFPages: 1000, MaxMergedCells: 1000,
}

func seedFuzz(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(fixtures, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// drain reads at most max items and checks limit invariants.
func drainTable(t *testing.T, r parsers.TableReader) {
	ctx := context.Background()
	for i := 0; i < 20_000; i++ {
		row, err := r.Next(ctx)
		if err != nil {
			return
		}
		if int64(len(row.Cells)) > fuzzLimits.MaxCellsPerRow+int64(len(r.Columns())) {
			t.Fatalf("row of %d cells passed MaxCellsPerRow", len(row.Cells))
		}
		for _, c := range row.Cells {
			if int64(len(c.Text)) > fuzzLimits.MaxCellBytes*4 {
				t.Fatalf("cell of %d bytes passed MaxCellBytes", len(c.Text))
			}
		}
	}
	t.Fatal("reader did not stop within MaxRows")
}

func drainDoc(t *testing.T, r parsers.DocumentReader) {
	ctx := context.Background()
	for i := 0; i < 200_000; i++ {
		if _, err := r.Next(ctx); err != nil {
			return
		}
	}
	t.Fatal("reader did not stop")
}

func FuzzXLSX(f *testing.F) {
	seedFuzz(f, "features.xlsx", "rows-200.xlsx")
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		r, err := parsers.NewXLSXReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.XLSXOptions{AllSheets: true, HeaderRow: 1, Options: parsers.Options{Limits: fuzzLimits, TempDir: dir, SharedStringsInMemory: 1024}})
		if err != nil {
			return
		}
		drainTable(t, r)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("Close left %d temp files", len(ents))
		}
	})
}

func FuzzPDF(f *testing.F) {
	seedFuzz(f, "small.pdf")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsers.NewPDFReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.Options{Limits: fuzzLimits})
		if err != nil {
			return
		}
		defer r.Close()
		drainDoc(t, r)
	})
}

func FuzzPPTX(f *testing.F) {
	seedFuzz(f, "small.pptx")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsers.NewPPTXReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.Options{Limits: fuzzLimits})
		if err != nil {
			return
		}
		defer r.Close()
		drainDoc(t, r)
	})
}

func FuzzDOCX(f *testing.F) {
	seedFuzz(f, "small.docx")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsers.NewDOCXReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.Options{Limits: fuzzLimits})
		if err != nil {
			return
		}
		defer r.Close()
		drainDoc(t, r)
	})
}

func FuzzCSV(f *testing.F) {
	seedFuzz(f, "small.csv")
	f.Add([]byte("a;'b;c'\n# comment\n'x''y';z\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, o := range []parsers.CSVOptions{{Header: true}, {Delimiter: ';', Quote: '\'', Comment: '#', TrimSpace: true}, {NoQuote: true, Delimiter: '\t'}} {
			o.Limits = fuzzLimits
			r, err := parsers.NewCSVReader(context.Background(), bytes.NewReader(b), o)
			if err != nil {
				continue
			}
			drainTable(t, r)
			r.Close()
		}
	})
}
