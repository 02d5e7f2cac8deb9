package parsers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ledongthuc/pdf"
)

// ErrUnsupported is returned for inputs that are valid but use a feature
// the reader does not support (such as an unsupported PDF encryption or
// stream filter).
var ErrUnsupported = errors.New("parsers: unsupported input")

// maxPageTreeDepth bounds the nesting of /Pages nodes (and so cycles).
const maxPageTreeDepth = 64

// PDFReader streams the text of a PDF page by page. The page tree is
// walked once, depth first (Reader.Page(i) in ledongthuc/pdf re-walks the
// tree for every page, which is quadratic); only one page's text is held
// at a time. Every content stream is measured (decoded into io.Discard)
// against MaxPDFStreamSize before it is interpreted. Not safe for
// concurrent use; must be closed.
type PDFReader struct {
	lim    Limits
	file   string
	size   int64
	closer io.Closer
	r      *pdf.Reader
	stack  []pdfFrame
	page   int
	nodes  int64
	fonts  map[string]*pdf.Font
	total  int
	done   bool
}

type pdfFrame struct {
	kids pdf.Value
	i    int
}

// OpenPDF opens the PDF file at path.
func OpenPDF(ctx context.Context, path string, opts Options) (*PDFReader, error) {
	return openPath(path, "pdf", &opts.Name, func(f *os.File, size int64) (*PDFReader, error) {
		return NewPDFReader(ctx, f, size, opts)
	}, func(r *PDFReader, c io.Closer) { r.closer = c })
}

// NewPDFReader reads a PDF of the given size from ra; the caller keeps
// ownership of ra. Encrypted PDFs that need a password return
// ErrEncrypted; unsupported encryption returns ErrUnsupported.
func NewPDFReader(ctx context.Context, ra io.ReaderAt, size int64, opts Options) (rd *PDFReader, err error) {
	lim := opts.Limits.withDefaults()
	name := opts.name()
	if size > lim.MaxFileSize {
		return nil, &LimitError{File: name, Limit: "MaxFileSize", Max: lim.MaxFileSize, Got: size}
	}
	if size < 32 {
		return nil, corruptf(name, "", "not a PDF file: %d bytes", size)
	}
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, corruptf(name, "", "malformed PDF: %v", p)
		}
	}()
	r, err := pdf.NewReader(ra, size)
	if err != nil {
		msg := err.Error()
		switch {
		case errors.Is(err, pdf.ErrInvalidPassword):
			return nil, fmt.Errorf("%w: %s: PDF needs a password: %w", ErrEncrypted, name, err)
		case strings.Contains(msg, "unsupported PDF: encryption"):
			return nil, fmt.Errorf("%w: %s: %w: %w", ErrEncrypted, name, ErrUnsupported, err)
		case strings.HasPrefix(msg, "unsupported"):
			return nil, fmt.Errorf("%w: %s: %w", ErrUnsupported, name, err)
		}
		return nil, corruptf(name, "", "%v", err)
	}
	root := r.Trailer().Key("Root").Key("Pages")
	if root.Kind() != pdf.Dict {
		return nil, corruptf(name, "", "missing page tree (/Root /Pages)")
	}
	p := &PDFReader{lim: lim, file: name, size: size, r: r, fonts: map[string]*pdf.Font{}}
	p.total = int(root.Key("Count").Int64())
	p.stack = []pdfFrame{{kids: root.Key("Kids")}}
	return p, nil
}

// NumPage returns the page count the document declares.
func (p *PDFReader) NumPage() int { return p.total }

// Next returns the text of the next page as a BlockPage (Location.Page is
// its 1-based number; pages without text give an empty Text), or io.EOF.
func (p *PDFReader) Next(ctx context.Context) (b Block, err error) {
	if err := checkCtx(ctx, p.file); err != nil {
		return Block{}, err
	}
	if p.done {
		return Block{}, io.EOF
	}
	defer func() {
		if x := recover(); x != nil {
			p.done = true
			b, err = Block{}, p.pdfErr(x)
		}
	}()
	page, ok, err := p.nextPage()
	if err != nil {
		p.done = true
		return Block{}, err
	}
	if !ok {
		p.done = true
		return Block{}, io.EOF
	}
	p.page++
	if err := p.checkStreams(page); err != nil {
		p.done = true
		return Block{}, err
	}
	fonts := map[string]*pdf.Font{}
	for _, name := range page.Fonts() {
		f := page.Font(name)
		key := name + "\x00" + f.BaseFont() + "\x00" + f.V.Key("Encoding").String()
		cached, ok := p.fonts[key]
		if !ok {
			if len(p.fonts) > 4096 {
				clear(p.fonts)
			}
			cached = &f
			p.fonts[key] = cached
		}
		fonts[name] = cached
	}
	text, err := page.GetPlainText(fonts)
	if err != nil {
		p.done = true
		return Block{}, p.pdfErr(err)
	}
	text = strings.TrimLeft(text, "\n")
	return Block{Kind: BlockPage, Text: text, Loc: Location{Page: p.page}}, nil
}

func (p *PDFReader) pdfErr(x any) error {
	part := "page " + strconv.Itoa(p.page)
	if e, ok := x.(error); ok {
		if strings.Contains(e.Error(), "unsupported filter") {
			return fmt.Errorf("%w: %s %s: %w", ErrUnsupported, p.file, part, e)
		}
		return wrapCorrupt(p.file, part, e)
	}
	return corruptf(p.file, part, "malformed PDF: %v", x)
}

// nextPage advances the depth-first walk to the next /Page leaf.
func (p *PDFReader) nextPage() (pdf.Page, bool, error) {
	for len(p.stack) > 0 {
		top := &p.stack[len(p.stack)-1]
		if top.i >= top.kids.Len() {
			p.stack = p.stack[:len(p.stack)-1]
			continue
		}
		kid := top.kids.Index(top.i)
		top.i++
		p.nodes++
		if p.nodes > p.lim.MaxPDFPages {
			return pdf.Page{}, false, &LimitError{File: p.file, Part: "page tree", Limit: "MaxPDFPages", Max: p.lim.MaxPDFPages, Got: p.nodes}
		}
		switch kid.Key("Type").Name() {
		case "Pages":
			if len(p.stack) >= maxPageTreeDepth {
				return pdf.Page{}, false, corruptf(p.file, "page tree", "page tree deeper than %d (cycle?)", maxPageTreeDepth)
			}
			p.stack = append(p.stack, pdfFrame{kids: kid.Key("Kids")})
		case "Page":
			return pdf.Page{V: kid}, true, nil
		default:
			if kid.Key("Kids").Kind() == pdf.Array {
				if len(p.stack) >= maxPageTreeDepth {
					return pdf.Page{}, false, corruptf(p.file, "page tree", "page tree deeper than %d (cycle?)", maxPageTreeDepth)
				}
				p.stack = append(p.stack, pdfFrame{kids: kid.Key("Kids")})
			} else if kid.Kind() == pdf.Dict {
				return pdf.Page{V: kid}, true, nil // a leaf without /Type
			}
		}
	}
	return pdf.Page{}, false, nil
}

// checkStreams decodes the page's content streams into io.Discard and
// fails if one is larger than MaxPDFStreamSize.
func (p *PDFReader) checkStreams(page pdf.Page) error {
	c := page.V.Key("Contents")
	var streams []pdf.Value
	switch c.Kind() {
	case pdf.Stream:
		streams = append(streams, c)
	case pdf.Array:
		if int64(c.Len()) > p.lim.MaxPDFPages {
			return &LimitError{File: p.file, Part: "page " + strconv.Itoa(p.page), Limit: "MaxPDFPages", Max: p.lim.MaxPDFPages, Got: int64(c.Len())}
		}
		for i := 0; i < c.Len(); i++ {
			streams = append(streams, c.Index(i))
		}
	}
	var total int64
	for _, s := range streams {
		if s.Kind() != pdf.Stream {
			continue
		}
		if l := s.Key("Length").Int64(); l < 0 || l > p.size {
			return corruptf(p.file, "page "+strconv.Itoa(p.page), "content stream /Length %d outside the file (%d bytes)", l, p.size)
		}
		rc := s.Reader()
		n, err := io.Copy(io.Discard, io.LimitReader(rc, p.lim.MaxPDFStreamSize-total+1))
		rc.Close()
		total += n
		if total > p.lim.MaxPDFStreamSize {
			return &LimitError{File: p.file, Part: "page " + strconv.Itoa(p.page) + " content stream", Limit: "MaxPDFStreamSize", Max: p.lim.MaxPDFStreamSize, Got: total}
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return corruptf(p.file, "page "+strconv.Itoa(p.page), "content stream: %v", err)
		}
	}
	return nil
}

// Close releases the reader (and the file, for OpenPDF).
func (p *PDFReader) Close() error {
	p.done = true
	if p.closer != nil {
		err := p.closer.Close()
		p.closer = nil
		return err
	}
	return nil
}
