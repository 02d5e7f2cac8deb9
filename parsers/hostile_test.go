package parsers_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagrun/dagrun/parsers"
)

// peakHeap runs f while sampling the live heap (runtime/metrics) every
// millisecond and returns the largest growth over the starting heap.
// Tests using it do not run in parallel.
func peakHeap(t *testing.T, f func()) uint64 {
	t.Helper()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// zipParts builds a zip in memory from name/content pairs.
func zipParts(t *testing.T, parts ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < len(parts); i += 2 {
		w, err := zw.Create(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, parts[i+1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const (
	wbRels = `<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`
	wb     = `<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`
)

// bombZip writes a zip whose part name inflates to size bytes of zeros
// from a tiny compressed body. If lie is set, the header claims 1 KiB.
func bombZip(t *testing.T, prefix []string, name string, size int64, lie bool) []byte {
	t.Helper()
	comp, sum := zeroBomb(size)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 0; i < len(prefix); i += 2 {
		w, _ := zw.Create(prefix[i])
		io.WriteString(w, prefix[i+1])
	}
	usize := uint64(size)
	if lie {
		usize = 1024
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: sum, CompressedSize64: uint64(len(comp)), UncompressedSize64: usize})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp)
	zw.Close()
	return b.Bytes()
}

var bombs sync.Map // size -> [2]any{[]byte, uint32}

// zeroBomb returns size zero bytes deflated, and their CRC-32, computed once.
func zeroBomb(size int64) ([]byte, uint32) {
	if v, ok := bombs.Load(size); ok {
		p := v.([2]any)
		return p[0].([]byte), p[1].(uint32)
	}
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestSpeed)
	zero := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for n := int64(0); n < size; n += int64(len(zero)) {
		fw.Write(zero)
		crc.Write(zero)
	}
	fw.Close()
	bombs.Store(size, [2]any{comp.Bytes(), crc.Sum32()})
	return comp.Bytes(), crc.Sum32()
}

func readAllTable(ctx context.Context, r parsers.TableReader) (int, error) {
	n := 0
	for {
		_, err := r.Next(ctx)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func readAllDoc(ctx context.Context, r parsers.DocumentReader) (int, error) {
	n := 0
	for {
		_, err := r.Next(ctx)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func openXLSXBytes(ctx context.Context, b []byte, opts parsers.XLSXOptions) (int, error) {
	if opts.Name == "" {
		opts.Name = "hostile.xlsx"
	}
	r, err := parsers.NewXLSXReader(ctx, bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return readAllTable(ctx, r)
}

func wantLimit(t *testing.T, err error, limit, part string) {
	t.Helper()
	var le *parsers.LimitError
	if !errors.As(err, &le) || !errors.Is(err, parsers.ErrLimit) {
		t.Fatalf("err = %v, want a *LimitError", err)
	}
	if le.Limit != limit || !strings.Contains(le.Part, part) || le.File == "" {
		t.Fatalf("limit error %+v, want limit %s on part containing %q", le, limit, part)
	}
	if !strings.Contains(err.Error(), limit) {
		t.Fatalf("message %q does not name the limit", err)
	}
}

const hostileHeapBound = 64 << 20

func TestHostileZipBombs(t *testing.T) {
	xlsxPrefix := []string{"xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/sharedStrings.xml", `<sst/>`}
	pptxPrefix := []string{"ppt/presentation.xml", `<p:presentation xmlns:r="r" xmlns:p="p"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>`,
		"ppt/_rels/presentation.xml.rels", `<Relationships><Relationship Id="rId1" Type="x/slide" Target="slides/slide1.xml"/></Relationships>`}
	cases := []struct {
		name  string
		data  []byte
		read  func([]byte) error
		limit string
		part  string
	}{
		{"xlsx declared 256MiB sheet", bombZip(t, xlsxPrefix, "xl/worksheets/sheet1.xml", 256<<20, false), xlsxRead, "MaxCompressionRatio", "sheet1.xml"},
		{"xlsx lying header", bombZip(t, xlsxPrefix, "xl/worksheets/sheet1.xml", 256<<20, true), xlsxRead, "MaxCompressionRatio", "sheet1.xml"},
		{"pptx declared 256MiB slide", bombZip(t, pptxPrefix, "ppt/slides/slide1.xml", 256<<20, false), pptxRead, "MaxCompressionRatio", "slide1.xml"},
		{"pptx lying header", bombZip(t, pptxPrefix, "ppt/slides/slide1.xml", 256<<20, true), pptxRead, "MaxCompressionRatio", "slide1.xml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 1<<20 {
				t.Fatalf("bomb is %d bytes, want a tiny file", len(tc.data))
			}
			var err error
			grew := peakHeap(t, func() { err = tc.read(tc.data) })
			if tc.name == "xlsx lying header" || tc.name == "pptx lying header" {
				// archive/zip stops at the declared size; either way it is rejected.
				if !errors.Is(err, parsers.ErrLimit) && !errors.Is(err, parsers.ErrCorrupt) {
					t.Fatalf("err = %v, want ErrLimit or ErrCorrupt", err)
				}
			} else {
				wantLimit(t, err, tc.limit, tc.part)
			}
			if grew > hostileHeapBound {
				t.Fatalf("heap grew %d bytes, bound %d", grew, hostileHeapBound)
			}
			t.Logf("%v (heap +%d KiB)", err, grew>>10)
		})
	}
}

func xlsxRead(b []byte) error {
	_, err := openXLSXBytes(context.Background(), b, parsers.XLSXOptions{})
	return err
}

func pptxRead(b []byte) error {
	r, err := parsers.NewPPTXReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "hostile.pptx"})
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = readAllDoc(context.Background(), r)
	return err
}

func TestHostilePartSizeLimit(t *testing.T) {
	t.Parallel()
	big := "<sst>" + strings.Repeat("<si><t>abcdefgh</t></si>", 100_000) + "</sst>"
	b := zipParts(t, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/sharedStrings.xml", big, "xl/worksheets/sheet1.xml", `<worksheet><sheetData/></worksheet>`)
	_, err := openXLSXBytes(context.Background(), b, parsers.XLSXOptions{Options: parsers.Options{Limits: parsers.Limits{MaxPartSize: 1 << 20, MaxCompressionRatio: -1}}})
	wantLimit(t, err, "MaxPartSize", "sharedStrings.xml")
	_, err = openXLSXBytes(context.Background(), b, parsers.XLSXOptions{Options: parsers.Options{Limits: parsers.Limits{MaxTotalSize: 1 << 20, MaxCompressionRatio: -1}}})
	wantLimit(t, err, "MaxTotalSize", "sharedStrings.xml")
}

// sstZip builds a workbook whose shared-string table has n entries.
func sstZip(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, p := range [][2]string{{"xl/workbook.xml", wb}, {"xl/_rels/workbook.xml.rels", wbRels}} {
		w, _ := zw.Create(p[0])
		io.WriteString(w, p[1])
	}
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) { return flate.NewWriter(out, flate.BestSpeed) })
	w, _ := zw.Create("xl/sharedStrings.xml")
	fmt.Fprintf(w, `<sst count="%d" uniqueCount="%d">`, 1<<40, 1<<40) // hostile counts must not be trusted
	var buf []byte
	for i := 0; i < n; i++ {
		buf = append(buf[:0], "<si><t>shared string "...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "</t></si>"...)
		w.Write(buf)
	}
	io.WriteString(w, "</sst>")
	w, _ = zw.Create("xl/worksheets/sheet1.xml")
	io.WriteString(w, `<worksheet><sheetData>`)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(w, `<row r="%d"><c r="A%d" t="s"><v>%d</v></c></row>`, i+1, i+1, (i*7919)%n)
	}
	io.WriteString(w, `</sheetData></worksheet>`)
	zw.Close()
	return b.Bytes()
}

// TestHostileSharedStrings reads a table of a million shared strings
// (DAGRUN_LONG_TESTS=1: five million) with bounded memory, and rejects it
// under lower limits.
func TestHostileSharedStrings(t *testing.T) {
	n := 1_000_000
	if os.Getenv("DAGRUN_LONG_TESTS") != "" {
		n = 5_000_000
	}
	b := sstZip(t, n)
	ctx := context.Background()
	t.Run("read with bounded memory", func(t *testing.T) {
		dir := t.TempDir()
		var r *parsers.XLSXReader
		var rows int
		var err error
		grew := peakHeap(t, func() {
			r, err = parsers.NewXLSXReader(ctx, bytes.NewReader(b), int64(len(b)), parsers.XLSXOptions{Options: parsers.Options{Name: "sst.xlsx", TempDir: dir}})
			if err != nil {
				return
			}
			rows, err = readAllTable(ctx, r)
		})
		if err != nil {
			t.Fatal(err)
		}
		if rows != 1000 || !r.SharedStringsSpilled() {
			t.Fatalf("rows=%d spilled=%v, want 1000 rows from a spilled table", rows, r.SharedStringsSpilled())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Fatalf("temp dir holds %d files while open, want 2", len(ents))
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("Close left %d temp files", len(ents))
		}
		// Held in memory the table would take over 26 MB (about 22 bytes
		// of text and a 4-byte offset per entry).
		const bound = 16 << 20
		if grew > bound {
			t.Fatalf("heap grew %d bytes reading %d shared strings, bound %d", grew, n, bound)
		}
		t.Logf("%d shared strings: heap +%d KiB", n, grew>>10)
	})
	t.Run("count limit", func(t *testing.T) {
		dir := t.TempDir()
		_, err := openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: parsers.Options{TempDir: dir, Limits: parsers.Limits{MaxSharedStrings: 100_000}}})
		wantLimit(t, err, "MaxSharedStrings", "sharedStrings.xml")
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("failed open left %d temp files", len(ents))
		}
	})
	t.Run("size limit", func(t *testing.T) {
		_, err := openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: parsers.Options{TempDir: t.TempDir(), Limits: parsers.Limits{MaxSharedStringSize: 1 << 20}}})
		wantLimit(t, err, "MaxSharedStringSize", "sharedStrings.xml")
	})
}

func TestHostileTruncated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, name := range []string{"features.xlsx", "small.docx", "small.pptx", "small.pdf"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			full, err := os.ReadFile(filepath.Join(fixtures, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, cut := range []int{len(full) / 2, len(full) - 30, 10} {
				b := full[:cut]
				err := readAny(ctx, name, b)
				if !errors.Is(err, parsers.ErrCorrupt) {
					t.Fatalf("cut at %d/%d: err = %v, want ErrCorrupt", cut, len(full), err)
				}
				if !strings.Contains(err.Error(), "truncated"+filepath.Ext(name)) {
					t.Fatalf("error %q does not name the file", err)
				}
			}
		})
	}
}

// readAny reads b fully with the reader for name's extension.
func readAny(ctx context.Context, name string, b []byte) error {
	opts := parsers.Options{Name: "truncated" + filepath.Ext(name), TempDir: os.TempDir()}
	ra, size := bytes.NewReader(b), int64(len(b))
	switch filepath.Ext(name) {
	case ".xlsx":
		_, err := openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: opts, AllSheets: true})
		return err
	case ".docx":
		r, err := parsers.NewDOCXReader(ctx, ra, size, opts)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = readAllDoc(ctx, r)
		return err
	case ".pptx":
		r, err := parsers.NewPPTXReader(ctx, ra, size, opts)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = readAllDoc(ctx, r)
		return err
	case ".pdf":
		r, err := parsers.NewPDFReader(ctx, ra, size, opts)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = readAllDoc(ctx, r)
		return err
	}
	return fmt.Errorf("no reader for %s", name)
}

// onePagePDF builds a PDF with one page whose content stream is content,
// Flate-compressed.
func onePagePDF(content io.Reader, extraTrailer string) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	io.Copy(zw, content)
	zw.Close()
	var b bytes.Buffer
	off := make([]int, 5)
	b.WriteString("%PDF-1.4\n")
	off[1] = b.Len()
	b.WriteString("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	off[2] = b.Len()
	b.WriteString("2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n")
	off[3] = b.Len()
	b.WriteString("3 0 obj\n<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>\nendobj\n")
	off[4] = b.Len()
	fmt.Fprintf(&b, "4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", z.Len())
	b.Write(z.Bytes())
	b.WriteString("\nendstream\nendobj\n")
	x := b.Len()
	b.WriteString("xref\n0 5\n0000000000 65535 f \n")
	for i := 1; i < 5; i++ {
		fmt.Fprintf(&b, "%010d 00000 n \n", off[i])
	}
	fmt.Fprintf(&b, "trailer\n<< /Size 5 /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n", extraTrailer, x)
	return b.Bytes()
}

type repeatReader struct {
	s string
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.n > 0 {
		c := copy(p[k:], r.s[int(r.n)%len(r.s):])
		c = min(c, int(r.n))
		k += c
		r.n -= int64(c)
	}
	return k, nil
}

func TestHostilePDF(t *testing.T) {
	ctx := context.Background()
	t.Run("huge content stream", func(t *testing.T) {
		// 64 MiB of text operators compressing to well under 1 MiB.
		b := onePagePDF(&repeatReader{s: "BT (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) Tj ET\n", n: 64 << 20}, "")
		if len(b) > 2<<20 {
			t.Fatalf("pdf is %d bytes, want small", len(b))
		}
		var err error
		grew := peakHeap(t, func() {
			r, oerr := parsers.NewPDFReader(ctx, bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "bomb.pdf", Limits: parsers.Limits{MaxPDFStreamSize: 8 << 20}})
			if oerr != nil {
				err = oerr
				return
			}
			defer r.Close()
			_, err = readAllDoc(ctx, r)
		})
		wantLimit(t, err, "MaxPDFStreamSize", "page 1")
		if grew > hostileHeapBound {
			t.Fatalf("heap grew %d bytes, bound %d", grew, hostileHeapBound)
		}
	})
	t.Run("small stream reads", func(t *testing.T) {
		b := onePagePDF(strings.NewReader("BT (hello) Tj ET\n"), "")
		r, err := parsers.NewPDFReader(ctx, bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "ok.pdf"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		blk, err := r.Next(ctx)
		if err != nil || blk.Text != "hello" || blk.Loc.Page != 1 {
			t.Fatalf("block %+v, err %v; want page 1 \"hello\"", blk, err)
		}
	})
	t.Run("encrypted", func(t *testing.T) {
		enc := fmt.Sprintf("/ID [(%s)] /Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /O (%s) /U (%s) /P 0 >> ", strings.Repeat("I", 16), strings.Repeat("O", 32), strings.Repeat("U", 32))
		b := onePagePDF(strings.NewReader("BT (secret) Tj ET\n"), enc)
		_, err := parsers.NewPDFReader(ctx, bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "locked.pdf"})
		if !errors.Is(err, parsers.ErrEncrypted) || !strings.Contains(err.Error(), "locked.pdf") {
			t.Fatalf("err = %v, want ErrEncrypted naming the file", err)
		}
	})
	t.Run("not a pdf", func(t *testing.T) {
		b := []byte(strings.Repeat("hello world\n", 20))
		_, err := parsers.NewPDFReader(ctx, bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "x.pdf"})
		if !errors.Is(err, parsers.ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

func TestHostileEncryptedOOXML(t *testing.T) {
	t.Parallel()
	b := append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 4096)...)
	_, err := openXLSXBytes(context.Background(), b, parsers.XLSXOptions{})
	if !errors.Is(err, parsers.ErrEncrypted) {
		t.Fatalf("err = %v, want ErrEncrypted", err)
	}
}

func TestHostileDeepXML(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("<w:p>", 200_000)
	doc := `<w:document xmlns:w="w"><w:body>` + deep
	b := zipParts(t, "word/document.xml", doc)
	r, err := parsers.NewDOCXReader(context.Background(), bytes.NewReader(b), int64(len(b)), parsers.Options{Name: "deep.docx"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = readAllDoc(context.Background(), r)
	wantLimit(t, err, "MaxXMLDepth", "word/document.xml")

	sheet := `<worksheet><sheetData><row r="1"><c r="A1"><v>` + strings.Repeat("<x>", 1000)
	b = zipParts(t, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/sharedStrings.xml", "<sst/>", "xl/worksheets/sheet1.xml", sheet)
	_, err = openXLSXBytes(context.Background(), b, parsers.XLSXOptions{})
	wantLimit(t, err, "MaxXMLDepth", "sheet1.xml")
}

func TestHostileCells(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One 8 MiB text node: rejected by MaxCellBytes without buffering it.
	huge := `<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>` + strings.Repeat("x", 8<<20) + `</t></is></c></row></sheetData></worksheet>`
	b := zipParts(t, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/sharedStrings.xml", "<sst/>", "xl/worksheets/sheet1.xml", huge)
	_, err := openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: parsers.Options{Limits: parsers.Limits{MaxCellBytes: 1 << 20, MaxCompressionRatio: -1}}})
	wantLimit(t, err, "MaxCellBytes", "sheet1.xml")

	wide := `<worksheet><sheetData><row r="1"><c r="XFD1"><v>1</v></c></row></sheetData></worksheet>`
	b = zipParts(t, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/worksheets/sheet1.xml", wide)
	_, err = openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: parsers.Options{Limits: parsers.Limits{MaxCellsPerRow: 100}}})
	wantLimit(t, err, "MaxCellsPerRow", "sheet1.xml")

	var rows strings.Builder
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&rows, `<row r="%d"><c r="A%d"><v>%d</v></c></row>`, i, i, i)
	}
	b = zipParts(t, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/worksheets/sheet1.xml", `<worksheet><sheetData>`+rows.String()+`</sheetData></worksheet>`)
	_, err = openXLSXBytes(ctx, b, parsers.XLSXOptions{Options: parsers.Options{Limits: parsers.Limits{MaxRows: 10}}})
	wantLimit(t, err, "MaxRows", "sheet1.xml")

	// csv: a 64 MiB field without a delimiter, and too many fields.
	_, err = readCSV(ctx, &repeatReader{s: "y", n: 64 << 20}, parsers.CSVOptions{Options: parsers.Options{Name: "big.csv", Limits: parsers.Limits{MaxCellBytes: 1 << 20}}})
	wantLimit(t, err, "MaxCellBytes", "record 1")
	_, err = readCSV(ctx, strings.NewReader(strings.Repeat("a,", 1000)), parsers.CSVOptions{Options: parsers.Options{Name: "wide.csv", Limits: parsers.Limits{MaxCellsPerRow: 10}}})
	wantLimit(t, err, "MaxCellsPerRow", "record 1")
	_, err = readCSV(ctx, strings.NewReader("a,\"unterminated\n"), parsers.CSVOptions{Options: parsers.Options{Name: "q.csv"}})
	if !errors.Is(err, parsers.ErrCorrupt) || !strings.Contains(err.Error(), "q.csv") {
		t.Fatalf("err = %v, want ErrCorrupt naming q.csv", err)
	}
}

func readCSV(ctx context.Context, src io.Reader, opts parsers.CSVOptions) (int, error) {
	r, err := parsers.NewCSVReader(ctx, src, opts)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return readAllTable(ctx, r)
}

// TestMediaNeverRead puts a 256 MiB zip-bomb image into a deck and a
// document: the readers skip media without opening them, so the text
// reads fine.
func TestMediaNeverRead(t *testing.T) {
	ctx := context.Background()
	slide := `<p:sld xmlns:a="a" xmlns:p="p" xmlns:r="r"><p:cSld><p:spTree><p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Hello</a:t></a:r></a:p></p:txBody></p:sp><p:pic><p:blipFill><a:blip r:embed="rId2"/></p:blipFill></p:pic></p:spTree></p:cSld></p:sld>`
	deck := bombZip(t, []string{
		"ppt/presentation.xml", `<p:presentation xmlns:r="r" xmlns:p="p"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>`,
		"ppt/_rels/presentation.xml.rels", `<Relationships><Relationship Id="rId1" Type="x/slide" Target="slides/slide1.xml"/></Relationships>`,
		"ppt/slides/slide1.xml", slide,
		"ppt/slides/_rels/slide1.xml.rels", `<Relationships><Relationship Id="rId2" Type="x/image" Target="../media/image1.png"/></Relationships>`,
	}, "ppt/media/image1.png", 256<<20, false)
	r, err := parsers.NewPPTXReader(ctx, bytes.NewReader(deck), int64(len(deck)), parsers.Options{Name: "media.pptx"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := r.Next(ctx)
	if err != nil || b.Text != "Hello" || b.Kind != parsers.BlockTitle {
		t.Fatalf("block %+v err %v, want title Hello", b, err)
	}
	if _, err := r.Next(ctx); err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}

	doc := bombZip(t, []string{"word/document.xml", `<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>Text</w:t></w:r></w:p></w:body></w:document>`}, "word/media/image1.png", 256<<20, false)
	d, err := parsers.NewDOCXReader(ctx, bytes.NewReader(doc), int64(len(doc)), parsers.Options{Name: "media.docx"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if b, err := d.Next(ctx); err != nil || b.Text != "Text" {
		t.Fatalf("block %+v err %v, want Text", b, err)
	}
}
