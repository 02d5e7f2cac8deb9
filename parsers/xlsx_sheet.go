package parsers

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"sort"
	"strconv"
	"time"
)

// readRow decodes the next <row> of the current sheet.
func (r *XLSXReader) readRow(ctx context.Context) (Row, error) {
	x := r.x
	for {
		tok, err := x.next()
		if err != nil {
			return Row{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "row" {
				continue
			}
			r.rows++
			if r.rows > r.lim.MaxRows {
				return Row{}, &LimitError{File: r.file, Part: r.cur.part, Limit: "MaxRows", Max: r.lim.MaxRows, Got: r.rows}
			}
			num, _ := strconv.Atoi(attr(t, "r"))
			row, err := r.readCells(num)
			if err != nil || len(row.Cells) > 0 {
				return row, err
			}
			r.rows-- // a row element without cells is not returned
		case xml.EndElement:
			if t.Name.Local == "sheetData" {
				return Row{}, io.EOF
			}
		}
	}
}

func (r *XLSXReader) readCells(num int) (Row, error) {
	x := r.x
	row := Row{Sheet: r.cur.name, Index: num}
	if len(r.columns) > 0 {
		row.Cells = make([]Cell, 0, len(r.columns))
	}
	col := 0
	for {
		tok, err := x.next()
		if err != nil {
			return Row{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "c" {
				if err := x.skip(); err != nil {
					return Row{}, err
				}
				continue
			}
			if ref := attr(t, "r"); ref != "" {
				c, rn := parseRef(ref)
				if c <= 0 {
					return Row{}, corruptf(r.file, r.cur.part, "bad cell reference %q in row %d", ref, num)
				}
				col = c
				if row.Index == 0 {
					row.Index = rn
				}
			} else {
				col++
			}
			if int64(col) > r.lim.MaxCellsPerRow {
				return Row{}, &LimitError{File: r.file, Part: r.cur.part, Limit: "MaxCellsPerRow", Max: r.lim.MaxCellsPerRow, Got: int64(col)}
			}
			cell, err := r.readCell(t)
			if err != nil {
				return Row{}, err
			}
			for len(row.Cells) < col-1 {
				row.Cells = append(row.Cells, Cell{})
			}
			if len(row.Cells) == col-1 {
				row.Cells = append(row.Cells, cell)
			} else {
				row.Cells[col-1] = cell // out-of-order reference
			}
		case xml.EndElement:
			if t.Name.Local == "row" {
				r.applyMerges(&row)
				if len(row.Cells) == 0 {
					return row, nil
				}
				for len(row.Cells) < len(r.columns) {
					row.Cells = append(row.Cells, Cell{})
				}
				return row, nil
			}
		}
	}
}

// readCell decodes one <c> element whose start was just read.
func (r *XLSXReader) readCell(se xml.StartElement) (Cell, error) {
	x := r.x
	typ := attr(se, "t")
	style := -1
	if s := attr(se, "s"); s != "" {
		style, _ = strconv.Atoi(s)
	}
	r.vbuf = r.vbuf[:0]
	r.tbuf = r.tbuf[:0]
	hasV := false
	for {
		tok, err := x.next()
		if err != nil {
			return Cell{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "v":
				hasV = true
				if r.vbuf, err = x.text(r.vbuf[:0]); err != nil {
					return Cell{}, err
				}
			case "is":
				if r.tbuf, err = r.inlineText(r.tbuf[:0]); err != nil {
					return Cell{}, err
				}
			default:
				if err := x.skip(); err != nil {
					return Cell{}, err
				}
			}
		case xml.EndElement:
			if t.Name.Local == "c" {
				return r.makeCell(typ, style, hasV)
			}
		}
	}
}

// inlineText collects the <t> texts of an <is> element, skipping phonetic runs.
func (r *XLSXReader) inlineText(buf []byte) ([]byte, error) {
	x := r.x
	d := x.depth
	inT, rph := false, 0
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return buf, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inT = rph == 0
			case "rPh":
				rph++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inT = false
			case "rPh":
				rph--
			}
		case xml.CharData:
			if inT {
				if int64(len(buf)+len(t)) > r.lim.MaxCellBytes {
					return buf, &LimitError{File: r.file, Part: r.cur.part, Limit: "MaxCellBytes", Max: r.lim.MaxCellBytes, Got: int64(len(buf) + len(t))}
				}
				buf = append(buf, t...)
			}
		}
	}
	return buf, nil
}

func (r *XLSXReader) makeCell(typ string, style int, hasV bool) (Cell, error) {
	v := r.vbuf
	switch typ {
	case "s":
		i, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil || r.sst == nil {
			return Cell{}, corruptf(r.file, r.cur.part, "bad shared string index %q", v)
		}
		s, ok, err := r.sst.get(i)
		if err != nil {
			return Cell{}, wrapCorrupt(r.file, "shared strings", err)
		}
		if !ok {
			return Cell{}, corruptf(r.file, r.cur.part, "shared string index %d out of range (table has %d)", i, r.sst.count)
		}
		return Cell{Kind: KindString, Text: s}, nil
	case "inlineStr":
		if len(r.tbuf) == 0 && hasV {
			return Cell{Kind: KindString, Text: string(unescapeOOXML(v))}, nil
		}
		return Cell{Kind: KindString, Text: string(unescapeOOXML(r.tbuf))}, nil
	case "str":
		return Cell{Kind: KindString, Text: string(unescapeOOXML(v))}, nil
	case "b":
		b := len(v) > 0 && (v[0] == '1' || v[0] == 't')
		if b {
			return Cell{Kind: KindBool, Bool: true, Text: "TRUE"}, nil
		}
		return Cell{Kind: KindBool, Text: "FALSE"}, nil
	case "e":
		return Cell{Kind: KindError, Text: string(v)}, nil
	case "d":
		s := string(v)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return Cell{Kind: KindDate, Time: t.UTC(), Text: s}, nil
			}
		}
		return Cell{Kind: KindString, Text: s}, nil
	}
	if !hasV || len(v) == 0 {
		return Cell{}, nil
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	if err != nil {
		return Cell{}, corruptf(r.file, r.cur.part, "bad number %q", truncate(v, 64))
	}
	if r.opts.RawValues || style < 0 || style >= len(r.xf) {
		return Cell{Kind: KindNumber, Number: f, Text: formatGeneral(f)}, nil
	}
	return r.xf[style].cell(f, r.date1904), nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// parseRef parses "AB12" into column 28 and row 12 (0 when missing).
func parseRef(ref string) (col, row int) {
	i := 0
	for ; i < len(ref); i++ {
		c := ref[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			break
		}
		col = col*26 + int(c-'A'+1)
		if col > 1<<24 {
			return -1, 0
		}
	}
	for ; i < len(ref); i++ {
		c := ref[i]
		if c == '$' {
			continue
		}
		if c < '0' || c > '9' {
			return -1, 0
		}
		row = row*10 + int(c-'0')
		if row > 1<<30 {
			return -1, 0
		}
	}
	return col, row
}

func (r *XLSXReader) applyMerges(row *Row) {
	if len(r.merges) == 0 {
		return
	}
	n := row.Index
	for r.nextM < len(r.merges) && r.merges[r.nextM].r1 <= n {
		m := &r.merges[r.nextM]
		if m.r2 >= n {
			if m.r1 == n && m.c1-1 < len(row.Cells) {
				m.val = row.Cells[m.c1-1]
			}
			r.active = append(r.active, m)
		}
		r.nextM++
	}
	kept := r.active[:0]
	for _, m := range r.active {
		if m.r2 < n {
			continue
		}
		kept = append(kept, m)
		if m.c2 > int(r.lim.MaxCellsPerRow) {
			continue
		}
		for len(row.Cells) < m.c2 {
			row.Cells = append(row.Cells, Cell{})
		}
		for c := m.c1; c <= m.c2; c++ {
			if n == m.r1 && c == m.c1 {
				continue
			}
			row.Cells[c-1] = m.val
		}
	}
	r.active = kept
}

var mergeTag = []byte("<mergeCell ")

// scanMerges reads the merged ranges of the current sheet with a byte
// scan of the inflated part (no XML decoding): they are stored after the
// rows, so rows cannot be filled in one pass.
func (r *XLSXReader) scanMerges() error {
	rc, err := r.ar.open(r.cur.part)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, 0, 128<<10)
	chunk := make([]byte, 64<<10)
	for {
		n, rerr := rc.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.Index(buf, mergeTag)
			if i < 0 {
				keep := min(len(buf), len(mergeTag))
				buf = append(buf[:0], buf[len(buf)-keep:]...)
				break
			}
			j := bytes.IndexByte(buf[i:], '>')
			if j < 0 {
				if len(buf)-i > 4096 {
					return corruptf(r.file, r.cur.part, "unterminated mergeCell element")
				}
				buf = append(buf[:0], buf[i:]...)
				break
			}
			if err := r.addMerge(buf[i : i+j]); err != nil {
				return err
			}
			buf = buf[i+j:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	sort.SliceStable(r.merges, func(i, j int) bool { return r.merges[i].r1 < r.merges[j].r1 })
	return nil
}

func (r *XLSXReader) addMerge(tag []byte) error {
	i := bytes.Index(tag, []byte(`ref="`))
	if i < 0 {
		return nil
	}
	ref := tag[i+5:]
	j := bytes.IndexByte(ref, '"')
	if j < 0 {
		return nil
	}
	a, b, ok := bytes.Cut(ref[:j], []byte(":"))
	if !ok {
		return nil
	}
	c1, r1 := parseRef(string(a))
	c2, r2 := parseRef(string(b))
	if c1 <= 0 || c2 < c1 || r1 <= 0 || r2 < r1 {
		return nil
	}
	if int64(len(r.merges)) >= r.lim.MaxMergedCells {
		return &LimitError{File: r.file, Part: r.cur.part, Limit: "MaxMergedCells", Max: r.lim.MaxMergedCells, Got: int64(len(r.merges)) + 1}
	}
	r.merges = append(r.merges, mergeRange{r1: r1, c1: c1, r2: r2, c2: c2})
	return nil
}
