package spill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store keeps blobs outside the process. Implementations are safe for
// concurrent use.
type Store interface {
	// Put reads r to its end and stores it under key, replacing any blob
	// already there. The blob becomes visible only when Put returns nil; on
	// any error (including one from r) no partial blob is ever visible and a
	// previous blob under key is left intact.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Get opens the blob under key for streaming. It returns an error
	// matching ErrNotFound when there is no complete blob. The caller must
	// Close the reader. Reading returns io.EOF only after the whole blob was
	// returned and verified.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the blob under key. Deleting a missing blob is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Info describes one stored blob as Put wrote it.
type Info struct {
	// Key is the relative key the blob was stored under.
	Key string
	// RawBytes is the number of bytes read from the caller.
	RawBytes int64
	// CompressedBytes is the number of bytes stored (all chunks).
	CompressedBytes int64
	// Chunks is the number of chunks stored.
	Chunks int
	// Duration is the wall time Put took.
	Duration time.Duration
}

// Ratio returns RawBytes/CompressedBytes, or 0 for an empty blob.
func (i Info) Ratio() float64 {
	if i.CompressedBytes == 0 {
		return 0
	}
	return float64(i.RawBytes) / float64(i.CompressedBytes)
}

var (
	// ErrNotFound means no complete blob exists under the key (never
	// written, deleted, or expired). The caller recomputes the output.
	ErrNotFound = errors.New("spill: blob not found")
	// ErrInvalidKey means the key is empty, too long or has characters or
	// segments the stores do not accept. The caller has a bug.
	ErrInvalidKey = errors.New("spill: invalid key")
	// ErrCorrupt means a chunk, the manifest or the decoded stream failed
	// its checksum or could not be decoded. The blob is unusable: the caller
	// recomputes the output.
	ErrCorrupt = errors.New("spill: blob corrupt")
	// ErrChunkMissing means the manifest exists but a chunk does not (it
	// expired or was deleted). The blob is unusable: the caller recomputes.
	ErrChunkMissing = errors.New("spill: chunk missing")
	// ErrUnavailable means the backing store could not be reached after
	// bounded retries. The caller may retry later.
	ErrUnavailable = errors.New("spill: store unavailable")
	// ErrFull means the backing store has no room (disk full, Redis
	// maxmemory reached). The caller frees space or fails the node.
	ErrFull = errors.New("spill: store full")
	// ErrTooLarge means a blob exceeds Config.MaxBlobBytes.
	ErrTooLarge = errors.New("spill: blob too large")
)

// NoChunk is the Chunk value of a BlobError that is not about one chunk.
const NoChunk = -1

// BlobError is a failure about one blob. It unwraps to a sentinel (one of
// the Err* values) and to the underlying cause.
type BlobError struct {
	// Op is "put", "get", "read" or "delete".
	Op string
	// Key is the relative key.
	Key string
	// Chunk is the chunk index, or NoChunk.
	Chunk int
	// Chunks is the blob's chunk count when known, else 0.
	Chunks int
	// Err is the cause; errors.Is sees through it.
	Err error
}

func (e *BlobError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "spill %s %q", e.Op, e.Key)
	if e.Chunk != NoChunk {
		if e.Chunks > 0 {
			fmt.Fprintf(&b, " chunk %d of %d", e.Chunk, e.Chunks)
		} else {
			fmt.Fprintf(&b, " chunk %d", e.Chunk)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *BlobError) Unwrap() error { return e.Err }

func blobErr(op, key string, chunk int, err error) error {
	return &BlobError{Op: op, Key: key, Chunk: chunk, Err: err}
}

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 200

// ValidateKey reports whether key is acceptable to every store: 1 to
// MaxKeyLen bytes of segments separated by "/", each segment non-empty, not
// "." or "..", made of ASCII letters, digits and "._-=:@+".
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" segment", ErrInvalidKey, key)
		}
	}
	for i := 0; i < len(key); i++ {
		if !keyByte(key[i]) {
			return fmt.Errorf("%w: %q has byte %q at offset %d (allowed: letters, digits, /._-=:@+)", ErrInvalidKey, key, key[i], i)
		}
	}
	return nil
}

func keyByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("/._-=:@+", c) >= 0
}
