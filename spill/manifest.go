package spill

import (
	"bytes"
	"encoding/json"
	"fmt"
)

const (
	manifestVersion = 1
	codecZstd       = "zstd"
	// maxManifestBytes bounds a manifest read from a store (about 380,000
	// chunks, 370 GiB compressed at the default chunk size).
	maxManifestBytes = 4 << 20
)

// manifest describes one complete blob. It is written after every chunk.
type manifest struct {
	Version   int      `json:"v"`
	Codec     string   `json:"codec"`
	Size      int64    `json:"size"`
	CSize     int64    `json:"csize"`
	ChunkSize int      `json:"chunk_size"`
	Sums      []uint32 `json:"crc32c"`
	Sum       uint64   `json:"xxh64"`
	Gen       string   `json:"gen,omitempty"`
	Created   int64    `json:"created_ms"`
}

func (m *manifest) chunks() int { return len(m.Sums) }

// chunkLen returns the length of chunk i.
func (m *manifest) chunkLen(i int) int {
	off := int64(i) * int64(m.ChunkSize)
	if rest := m.CSize - off; rest < int64(m.ChunkSize) {
		return int(rest)
	}
	return m.ChunkSize
}

func (m *manifest) marshal() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("spill: marshal manifest: %v", err)) // only plain fields: cannot fail
	}
	return b
}

// parseManifest decodes and validates a manifest. Every inconsistency is an
// error wrapping ErrCorrupt; it never allocates more than about twice
// len(b).
func parseManifest(b []byte) (*manifest, error) {
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%w: manifest is %d bytes, limit %d", ErrCorrupt, len(b), maxManifestBytes)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: manifest: trailing data", ErrCorrupt)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	return &m, nil
}

func (m *manifest) validate() error {
	switch {
	case m.Version != manifestVersion:
		return fmt.Errorf("version %d, want %d", m.Version, manifestVersion)
	case m.Codec != codecZstd:
		return fmt.Errorf("codec %q, want %q", m.Codec, codecZstd)
	case m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize:
		return fmt.Errorf("chunk_size %d outside [%d, %d]", m.ChunkSize, MinChunkSize, MaxChunkSize)
	case m.Size < 0:
		return fmt.Errorf("size %d is negative", m.Size)
	case m.CSize <= 0:
		return fmt.Errorf("csize %d is not positive", m.CSize)
	case len(m.Gen) > 64:
		return fmt.Errorf("gen is %d bytes, limit 64", len(m.Gen))
	}
	want := (m.CSize + int64(m.ChunkSize) - 1) / int64(m.ChunkSize)
	if int64(len(m.Sums)) != want {
		return fmt.Errorf("%d chunk checksums for csize %d and chunk_size %d, want %d", len(m.Sums), m.CSize, m.ChunkSize, want)
	}
	return nil
}
