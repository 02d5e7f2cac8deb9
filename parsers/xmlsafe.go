package parsers

import (
	"encoding/xml"
	"errors"
	"io"
)

// tokenSlack is how far the XML decoder may read past the current token's
// bound (its internal buffering).
const tokenSlack = 64 << 10

// xmlStream is an encoding/xml token loop with a nesting-depth limit and a
// bound on the size of any single token, so a hostile part (a gigabyte of
// text without a tag, ten thousand nested elements) fails with a
// *LimitError while memory stays bounded.
type xmlStream struct {
	d     *xml.Decoder
	g     *guardReader
	depth int64
	lim   Limits
	file  string
	part  string
}

func newXMLStream(r io.Reader, file, part string, lim Limits) *xmlStream {
	g := &guardReader{r: r, allowed: lim.MaxCellBytes + tokenSlack, file: file, part: part, max: lim.MaxCellBytes}
	d := xml.NewDecoder(g)
	d.Strict = true
	return &xmlStream{d: d, g: g, lim: lim, file: file, part: part}
}

// next returns the next raw token (names keep their prefix in Space; match
// on Local). Character data is only valid until the following call.
func (x *xmlStream) next() (xml.Token, error) {
	x.g.allowed = x.d.InputOffset() + x.lim.MaxCellBytes + tokenSlack
	tok, err := x.d.RawToken()
	if err != nil {
		if err == io.EOF {
			if x.depth > 0 {
				return nil, corruptf(x.file, x.part, "truncated XML (%d elements open)", x.depth)
			}
			return nil, io.EOF
		}
		var le *LimitError
		if errors.As(err, &le) {
			return nil, le
		}
		return nil, wrapCorrupt(x.file, x.part, err)
	}
	switch tok.(type) {
	case xml.StartElement:
		x.depth++
		if x.depth > x.lim.MaxXMLDepth {
			return nil, &LimitError{File: x.file, Part: x.part, Limit: "MaxXMLDepth", Max: x.lim.MaxXMLDepth, Got: x.depth}
		}
	case xml.EndElement:
		x.depth--
	}
	return tok, nil
}

// skip consumes tokens until the element whose start was just returned ends.
func (x *xmlStream) skip() error {
	d := x.depth
	for x.depth >= d {
		if _, err := x.next(); err != nil {
			return err
		}
	}
	return nil
}

// text collects the character data of the current element (whose start was
// just returned) and its children, up to MaxCellBytes.
func (x *xmlStream) text(buf []byte) ([]byte, error) {
	d := x.depth
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return buf, err
		}
		if cd, ok := tok.(xml.CharData); ok {
			if int64(len(buf)+len(cd)) > x.lim.MaxCellBytes {
				return buf, &LimitError{File: x.file, Part: x.part, Limit: "MaxCellBytes", Max: x.lim.MaxCellBytes, Got: int64(len(buf) + len(cd))}
			}
			buf = append(buf, cd...)
		}
	}
	return buf, nil
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// guardReader refuses to return bytes beyond allowed: one token can never
// make the decoder buffer more than MaxCellBytes plus slack.
type guardReader struct {
	r       io.Reader
	off     int64
	allowed int64
	max     int64
	file    string
	part    string
}

func (g *guardReader) Read(b []byte) (int, error) {
	room := g.allowed - g.off
	if room <= 0 {
		return 0, &LimitError{File: g.file, Part: g.part, Limit: "MaxCellBytes", Max: g.max, Got: g.max + 1}
	}
	if int64(len(b)) > room {
		b = b[:room]
	}
	n, err := g.r.Read(b)
	g.off += int64(n)
	return n, err
}

// relID returns the r:id attribute (an "id" with a namespace prefix).
func relID(se xml.StartElement) string {
	for _, a := range se.Attr {
		if a.Name.Local == "id" && a.Name.Space != "" {
			return a.Value
		}
	}
	return attr(se, "id")
}
