package main

import (
	"archive/zip"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"strings"

	"github.com/dagrun/dagrun/parsers"
	"github.com/ledongthuc/pdf"
	"github.com/thedatashed/xlsxreader"
	"github.com/xuri/excelize/v2"
)

func init() {
	methods["noop"] = func(context.Context, string) (result, error) { return result{Units: "-"}, nil }
	methods["dagrun-xlsx"] = dagrunXLSX
	methods["excelize-getrows"] = excelizeGetRows
	methods["excelize-rows"] = excelizeRows
	methods["xlsxreader"] = xlsxReader
	methods["dagrun-pdf"] = dagrunPDF
	methods["whole-pdf"] = wholePDF
	methods["dagrun-pptx"] = func(ctx context.Context, p string) (result, error) {
		r, err := parsers.OpenPPTX(ctx, p, parsers.Options{})
		if err != nil {
			return result{}, err
		}
		defer r.Close()
		res, err := drainDoc(ctx, r)
		res.Items, res.Units = int64(r.Slides()), "slides"
		return res, err
	}
	methods["dagrun-docx"] = func(ctx context.Context, p string) (result, error) {
		r, err := parsers.OpenDOCX(ctx, p, parsers.Options{})
		if err != nil {
			return result{}, err
		}
		defer r.Close()
		return drainDoc(ctx, r)
	}
	methods["whole-pptx"] = func(ctx context.Context, p string) (result, error) {
		return wholeOOXML(p, func(name string) bool {
			return strings.HasPrefix(name, "ppt/slides/slide") || strings.HasPrefix(name, "ppt/notesSlides/")
		}, "slides")
	}
	methods["whole-docx"] = func(ctx context.Context, p string) (result, error) {
		return wholeOOXML(p, func(name string) bool { return name == "word/document.xml" }, "blocks")
	}
}

func dagrunXLSX(ctx context.Context, p string) (result, error) {
	r, err := parsers.OpenXLSX(ctx, p, parsers.XLSXOptions{AllSheets: true})
	if err != nil {
		return result{}, err
	}
	defer r.Close()
	res := result{Units: "rows"}
	for {
		row, err := r.Next(ctx)
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		res.Items++
		for _, c := range row.Cells {
			res.Cells += int64(len(c.Text))
		}
	}
}

func excelizeGetRows(ctx context.Context, p string) (result, error) {
	f, err := excelize.OpenFile(p)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	res := result{Units: "rows"}
	for _, s := range f.GetSheetList() {
		rows, err := f.GetRows(s)
		if err != nil {
			return res, err
		}
		for _, row := range rows {
			res.Items++
			for _, c := range row {
				res.Cells += int64(len(c))
			}
		}
	}
	return res, nil
}

func excelizeRows(ctx context.Context, p string) (result, error) {
	f, err := excelize.OpenFile(p)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	res := result{Units: "rows"}
	for _, s := range f.GetSheetList() {
		rows, err := f.Rows(s)
		if err != nil {
			return res, err
		}
		for rows.Next() {
			row, err := rows.Columns()
			if err != nil {
				return res, err
			}
			res.Items++
			for _, c := range row {
				res.Cells += int64(len(c))
			}
		}
		if err := rows.Close(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func xlsxReader(ctx context.Context, p string) (result, error) {
	x, err := xlsxreader.OpenFile(p)
	if err != nil {
		return result{}, err
	}
	defer x.Close()
	res := result{Units: "rows"}
	for _, s := range x.Sheets {
		for row := range x.ReadRows(s) {
			if row.Error != nil {
				return res, row.Error
			}
			res.Items++
			for _, c := range row.Cells {
				res.Cells += int64(len(c.Value))
			}
		}
	}
	return res, nil
}

func drainDoc(ctx context.Context, r parsers.DocumentReader) (result, error) {
	res := result{Units: "blocks"}
	for {
		b, err := r.Next(ctx)
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		res.Items++
		res.Cells += int64(len(b.Text))
	}
}

func dagrunPDF(ctx context.Context, p string) (result, error) {
	r, err := parsers.OpenPDF(ctx, p, parsers.Options{})
	if err != nil {
		return result{}, err
	}
	defer r.Close()
	res, err := drainDoc(ctx, r)
	res.Units = "pages"
	return res, err
}

// wholePDF is the library's own whole-document path: GetPlainText.
func wholePDF(ctx context.Context, p string) (result, error) {
	f, r, err := pdf.Open(p)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	rd, err := r.GetPlainText()
	if err != nil {
		return result{}, err
	}
	b, err := io.ReadAll(rd)
	return result{Items: int64(r.NumPage()), Units: "pages", Cells: int64(len(b))}, err
}

// xnode is a generic XML tree, what "unmarshal the part whole" builds.
type xnode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []xnode    `xml:",any"`
}

func (n *xnode) text(b *strings.Builder) {
	if n.XMLName.Local == "t" {
		b.WriteString(n.Text)
	}
	for i := range n.Nodes {
		n.Nodes[i].text(b)
	}
}

// wholeOOXML reads every selected part whole, unmarshals all of them into
// trees held at once, then extracts the text: the read-it-all baseline
// with the same libraries (archive/zip, encoding/xml).
func wholeOOXML(p string, want func(string) bool, units string) (result, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return result{}, err
	}
	defer zr.Close()
	var names []string
	parts := map[string]*xnode{}
	for _, f := range zr.File {
		if !want(f.Name) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return result{}, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return result{}, err
		}
		var n xnode
		if err := xml.Unmarshal(b, &n); err != nil {
			return result{}, err
		}
		parts[f.Name] = &n
		names = append(names, f.Name)
	}
	if len(names) == 0 {
		return result{}, errors.New("no parts")
	}
	sort.Strings(names)
	var all strings.Builder
	for _, n := range names {
		parts[n].text(&all)
	}
	items := int64(0)
	for _, n := range names {
		if strings.HasPrefix(n, "ppt/slides/slide") || n == "word/document.xml" {
			items++
		}
	}
	if units == "blocks" {
		items = countParas(parts["word/document.xml"])
	}
	return result{Items: items, Units: units, Cells: int64(all.Len())}, nil
}

func countParas(n *xnode) int64 {
	if n == nil {
		return 0
	}
	c := int64(0)
	if n.XMLName.Local == "p" {
		c++
	}
	for i := range n.Nodes {
		c += countParas(&n.Nodes[i])
	}
	return c
}
