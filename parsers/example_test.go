package parsers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dagrun/dagrun/parsers"
)

func ExampleOpenXLSX() {
	ctx := context.Background()
	r, err := parsers.OpenXLSX(ctx, "../testdata/fixtures/features.xlsx", parsers.XLSXOptions{Sheet: "Types", HeaderRow: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	fmt.Println(r.Sheets(), r.Columns())
	for {
		row, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		if row.Index > 3 {
			break
		}
		c := row.Cells
		fmt.Printf("row %d: %s %s=%q %s=%q %s\n", row.Index, c[0].Text, c[1].Kind, c[1].Text, c[2].Kind, c[2].Text, c[2].Time.Format("2006-01-02 15:04"))
	}
	// Output:
	// [Types Second Empty] [Name Amount Date Flag Merged Note]
	// row 2: alpha number="1,234.50" date="2026-04-14" 2026-04-14 00:00
	// row 3: beta number="-12.50%" date="14/04/2026 12:00" 2026-04-14 12:00
}

func ExampleNewCSVReader() {
	ctx := context.Background()
	src := strings.NewReader("name;note\n'O''Brien';'a;b'\n")
	r, err := parsers.NewCSVReader(ctx, src, parsers.CSVOptions{Delimiter: ';', Quote: '\'', Header: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	row, err := r.Next(ctx)
	fmt.Println(r.Columns(), row.Strings(), err)
	_, err = r.Next(ctx)
	fmt.Println(err)
	// Output:
	// [name note] [O'Brien a;b] <nil>
	// EOF
}

func ExampleOpenPPTX() {
	ctx := context.Background()
	r, err := parsers.OpenPPTX(ctx, "../testdata/fixtures/small.pptx", parsers.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for i := 0; i < 3; i++ {
		b, err := r.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("slide %d %s: %.30s\n", b.Loc.Slide, b.Kind, b.Text)
	}
	// Output:
	// slide 1 title: 1. Effectiveness before throug
	// slide 1 body: Meeting overall clear staff be
	// slide 1 notes: Within planning years procedur
}

func ExampleLimitError() {
	ctx := context.Background()
	opts := parsers.CSVOptions{Options: parsers.Options{Name: "upload.csv", Limits: parsers.Limits{MaxCellBytes: 8}}}
	r, err := parsers.NewCSVReader(ctx, strings.NewReader("short,much too long\n"), opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	_, err = r.Next(ctx)
	var le *parsers.LimitError
	fmt.Println(errors.Is(err, parsers.ErrLimit), errors.As(err, &le) && le.Limit == "MaxCellBytes")
	fmt.Println(err)
	// Output:
	// true true
	// parsers: upload.csv part record 1 (line 1): limit MaxCellBytes=8 exceeded (got 9)
}
