package spill

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// writeBlobFile writes comp as a blob file for key with a manifest whose
// checksums match, as a hostile but well-formed writer would.
func writeBlobFile(t testing.TB, s *DirStore, key string, comp []byte, size int64, sum uint64) {
	t.Helper()
	m := &manifest{Version: manifestVersion, Codec: codecZstd, Size: size, CSize: int64(len(comp)), ChunkSize: s.e.cfg.ChunkSize, Sum: sum}
	for off := 0; off < len(comp); off += m.ChunkSize {
		m.Sums = append(m.Sums, crc32.Checksum(comp[off:min(off+m.ChunkSize, len(comp))], castagnoli))
	}
	if err := os.WriteFile(s.Path(key), append(append([]byte{}, comp...), footer(m)...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A blob whose zstd frame needs a larger window than DecoderMaxMemory is
// refused with ErrCorrupt instead of being decoded.
func TestDecoderMemoryBound(t *testing.T) {
	t.Parallel()
	s, err := NewDir(t.TempDir(), Config{ChunkSize: MinChunkSize, DecoderMaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var comp bytes.Buffer
	enc, _ := zstd.NewWriter(&comp, zstd.WithWindowSize(64<<20), zstd.WithEncoderConcurrency(1))
	_, _ = enc.Write(raw)
	_ = enc.Close()
	writeBlobFile(t, s, "runs/r/hostile", comp.Bytes(), int64(len(raw)), xxhash.Sum64(raw))
	rc, err := s.Get(context.Background(), "runs/r/hostile")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrCorrupt) || n != 0 {
		t.Fatalf("read %d bytes, err %v; want 0 bytes and ErrCorrupt", n, err)
	}
	t.Log(err)
}

// A well-formed blob whose manifest lies about the raw size or checksum
// is rejected at the end of the stream, never returned as valid.
func TestWholeChecksum(t *testing.T) {
	t.Parallel()
	s, err := NewDir(t.TempDir(), Config{ChunkSize: MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{1000, 300 << 10} {
		raw := bytes.Repeat([]byte("spill "), n/6)
		comp := s.e.small.EncodeAll(raw, nil)
		writeBlobFile(t, s, "runs/r/sum", comp, int64(len(raw)), xxhash.Sum64(raw)^1)
		rc, err := s.Get(context.Background(), "runs/r/sum")
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d bytes: err %v, want ErrCorrupt", n, err)
		}
	}
}

// memSource serves chunks from one byte slice.
type memSource struct {
	b []byte
	m *manifest
}

func (s *memSource) readChunk(_ context.Context, i, n int, _ []byte) ([]byte, error) {
	off := i * s.m.ChunkSize
	if off+n > len(s.b) {
		return nil, ErrCorrupt
	}
	return s.b[off : off+n], nil
}

func (s *memSource) close() error { return nil }

// FuzzBlobFile feeds arbitrary bytes to the blob-file parser and decoder:
// no panic, bounded memory, and any blob read without error matches its
// manifest's size and checksum.
func FuzzBlobFile(f *testing.F) {
	e, err := newEngine(Config{ChunkSize: MinChunkSize, DecoderMaxMemory: 4 << 20})
	if err != nil {
		f.Fatal(err)
	}
	defer e.close()
	dir := f.TempDir()
	s, err := NewDir(dir, Config{ChunkSize: MinChunkSize})
	if err != nil {
		f.Fatal(err)
	}
	for i, n := range []int{0, 5, 5000, 70 << 10} {
		key := "seed/" + string(rune('a'+i))
		if _, err := s.Put(context.Background(), key, bytes.NewReader(bytes.Repeat([]byte("ab,cd\n"), n/6+1)[:n])); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(s.Path(key))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readFooter(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("footer error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		rc, err := e.get(context.Background(), "fuzz", m, &memSource{b: b, m: m})
		if err != nil {
			return
		}
		defer rc.Close()
		out, err := io.ReadAll(io.LimitReader(rc, 64<<20))
		if err == nil && (int64(len(out)) != m.Size || xxhash.Sum64(out) != m.Sum) {
			t.Fatalf("read %d bytes without error, manifest says %d", len(out), m.Size)
		}
	})
}

// FuzzManifest checks the manifest parser never panics and only accepts
// self-consistent manifests.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"v":1,"codec":"zstd","size":10,"csize":19,"chunk_size":4096,"crc32c":[1],"xxh64":5,"created_ms":1}`))
	f.Add([]byte(`{"v":1,"codec":"zstd","size":0,"csize":9000,"chunk_size":4096,"crc32c":[1,2,3],"xxh64":0,"gen":"ab","created_ms":0}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if m.validate() != nil || m.chunkLen(m.chunks()-1) <= 0 || m.chunkLen(m.chunks()-1) > m.ChunkSize {
			t.Fatalf("accepted inconsistent manifest %+v", m)
		}
	})
}
