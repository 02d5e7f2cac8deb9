package spill

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Blob file layout of the directory store:
//
//	chunk 0 .. chunk n-1 | manifest JSON | len uint32 LE | crc32c uint32 LE | "DAGSPIL1"
const (
	blobMagic   = "DAGSPIL1"
	trailerSize = 16
	blobExt     = ".blob"
	tmpDir      = ".tmp"
)

// DirStore keeps each blob as one file in a local directory, written to a
// temporary file and renamed into place when complete. Files older than the
// TTL count as missing; Prune removes them. It is safe for concurrent use,
// also by several processes sharing the directory.
type DirStore struct {
	e    *engine
	root string // dir/prefix
}

// NewDir returns a store under dir (created if missing); blobs go to the
// subdirectory cfg.Prefix.
func NewDir(dir string, cfg Config) (*DirStore, error) {
	if dir == "" {
		return nil, errors.New("spill: NewDir: empty directory")
	}
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, e.cfg.Prefix)
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o750); err != nil {
		e.close()
		return nil, fmt.Errorf("spill: directory store: %w", err)
	}
	return &DirStore{e: e, root: root}, nil
}

// Close releases the store's codec state.
func (s *DirStore) Close() error {
	s.e.close()
	return nil
}

// Path returns the file a key's blob is stored in.
func (s *DirStore) Path(key string) string {
	return filepath.Join(s.root, strings.ReplaceAll(key, "/", "%2F")+blobExt)
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{Key: key}, blobErr("put", key, NoChunk, err)
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return Info{Key: key}, blobErr("put", key, NoChunk, fsErr(err))
	}
	sink := &dirSink{s: s, key: key, f: f}
	return s.e.put(ctx, key, r, sink, "")
}

// Get implements Store. Reading also uses ctx: cancelling it fails reads.
func (s *DirStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, blobErr("get", key, NoChunk, err)
	}
	f, err := os.Open(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blobErr("get", key, NoChunk, ErrNotFound)
	}
	if err != nil {
		return nil, blobErr("get", key, NoChunk, fsErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blobErr("get", key, NoChunk, fsErr(err))
	}
	if age := time.Since(st.ModTime()); age > s.e.cfg.TTL {
		f.Close()
		return nil, blobErr("get", key, NoChunk, fmt.Errorf("%w: expired %v ago (TTL %v)", ErrNotFound, (age-s.e.cfg.TTL).Round(time.Millisecond), s.e.cfg.TTL))
	}
	m, err := readFooter(f, st.Size())
	if err != nil {
		f.Close()
		return nil, blobErr("get", key, NoChunk, err)
	}
	return s.e.get(ctx, key, m, &dirSource{f: f, key: key, m: m})
}

// readFooter reads and checks the manifest at the end of a blob file.
func readFooter(r io.ReaderAt, size int64) (*manifest, error) {
	if size < trailerSize {
		return nil, fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte trailer", ErrCorrupt, size, trailerSize)
	}
	var tr [trailerSize]byte
	if _, err := r.ReadAt(tr[:], size-trailerSize); err != nil {
		return nil, fmt.Errorf("%w: reading trailer: %w", ErrCorrupt, err)
	}
	if string(tr[8:]) != blobMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrCorrupt, tr[8:])
	}
	mlen := int64(binary.LittleEndian.Uint32(tr[0:4]))
	if mlen > maxManifestBytes || mlen > size-trailerSize {
		return nil, fmt.Errorf("%w: manifest length %d does not fit file of %d bytes (limit %d)", ErrCorrupt, mlen, size, maxManifestBytes)
	}
	mb := make([]byte, mlen)
	if _, err := r.ReadAt(mb, size-trailerSize-mlen); err != nil {
		return nil, fmt.Errorf("%w: reading manifest: %w", ErrCorrupt, err)
	}
	if got, want := crc32.Checksum(mb, castagnoli), binary.LittleEndian.Uint32(tr[4:8]); got != want {
		return nil, fmt.Errorf("%w: manifest crc32c %08x, trailer says %08x", ErrCorrupt, got, want)
	}
	m, err := parseManifest(mb)
	if err != nil {
		return nil, err
	}
	if m.CSize != size-trailerSize-mlen {
		return nil, fmt.Errorf("%w: manifest says %d compressed bytes, file holds %d", ErrCorrupt, m.CSize, size-trailerSize-mlen)
	}
	return m, nil
}

func footer(m *manifest) []byte {
	mb := m.marshal()
	out := make([]byte, len(mb)+trailerSize)
	copy(out, mb)
	binary.LittleEndian.PutUint32(out[len(mb):], uint32(len(mb)))
	binary.LittleEndian.PutUint32(out[len(mb)+4:], crc32.Checksum(mb, castagnoli))
	copy(out[len(mb)+8:], blobMagic)
	return out
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return blobErr("delete", key, NoChunk, err)
	}
	if err := os.Remove(s.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return blobErr("delete", key, NoChunk, fsErr(err))
	}
	return nil
}

// Prune removes blobs older than the TTL and temporary files of Puts that
// died (older than the TTL too). It returns how many files it removed.
func (s *DirStore) Prune(ctx context.Context) (int, error) {
	removed := 0
	cutoff := time.Now().Add(-s.e.cfg.TTL)
	for _, dir := range []string{s.root, filepath.Join(s.root, tmpDir)} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return removed, fmt.Errorf("spill: prune %s: %w", dir, err)
		}
		for _, ent := range ents {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			if ent.IsDir() {
				continue
			}
			info, err := ent.Info()
			if err != nil || !info.ModTime().Before(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, ent.Name())); err == nil {
				removed++
			}
		}
	}
	return removed, nil
}

// fsErr marks a full disk or quota with ErrFull.
func fsErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

type dirSink struct {
	s   *DirStore
	key string
	f   *os.File
}

func (w *dirSink) writeChunk(_ context.Context, i int, b []byte) error {
	if _, err := w.f.Write(b); err != nil {
		return &BlobError{Op: "put", Key: w.key, Chunk: i, Err: fsErr(err)}
	}
	return nil
}

func (w *dirSink) commit(ctx context.Context, m *manifest) error {
	if err := ctx.Err(); err != nil {
		return blobErr("put", w.key, NoChunk, err)
	}
	if _, err := w.f.Write(footer(m)); err != nil {
		return blobErr("put", w.key, NoChunk, fsErr(err))
	}
	if w.s.e.cfg.SyncWrites {
		if err := w.f.Sync(); err != nil {
			return blobErr("put", w.key, NoChunk, fsErr(err))
		}
	}
	if err := w.f.Close(); err != nil {
		return blobErr("put", w.key, NoChunk, fsErr(err))
	}
	if err := os.Rename(w.f.Name(), w.s.Path(w.key)); err != nil {
		return blobErr("put", w.key, NoChunk, fsErr(err))
	}
	return nil
}

func (w *dirSink) putSmall(ctx context.Context, chunks [][]byte, m *manifest) error {
	for i, c := range chunks {
		if err := w.writeChunk(ctx, i, c); err != nil {
			w.abort(ctx)
			return err
		}
	}
	if err := w.commit(ctx, m); err != nil {
		w.abort(ctx)
		return err
	}
	return nil
}

func (w *dirSink) abort(context.Context) {
	_ = w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.s.e.cfg.Logger.Warn("spill: removing temporary file failed", "key", w.key, "path", w.f.Name(), "err", err)
	}
}

type dirSource struct {
	f   *os.File
	key string
	m   *manifest
}

func (r *dirSource) readChunk(ctx context.Context, i, n int, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &BlobError{Op: "read", Key: r.key, Chunk: i, Chunks: r.m.chunks(), Err: err}
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := r.f.ReadAt(buf, int64(i)*int64(r.m.ChunkSize)); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: file truncated: %w", ErrCorrupt, err)
		}
		return nil, &BlobError{Op: "read", Key: r.key, Chunk: i, Chunks: r.m.chunks(), Err: err}
	}
	return buf, nil
}

func (r *dirSource) close() error { return r.f.Close() }
