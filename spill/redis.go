package spill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps blobs in Redis: one key per chunk and a manifest key
// written last, all in one hash slot (the key is a hash tag), all expiring
// together. It works with a single node, Sentinel (failover) and Cluster
// clients. It is safe for concurrent use.
//
// Key layout for relative key K and prefix P:
//
//	P:{K}:m            manifest (JSON)
//	P:{K}:<gen>:<i>    chunk i of the Put generation gen
type RedisStore struct {
	e      *engine
	client redis.UniversalClient
	owned  bool
}

// NewRedis returns a store over client. The store never closes client:
// the caller owns it and closes it after closing the store.
func NewRedis(client redis.UniversalClient, cfg Config) (*RedisStore, error) {
	if client == nil {
		return nil, errors.New("spill: NewRedis: nil client")
	}
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	return &RedisStore{e: e, client: client}, nil
}

// Close releases the store's codec state. It closes the redis client only
// when Open created it.
func (s *RedisStore) Close() error {
	s.e.close()
	if s.owned {
		return s.client.Close()
	}
	return nil
}

func (s *RedisStore) base(key string) string { return s.e.cfg.Prefix + ":{" + key + "}" }

func (s *RedisStore) manifestKey(key string) string { return s.base(key) + ":m" }

func (s *RedisStore) chunkKey(key, gen string, i int) string {
	return s.base(key) + ":" + gen + ":" + strconv.Itoa(i)
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{Key: key}, blobErr("put", key, NoChunk, err)
	}
	sink := &redisSink{s: s, key: key, gen: newGen(), written: -1}
	return s.e.put(ctx, key, r, sink, sink.gen)
}

// Get implements Store. Reading also uses ctx: cancelling it fails reads.
func (s *RedisStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, blobErr("get", key, NoChunk, err)
	}
	var raw string
	err := s.retry(ctx, func() error {
		var err error
		// GETRANGE bounds what a hostile manifest key can make us read.
		raw, err = s.client.GetRange(ctx, s.manifestKey(key), 0, maxManifestBytes).Result()
		return err
	})
	if err != nil {
		return nil, blobErr("get", key, NoChunk, s.classify(err))
	}
	if raw == "" {
		return nil, blobErr("get", key, NoChunk, ErrNotFound)
	}
	m, err := parseManifest([]byte(raw))
	if err != nil {
		return nil, blobErr("get", key, NoChunk, err)
	}
	return s.e.get(ctx, key, m, &redisSource{s: s, key: key, m: m})
}

// Delete implements Store. It removes the manifest first, so the blob is
// invisible before its chunks go.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return blobErr("delete", key, NoChunk, err)
	}
	var raw string
	err := s.retry(ctx, func() error {
		var err error
		raw, err = s.client.GetDel(ctx, s.manifestKey(key)).Result()
		if errors.Is(err, redis.Nil) {
			raw, err = "", nil
		}
		return err
	})
	if err != nil {
		return blobErr("delete", key, NoChunk, s.classify(err))
	}
	if raw == "" {
		return nil
	}
	s.deleteChunks(ctx, key, raw)
	return nil
}

// deleteChunks removes the chunks a manifest names; best effort, as they
// expire anyway.
func (s *RedisStore) deleteChunks(ctx context.Context, key, raw string) {
	m, err := parseManifest([]byte(raw))
	if err != nil {
		s.e.cfg.Logger.WarnContext(ctx, "spill: old manifest unreadable, chunks left to expire", "key", key, "err", err)
		return
	}
	s.unlinkChunks(ctx, key, m.Gen, m.chunks())
}

func (s *RedisStore) unlinkChunks(ctx context.Context, key, gen string, n int) {
	const batch = 256
	for lo := 0; lo < n; lo += batch {
		keys := make([]string, 0, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			keys = append(keys, s.chunkKey(key, gen, i))
		}
		if err := s.retry(ctx, func() error { return s.client.Unlink(ctx, keys...).Err() }); err != nil {
			s.e.cfg.Logger.WarnContext(ctx, "spill: deleting chunks failed, left to expire", "key", key, "gen", gen, "err", err)
			return
		}
	}
}

// retry runs op, retrying transient network errors with doubling backoff.
func (s *RedisStore) retry(ctx context.Context, op func() error) error {
	backoff := s.e.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !transient(err) || attempt >= s.e.cfg.Retries {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after %d attempts, last: %w)", context.Cause(ctx), attempt+1, err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// transient reports whether err may go away on retry.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		// go-redis already retried the dial (5 attempts); nobody listens.
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// classify wraps err with the sentinel callers branch on.
func (s *RedisStore) classify(err error) error {
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case strings.HasPrefix(err.Error(), "OOM "):
		return fmt.Errorf("%w: %w", ErrFull, err)
	case transient(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

type redisSink struct {
	s       *RedisStore
	key     string
	gen     string
	written int // highest chunk index written
}

func (w *redisSink) writeChunk(ctx context.Context, i int, b []byte) error {
	k := w.s.chunkKey(w.key, w.gen, i)
	err := w.s.retry(ctx, func() error { return w.s.client.Set(ctx, k, b, w.s.e.cfg.TTL).Err() })
	w.written = max(w.written, i)
	if err != nil {
		return &BlobError{Op: "put", Key: w.key, Chunk: i, Err: w.s.classify(err)}
	}
	return nil
}

// commit extends every chunk to the manifest's expiry, failing if one
// already expired, then writes the manifest and drops the chunks of the
// blob it replaced.
func (w *redisSink) commit(ctx context.Context, m *manifest) error {
	deadline := time.Now().Add(w.s.e.cfg.TTL)
	n := m.chunks()
	var cmds []redis.Cmder
	err := w.s.retry(ctx, func() error {
		var err error
		cmds, err = w.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < n; i++ {
				p.PExpireAt(ctx, w.s.chunkKey(w.key, w.gen, i), deadline)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return &BlobError{Op: "put", Key: w.key, Chunk: NoChunk, Err: w.s.classify(err)}
	}
	for i, c := range cmds {
		if ok, _ := c.(*redis.BoolCmd).Result(); !ok {
			return &BlobError{Op: "put", Key: w.key, Chunk: i, Chunks: n, Err: fmt.Errorf("%w: expired or deleted before the manifest was written (TTL %v)", ErrChunkMissing, w.s.e.cfg.TTL)}
		}
	}
	var old string
	err = w.s.retry(ctx, func() error {
		var err error
		old, err = w.s.client.SetArgs(ctx, w.s.manifestKey(w.key), m.marshal(), redis.SetArgs{ExpireAt: deadline, Get: true}).Result()
		if errors.Is(err, redis.Nil) {
			old, err = "", nil
		}
		return err
	})
	if err != nil {
		return &BlobError{Op: "put", Key: w.key, Chunk: NoChunk, Err: w.s.classify(err)}
	}
	if old != "" {
		w.s.deleteChunks(ctx, w.key, old)
	}
	return nil
}

func (w *redisSink) putSmall(ctx context.Context, chunks [][]byte, m *manifest) error {
	deadline := time.Now().Add(w.s.e.cfg.TTL)
	var get *redis.StatusCmd
	err := w.s.retry(ctx, func() error {
		_, err := w.s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range chunks {
				p.SetArgs(ctx, w.s.chunkKey(w.key, w.gen, i), c, redis.SetArgs{ExpireAt: deadline})
			}
			get = p.SetArgs(ctx, w.s.manifestKey(w.key), m.marshal(), redis.SetArgs{ExpireAt: deadline, Get: true})
			return nil
		})
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		return err
	})
	w.written = len(chunks) - 1
	if err != nil {
		w.abort(context.WithoutCancel(ctx))
		return &BlobError{Op: "put", Key: w.key, Chunk: NoChunk, Err: w.s.classify(err)}
	}
	if old, _ := get.Result(); old != "" {
		w.s.deleteChunks(ctx, w.key, old)
	}
	return nil
}

func (w *redisSink) abort(ctx context.Context) {
	if w.written >= 0 {
		w.s.unlinkChunks(ctx, w.key, w.gen, w.written+1)
	}
}

type redisSource struct {
	s   *RedisStore
	key string
	m   *manifest
}

// readPiece is the size of the GETRANGE pieces a chunk is read in: go-redis
// allocates every reply, so reading a chunk in pieces copied into a reused
// buffer keeps the garbage per chunk, and so the heap, small.
const readPiece = 128 << 10

func (r *redisSource) readChunk(ctx context.Context, i, n int, buf []byte) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:0]
	key := r.s.chunkKey(r.key, r.m.Gen, i)
	// One byte past the end too: a longer chunk is corrupt.
	for off := 0; off <= n; off += readPiece {
		end := min(off+readPiece, n+1) - 1
		var piece string
		err := r.s.retry(ctx, func() error {
			var err error
			piece, err = r.s.client.GetRange(ctx, key, int64(off), int64(end)).Result()
			return err
		})
		if err != nil {
			return nil, &BlobError{Op: "read", Key: r.key, Chunk: i, Chunks: r.m.chunks(), Err: r.s.classify(err)}
		}
		buf = append(buf, piece...)
		if len(piece) < end-off+1 {
			break
		}
	}
	if len(buf) == 0 {
		return nil, &BlobError{Op: "read", Key: r.key, Chunk: i, Chunks: r.m.chunks(), Err: fmt.Errorf("%w: expired or deleted (TTL %v)", ErrChunkMissing, r.s.e.cfg.TTL)}
	}
	return buf, nil
}

func (r *redisSource) close() error { return nil }
