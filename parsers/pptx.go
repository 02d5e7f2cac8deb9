package parsers

import (
	"context"
	"encoding/xml"
	"io"
	"os"
	"strings"
)

// PPTXReader streams the text of a presentation slide by slide, in
// presentation order: titles, other text shapes, table rows, then the
// slide's speaker notes. Each slide part is decoded token by token; images
// and other media are never read. Not safe for concurrent use; must be
// closed.
type PPTXReader struct {
	lim    Limits
	file   string
	closer io.Closer
	ar     *archive
	slides []string
	slide  int // 1-based index of the current slide
	notes  bool
	part   string
	notesP string
	rc     io.ReadCloser
	x      *xmlStream
	shape  int
	table  int
	row    int
	tc     textCollector
	done   bool
}

// OpenPPTX opens the pptx file at path.
func OpenPPTX(ctx context.Context, path string, opts Options) (*PPTXReader, error) {
	return openPath(path, "pptx", &opts.Name, func(f *os.File, size int64) (*PPTXReader, error) {
		return NewPPTXReader(ctx, f, size, opts)
	}, func(r *PPTXReader, c io.Closer) { r.closer = c })
}

// NewPPTXReader reads a pptx of the given size from ra; the caller keeps
// ownership of ra.
func NewPPTXReader(ctx context.Context, ra io.ReaderAt, size int64, opts Options) (*PPTXReader, error) {
	lim := opts.Limits.withDefaults()
	r := &PPTXReader{lim: lim, file: opts.name()}
	var err error
	if r.ar, err = openArchive(ra, size, opts, lim); err != nil {
		return nil, err
	}
	pres, err := mainPart(r.ar, lim, "ppt/presentation.xml")
	if err != nil {
		return nil, err
	}
	relsPart := resolve(pres, "_rels/"+pres[strings.LastIndexByte(pres, '/')+1:]+".rels")
	rels, err := readRels(r.ar, relsPart, lim)
	if err != nil {
		return nil, err
	}
	rc, err := r.ar.open(pres)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	x := newXMLStream(rc, r.file, pres, lim)
	for {
		tok, err := x.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "sldId" {
			rel, ok := rels[relID(se)]
			if !ok {
				return nil, corruptf(r.file, pres, "slide id %s has no relationship", relID(se))
			}
			if int64(len(r.slides)) >= lim.MaxRows {
				return nil, &LimitError{File: r.file, Part: pres, Limit: "MaxRows", Max: lim.MaxRows, Got: int64(len(r.slides)) + 1}
			}
			r.slides = append(r.slides, resolve(pres, rel.target))
		}
	}
	return r, nil
}

// Slides returns the number of slides.
func (r *PPTXReader) Slides() int { return len(r.slides) }

// openNext opens the next part: the current slide's notes, or the next slide.
func (r *PPTXReader) openNext() error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if !r.notes && r.notesP != "" && r.ar.has(r.notesP) {
		r.notes = true
		r.part = r.notesP
	} else {
		if r.slide >= len(r.slides) {
			r.done = true
			return nil
		}
		r.slide++
		r.notes, r.shape, r.table = false, 0, 0
		r.part = r.slides[r.slide-1]
		r.notesP = ""
		dir, base := r.part[:strings.LastIndexByte(r.part, '/')+1], r.part[strings.LastIndexByte(r.part, '/')+1:]
		rels, err := readRels(r.ar, dir+"_rels/"+base+".rels", r.lim)
		if err != nil {
			return err
		}
		for _, rel := range rels {
			if strings.HasSuffix(rel.typ, "/notesSlide") {
				r.notesP = resolve(r.part, rel.target)
			}
		}
	}
	rc, err := r.ar.open(r.part)
	if err != nil {
		return err
	}
	r.rc = rc
	r.x = newXMLStream(rc, r.file, r.part, r.lim)
	r.tc = textCollector{lim: r.lim, file: r.file, part: r.part, b: r.tc.b[:0]}
	return nil
}

// Next returns the next text block (BlockTitle, BlockBody, BlockTableRow or
// BlockNotes) with Location.Slide set, or io.EOF after the last slide.
// Shapes without text are skipped.
func (r *PPTXReader) Next(ctx context.Context) (Block, error) {
	if err := checkCtx(ctx, r.file); err != nil {
		return Block{}, err
	}
	for !r.done {
		if r.x == nil {
			if err := r.openNext(); err != nil {
				return Block{}, err
			}
			continue
		}
		tok, err := r.x.next()
		if err == io.EOF {
			r.x = nil
			continue
		}
		if err != nil {
			return Block{}, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "sp":
			r.shape++
			b, err := r.readShape()
			if err != nil {
				return Block{}, err
			}
			if b.Text != "" {
				return b, nil
			}
		case "tbl":
			if !r.notes {
				r.table++
				r.row = 0
			}
		case "tr":
			if !r.notes {
				return r.tableRow()
			}
		case "pic", "blipFill", "extLst":
			if err := r.x.skip(); err != nil {
				return Block{}, err
			}
		}
	}
	return Block{}, io.EOF
}

func (r *PPTXReader) readShape() (Block, error) {
	x := r.x
	d := x.depth
	r.tc.b = r.tc.b[:0]
	ph := ""
	inT := false
	paras := 0
	for x.depth >= d {
		tok, err := x.next()
		if err != nil {
			return Block{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "ph":
				ph = attr(t, "type")
				if ph == "" {
					ph = "body"
				}
			case "p":
				if paras > 0 {
					err = r.tc.addString("\n")
				}
				paras++
			case "t":
				inT = true
			case "br":
				err = r.tc.addString("\n")
			}
		case xml.EndElement:
			if t.Name.Local == "t" {
				inT = false
			}
		case xml.CharData:
			if inT {
				err = r.tc.add(t)
			}
		}
		if err != nil {
			return Block{}, err
		}
	}
	text := strings.TrimRight(string(r.tc.b), "\n")
	loc := Location{Slide: r.slide, Paragraph: r.shape}
	switch {
	case r.notes:
		if ph != "body" {
			return Block{}, nil // slide image, number, header placeholders
		}
		return Block{Kind: BlockNotes, Text: text, Loc: loc}, nil
	case ph == "title" || ph == "ctrTitle":
		return Block{Kind: BlockTitle, Text: text, Loc: loc}, nil
	case ph == "sldNum" || ph == "dt" || ph == "ftr":
		return Block{}, nil
	}
	return Block{Kind: BlockBody, Text: text, Loc: loc}, nil
}

func (r *PPTXReader) tableRow() (Block, error) {
	r.row++
	cells, err := readRowCells(r.x, &r.tc, r.lim, r.file, r.part)
	if err != nil {
		return Block{}, err
	}
	return Block{Kind: BlockTableRow, Text: strings.Join(cells, "\t"), Cells: cells, Loc: Location{Slide: r.slide, Table: r.table, Row: r.row}}, nil
}

// Close releases the reader (and the file, for OpenPPTX).
func (r *PPTXReader) Close() error {
	var err error
	if r.rc != nil {
		err = r.rc.Close()
		r.rc = nil
	}
	if r.closer != nil {
		if cerr := r.closer.Close(); err == nil {
			err = cerr
		}
		r.closer = nil
	}
	r.done = true
	return err
}
