package parsers_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagrun/dagrun/parsers"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const fixtures = "../testdata/fixtures"

// dumpTable renders every row of a table reader, one line per row.
func dumpTable(ctx context.Context, r parsers.TableReader) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "columns: %q\n", r.Columns())
	for {
		row, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "%s:%d", row.Sheet, row.Index)
		for _, c := range row.Cells {
			fmt.Fprintf(&b, " %s=%q", c.Kind, c.Text)
			if c.Kind == parsers.KindDate {
				fmt.Fprintf(&b, "@%s", c.Time.Format("2006-01-02T15:04:05"))
			}
		}
		b.WriteByte('\n')
	}
}

// dumpDoc renders every block of a document reader.
func dumpDoc(ctx context.Context, r parsers.DocumentReader) (string, error) {
	var b strings.Builder
	for {
		blk, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "%s %+v %q\n", blk.Kind, blk.Loc, blk.Text)
	}
}

type goldenCase struct {
	golden string
	run    func(ctx context.Context) (string, error)
}

func goldenCases() []goldenCase {
	p := func(n string) string { return filepath.Join(fixtures, n) }
	table := func(open func(ctx context.Context) (parsers.TableReader, error)) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			r, err := open(ctx)
			if err != nil {
				return "", err
			}
			defer r.Close()
			return dumpTable(ctx, r)
		}
	}
	doc := func(open func(ctx context.Context) (parsers.DocumentReader, error)) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			r, err := open(ctx)
			if err != nil {
				return "", err
			}
			defer r.Close()
			return dumpDoc(ctx, r)
		}
	}
	return []goldenCase{
		{"features-all.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			return parsers.OpenXLSX(ctx, p("features.xlsx"), parsers.XLSXOptions{AllSheets: true, HeaderRow: 1})
		})},
		{"features-topleft-raw.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			return parsers.OpenXLSX(ctx, p("features.xlsx"), parsers.XLSXOptions{Merged: parsers.MergeTopLeft, RawValues: true})
		})},
		{"features-second.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			return parsers.OpenXLSX(ctx, p("features.xlsx"), parsers.XLSXOptions{Sheet: "Second", HeaderRow: 1})
		})},
		{"rows-200.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			return parsers.OpenXLSX(ctx, p("rows-200.xlsx"), parsers.XLSXOptions{HeaderRow: 1})
		})},
		{"rows-200-spilled.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			// A 1-byte in-memory budget forces the disk-backed table: same output.
			return parsers.OpenXLSX(ctx, p("rows-200.xlsx"), parsers.XLSXOptions{HeaderRow: 1, Options: parsers.Options{SharedStringsInMemory: 1, TempDir: os.TempDir()}})
		})},
		{"small.csv.golden", table(func(ctx context.Context) (parsers.TableReader, error) {
			return parsers.OpenCSV(ctx, p("small.csv"), parsers.CSVOptions{Header: true})
		})},
		{"small.docx.golden", doc(func(ctx context.Context) (parsers.DocumentReader, error) {
			return parsers.OpenDOCX(ctx, p("small.docx"), parsers.Options{})
		})},
		{"small.pptx.golden", doc(func(ctx context.Context) (parsers.DocumentReader, error) {
			return parsers.OpenPPTX(ctx, p("small.pptx"), parsers.Options{})
		})},
		{"small.pdf.golden", doc(func(ctx context.Context) (parsers.DocumentReader, error) {
			return parsers.OpenPDF(ctx, p("small.pdf"), parsers.Options{})
		})},
	}
}

// TestGolden compares what each committed fixture yields with the
// committed expected output (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases() {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			got, err := tc.run(context.Background())
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal([]byte(got), want) {
				t.Errorf("output differs from %s (rerun with -update if intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
			}
		})
	}
}
