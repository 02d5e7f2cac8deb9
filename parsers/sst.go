package parsers

import (
	"bufio"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"os"
)

const (
	sstCacheSlots  = 4096
	sstCacheMaxLen = 64 // longer strings are rarely repeated: not cached
)

// sharedStrings is the xlsx shared-string table, compact in memory while
// small and spilled to two temporary files once it passes a threshold: the
// strings appended to a data file and their start offsets in a fixed-width
// (8 bytes per entry) index file. A small direct-mapped cache keeps
// repeated short strings cheap. Memory is bounded by the threshold plus the
// cache, whatever the table's size.
type sharedStrings struct {
	memMax int64
	buf    []byte   // in-memory strings; once spilled, a read buffer
	offs   []uint32 // in-memory start offsets; len == count

	dir         string
	data, index *os.File
	dw, iw      *bufio.Writer
	size        int64 // bytes of string data
	count       int64

	dataCache, indexCache blockCache

	cache [sstCacheSlots]struct {
		i int64
		s string
	}
	scratch [16]byte
}

func newSharedStrings(dir string, memMax int64) *sharedStrings {
	s := &sharedStrings{memMax: memMax, dir: dir}
	for i := range s.cache {
		s.cache[i].i = -1
	}
	return s
}

func (s *sharedStrings) add(str []byte) error {
	if s.data == nil && s.memMax >= 0 && s.size+int64(len(str)) > s.memMax {
		if err := s.spill(); err != nil {
			return err
		}
	}
	if s.data == nil {
		s.offs = append(s.offs, uint32(len(s.buf)))
		s.buf = append(s.buf, str...)
	} else {
		binary.LittleEndian.PutUint64(s.scratch[:8], uint64(s.size))
		if _, err := s.iw.Write(s.scratch[:8]); err != nil {
			return fmt.Errorf("shared strings index: %w", err)
		}
		if _, err := s.dw.Write(str); err != nil {
			return fmt.Errorf("shared strings data: %w", err)
		}
	}
	s.size += int64(len(str))
	s.count++
	return nil
}

func (s *sharedStrings) spill() error {
	var err error
	if s.data, err = os.CreateTemp(s.dir, "dagrun-sst-data-*"); err != nil {
		return fmt.Errorf("shared strings spill: %w", err)
	}
	if s.index, err = os.CreateTemp(s.dir, "dagrun-sst-index-*"); err != nil {
		return fmt.Errorf("shared strings spill: %w", err)
	}
	s.dw = bufio.NewWriterSize(s.data, 64<<10)
	s.iw = bufio.NewWriterSize(s.index, 16<<10)
	if _, err := s.dw.Write(s.buf); err != nil {
		return fmt.Errorf("shared strings spill: %w", err)
	}
	for _, o := range s.offs {
		binary.LittleEndian.PutUint64(s.scratch[:8], uint64(o))
		if _, err := s.iw.Write(s.scratch[:8]); err != nil {
			return fmt.Errorf("shared strings spill: %w", err)
		}
	}
	s.buf, s.offs = nil, nil
	return nil
}

// finish ends the table; get may be called afterwards.
func (s *sharedStrings) finish() error {
	if s.data == nil {
		return nil
	}
	binary.LittleEndian.PutUint64(s.scratch[:8], uint64(s.size))
	if _, err := s.iw.Write(s.scratch[:8]); err != nil {
		return fmt.Errorf("shared strings index: %w", err)
	}
	if err := s.iw.Flush(); err != nil {
		return fmt.Errorf("shared strings index: %w", err)
	}
	if err := s.dw.Flush(); err != nil {
		return fmt.Errorf("shared strings data: %w", err)
	}
	s.iw, s.dw = nil, nil
	s.dataCache = blockCache{f: s.data, bs: 64 << 10}
	s.indexCache = blockCache{f: s.index, bs: 16 << 10}
	return nil
}

// spilled reports whether the table lives on disk.
func (s *sharedStrings) spilled() bool { return s.data != nil }

func (s *sharedStrings) get(i int64) (string, bool, error) {
	if i < 0 || i >= s.count {
		return "", false, nil
	}
	if s.data == nil {
		end := uint32(len(s.buf))
		if i+1 < int64(len(s.offs)) {
			end = s.offs[i+1]
		}
		return string(s.buf[s.offs[i]:end]), true, nil
	}
	slot := &s.cache[i%sstCacheSlots]
	if slot.i == i {
		return slot.s, true, nil
	}
	if err := s.indexCache.readAt(s.scratch[:16], i*8); err != nil {
		return "", false, fmt.Errorf("shared strings index: %w", err)
	}
	start := int64(binary.LittleEndian.Uint64(s.scratch[:8]))
	end := int64(binary.LittleEndian.Uint64(s.scratch[8:]))
	if end < start || end > s.size {
		return "", false, fmt.Errorf("shared strings index: bad entry %d", i)
	}
	if int64(cap(s.buf)) < end-start {
		s.buf = make([]byte, end-start)
	}
	b := s.buf[:end-start]
	if err := s.dataCache.readAt(b, start); err != nil {
		return "", false, fmt.Errorf("shared strings data: %w", err)
	}
	str := string(b)
	if cap(s.buf) > 64<<10 {
		s.buf = nil // do not keep a huge one-off buffer
	}
	if len(str) <= sstCacheMaxLen {
		slot.i, slot.s = i, str
	}
	return str, true, nil
}

// close removes the temporary files.
func (s *sharedStrings) close() error {
	var first error
	for _, f := range []*os.File{s.data, s.index} {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
		if err := os.Remove(f.Name()); err != nil && first == nil {
			first = err
		}
	}
	s.data, s.index = nil, nil
	return first
}

// readSharedStrings streams xl/sharedStrings.xml into a table, enforcing
// MaxSharedStrings, MaxSharedStringSize and MaxCellBytes. Phonetic runs
// (rPh) are left out, as Excel does when displaying.
func readSharedStrings(r io.Reader, file, part string, lim Limits, opts Options) (*sharedStrings, error) {
	mem := opts.SharedStringsInMemory
	if mem == 0 {
		mem = 256 << 10
	}
	s := newSharedStrings(opts.tempDir(), mem)
	x := newXMLStream(r, file, part, lim)
	var cur []byte
	inSI, inT, rph := false, false, 0
	fail := func(err error) (*sharedStrings, error) {
		_ = s.close()
		return nil, err
	}
	for {
		tok, err := x.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "si":
				inSI, cur = true, cur[:0]
			case "t":
				inT = inSI && rph == 0
			case "rPh":
				rph++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				if s.count >= lim.MaxSharedStrings {
					return fail(&LimitError{File: file, Part: part, Limit: "MaxSharedStrings", Max: lim.MaxSharedStrings, Got: s.count + 1})
				}
				if s.size+int64(len(cur)) > lim.MaxSharedStringSize {
					return fail(&LimitError{File: file, Part: part, Limit: "MaxSharedStringSize", Max: lim.MaxSharedStringSize, Got: s.size + int64(len(cur))})
				}
				if err := s.add(unescapeOOXML(cur)); err != nil {
					return fail(err)
				}
				inSI = false
			case "t":
				inT = false
			case "rPh":
				rph--
			}
		case xml.CharData:
			if inT {
				if int64(len(cur)+len(t)) > lim.MaxCellBytes {
					return fail(&LimitError{File: file, Part: part, Limit: "MaxCellBytes", Max: lim.MaxCellBytes, Got: int64(len(cur) + len(t))})
				}
				cur = append(cur, t...)
			}
		}
	}
	if err := s.finish(); err != nil {
		return fail(err)
	}
	return s, nil
}

// unescapeOOXML decodes the _xHHHH_ escapes Office uses for control
// characters in strings. It works in place.
func unescapeOOXML(b []byte) []byte {
	if len(b) < 7 {
		return b
	}
	out := b[:0]
	for i := 0; i < len(b); i++ {
		if b[i] == '_' && i+6 < len(b) && b[i+1] == 'x' && b[i+6] == '_' {
			if v, ok := hex4(b[i+2 : i+6]); ok {
				out = appendRune(out, rune(v))
				i += 6
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

func hex4(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

const cacheBlocks = 8

// blockCache is a small direct-mapped cache of fixed-size blocks of a
// file: shared strings are numbered in order of first use, so lookups
// while reading rows mostly hit recently loaded blocks. It holds at most
// cacheBlocks*bs bytes.
type blockCache struct {
	f      *os.File
	bs     int64
	blocks [cacheBlocks]struct {
		idx int64
		n   int64
		buf []byte
	}
}

func (c *blockCache) readAt(p []byte, off int64) error {
	if int64(len(p)) > 2*c.bs {
		_, err := c.f.ReadAt(p, off)
		if err == io.EOF {
			err = nil
		}
		return err
	}
	for len(p) > 0 {
		bi := off / c.bs
		slot := &c.blocks[bi%cacheBlocks]
		if slot.buf == nil || slot.idx != bi {
			if slot.buf == nil {
				slot.buf = make([]byte, c.bs)
			}
			n, err := c.f.ReadAt(slot.buf, bi*c.bs)
			if err != nil && err != io.EOF {
				slot.buf = nil
				return err
			}
			slot.idx, slot.n = bi, int64(n)
		}
		o := off - bi*c.bs
		if o >= slot.n {
			return io.ErrUnexpectedEOF
		}
		k := copy(p, slot.buf[o:slot.n])
		p = p[k:]
		off += int64(k)
	}
	return nil
}
