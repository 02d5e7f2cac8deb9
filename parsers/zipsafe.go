package parsers

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// oleMagic starts a Compound File Binary: what Office writes for
// password-protected (encrypted) xlsx/docx/pptx files.
var oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// ratioMinSize is the uncompressed size below which the compression ratio
// is not checked: small XML parts legitimately compress very well.
const ratioMinSize = 1 << 20

// archive is a zip file opened with limits. Every part is read through a
// counter that enforces the part, total and ratio limits on the bytes
// actually inflated, whatever the headers claim.
type archive struct {
	zr    *zip.Reader
	files map[string]*zip.File // by lower-case name
	file  string
	lim   Limits
	total int64 // uncompressed bytes read so far, all parts
}

func openArchive(ra io.ReaderAt, size int64, opts Options, lim Limits) (*archive, error) {
	name := opts.name()
	if size > lim.MaxFileSize {
		return nil, &LimitError{File: name, Limit: "MaxFileSize", Max: lim.MaxFileSize, Got: size}
	}
	var head [8]byte
	if n, _ := ra.ReadAt(head[:], 0); n == 8 && bytes.Equal(head[:], oleMagic) {
		return nil, fmt.Errorf("%w: %s is a password-protected (OLE compound) file", ErrEncrypted, name)
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, corruptf(name, "", "not a zip archive or truncated: %v", err)
	}
	a := &archive{zr: zr, files: make(map[string]*zip.File, len(zr.File)), file: name, lim: lim}
	for _, f := range zr.File {
		a.files[strings.ToLower(strings.TrimPrefix(f.Name, "/"))] = f
	}
	return a, nil
}

// has reports whether the archive holds part.
func (a *archive) has(part string) bool {
	_, ok := a.files[strings.ToLower(strings.TrimPrefix(part, "/"))]
	return ok
}

// open opens part for streaming. Missing parts give ErrCorrupt.
func (a *archive) open(part string) (io.ReadCloser, error) {
	part = strings.TrimPrefix(part, "/")
	f, ok := a.files[strings.ToLower(part)]
	if !ok {
		return nil, corruptf(a.file, part, "missing part")
	}
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("%w: %s part %s is encrypted", ErrEncrypted, a.file, part)
	}
	if int64(f.UncompressedSize64) > a.lim.MaxPartSize || f.UncompressedSize64 > 1<<62 {
		return nil, &LimitError{File: a.file, Part: part, Limit: "MaxPartSize", Max: a.lim.MaxPartSize, Got: int64(min(f.UncompressedSize64, 1<<62))}
	}
	if r := ratio(int64(f.UncompressedSize64), int64(f.CompressedSize64)); int64(f.UncompressedSize64) > ratioMinSize && r > a.lim.MaxCompressionRatio {
		return nil, &LimitError{File: a.file, Part: part, Limit: "MaxCompressionRatio", Max: int64(a.lim.MaxCompressionRatio), Got: int64(r)}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, corruptf(a.file, part, "%v", err)
	}
	return &partReader{rc: rc, a: a, part: part, compressed: int64(f.CompressedSize64)}, nil
}

func ratio(u, c int64) float64 {
	if c <= 0 {
		c = 1
	}
	return float64(u) / float64(c)
}

// resolve joins a relationship target to the directory of its source part.
func resolve(base, target string) string {
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(target, "/")
	}
	return path.Clean(path.Join(path.Dir(base), target))
}

// partReader counts inflated bytes and enforces the limits on them.
type partReader struct {
	rc         io.ReadCloser
	a          *archive
	part       string
	n          int64
	compressed int64
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	p.n += int64(n)
	p.a.total += int64(n)
	lim := p.a.lim
	switch {
	case p.n > lim.MaxPartSize:
		return n, &LimitError{File: p.a.file, Part: p.part, Limit: "MaxPartSize", Max: lim.MaxPartSize, Got: p.n}
	case p.a.total > lim.MaxTotalSize:
		return n, &LimitError{File: p.a.file, Part: p.part, Limit: "MaxTotalSize", Max: lim.MaxTotalSize, Got: p.a.total}
	case p.n > ratioMinSize && ratio(p.n, p.compressed) > lim.MaxCompressionRatio:
		return n, &LimitError{File: p.a.file, Part: p.part, Limit: "MaxCompressionRatio", Max: int64(lim.MaxCompressionRatio), Got: int64(ratio(p.n, p.compressed))}
	}
	if err != nil && err != io.EOF {
		err = corruptf(p.a.file, p.part, "%v", err)
	}
	return n, err
}

func (p *partReader) Close() error { return p.rc.Close() }
