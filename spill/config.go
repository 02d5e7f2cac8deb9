package spill

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultPrefix        = "dagrun:spill"
	DefaultTTL           = 24 * time.Hour
	DefaultChunkSize     = 1 << 20
	DefaultReadAhead     = 1
	DefaultDecoderMemory = 32 << 20
	DefaultRetries       = 3
	DefaultRetryBackoff  = 50 * time.Millisecond
	// MinChunkSize and MaxChunkSize bound Config.ChunkSize.
	MinChunkSize = 4 << 10
	MaxChunkSize = 64 << 20
)

// Config configures a store. The zero value means every default.
type Config struct {
	// Prefix is the namespace (tenant) every key is placed under: a Redis
	// key prefix, or a subdirectory of the directory store. Default
	// DefaultPrefix. Letters, digits and "._-:" only.
	Prefix string
	// TTL is how long a blob lives after Put. Redis expires every key of a
	// blob together; the directory store treats older files as missing and
	// removes them in Prune. Default DefaultTTL.
	TTL time.Duration
	// ChunkSize is the size of the compressed chunks, between MinChunkSize
	// and MaxChunkSize. Default DefaultChunkSize.
	ChunkSize int
	// ReadAhead is how many verified chunks Get fetches ahead of the
	// reader. Default DefaultReadAhead.
	ReadAhead int
	// Level is the zstd level (1 fastest .. 4 best). Default 1.
	Level int
	// DecoderMaxMemory bounds the zstd decoder's window and in-memory
	// decoding, so a hostile blob cannot blow up memory. Default
	// DefaultDecoderMemory. Blobs are written with a window of at most
	// 8 MiB.
	DecoderMaxMemory uint64
	// MaxBlobBytes rejects Puts of more raw bytes than this (0: no limit).
	MaxBlobBytes int64
	// Retries is how many times a transient network failure of one Redis
	// command is retried (total attempts Retries+1). Default DefaultRetries;
	// negative disables retries.
	Retries int
	// RetryBackoff is the first wait between retries, doubled each time.
	// Default DefaultRetryBackoff.
	RetryBackoff time.Duration
	// SyncWrites makes the directory store fsync each blob before it
	// becomes visible, so blobs survive a host crash, not only a worker
	// crash (the page cache outlives a SIGKILLed process). Default off: a
	// blob torn by a host crash fails its checksums, it is never read as
	// valid.
	SyncWrites bool
	// Logger receives warnings (failed cleanup). Default: discard.
	Logger *slog.Logger
}

// Validate reports a configuration error naming the field.
func (c Config) Validate() error {
	for i := 0; i < len(c.Prefix); i++ {
		b := c.Prefix[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("._-:", b) >= 0) {
			return fmt.Errorf("spill config: Prefix %q has byte %q (allowed: letters, digits, ._-:)", c.Prefix, b)
		}
	}
	if c.TTL < 0 {
		return fmt.Errorf("spill config: TTL %v is negative", c.TTL)
	}
	if c.TTL != 0 && c.TTL < time.Millisecond {
		return fmt.Errorf("spill config: TTL %v is below 1ms", c.TTL)
	}
	if c.ChunkSize != 0 && (c.ChunkSize < MinChunkSize || c.ChunkSize > MaxChunkSize) {
		return fmt.Errorf("spill config: ChunkSize %d outside [%d, %d]", c.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if c.ReadAhead < 0 || c.ReadAhead > 64 {
		return fmt.Errorf("spill config: ReadAhead %d outside [0, 64]", c.ReadAhead)
	}
	if c.Level < 0 || c.Level > 4 {
		return fmt.Errorf("spill config: Level %d outside [1, 4]", c.Level)
	}
	if c.DecoderMaxMemory != 0 && c.DecoderMaxMemory < 1<<20 {
		return fmt.Errorf("spill config: DecoderMaxMemory %d below 1 MiB", c.DecoderMaxMemory)
	}
	if c.MaxBlobBytes < 0 {
		return fmt.Errorf("spill config: MaxBlobBytes %d is negative", c.MaxBlobBytes)
	}
	if c.RetryBackoff < 0 {
		return fmt.Errorf("spill config: RetryBackoff %v is negative", c.RetryBackoff)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = DefaultReadAhead
	}
	if c.Level == 0 {
		c.Level = 1
	}
	if c.DecoderMaxMemory == 0 {
		c.DecoderMaxMemory = DefaultDecoderMemory
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
