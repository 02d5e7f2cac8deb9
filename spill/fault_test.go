package spill_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/spill/spilltest"
)

// readResult reads key whole and checks that whatever came back before an
// error is a prefix of want: a failure is never a wrong result.
func readResult(t *testing.T, s spill.Store, key string, want []byte) error {
	t.Helper()
	got, err := spilltest.ReadAll(context.Background(), s, key)
	if !bytes.HasPrefix(want, got) {
		t.Fatalf("read %d bytes that are not a prefix of the blob", len(got))
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes without error, want %d", len(got), len(want))
	}
	return err
}

// wantBlobErr checks err's sentinel, key and chunk index (chunk < -1: any).
func wantBlobErr(t *testing.T, err error, sentinel error, key string, chunk int) *spill.BlobError {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	var be *spill.BlobError
	if !errors.As(err, &be) {
		t.Fatalf("err %v is not a *BlobError", err)
	}
	if be.Key != key || !strings.Contains(err.Error(), key) {
		t.Errorf("err %q names key %q, want %q", err, be.Key, key)
	}
	if chunk >= spill.NoChunk && be.Chunk != chunk {
		t.Errorf("err %q has chunk %d, want %d", err, be.Chunk, chunk)
	}
	return be
}

func chunkKeys(t *testing.T, c redis.UniversalClient, prefix, key string) map[string]bool {
	t.Helper()
	keys, err := c.Keys(context.Background(), prefix+":{"+key+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func chunkKey(t *testing.T, c redis.UniversalClient, prefix, key string, i int) string {
	t.Helper()
	for k := range chunkKeys(t, c, prefix, key) {
		if strings.HasSuffix(k, ":"+strconv.Itoa(i)) && !strings.HasSuffix(k, ":m") {
			return k
		}
	}
	t.Fatalf("no chunk %d of %q", i, key)
	return ""
}

func TestRedisChunkDeletedOrCorrupted(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client()
	s, err := spill.NewRedis(c, testConfig("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := spilltest.Random(1, 200<<10) // 51 chunks of 4 KiB
	for _, tc := range []struct {
		name     string
		damage   func(k string)
		sentinel error
	}{
		{"deleted", func(k string) { c.Del(ctx, k) }, spill.ErrChunkMissing},
		{"bit-flip", func(k string) { c.SetRange(ctx, k, 100, "\xff\x00\xff") }, spill.ErrCorrupt},
		{"truncated", func(k string) { c.Set(ctx, k, "short", 0) }, spill.ErrCorrupt},
	} {
		key := "runs/r1/" + tc.name
		if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		tc.damage(chunkKey(t, c, "f", key, 7))
		err := readResult(t, s, key, data)
		wantBlobErr(t, err, tc.sentinel, key, 7)
		t.Logf("%s: %v", tc.name, err)
	}
	// A damaged manifest makes the blob unreadable, not wrong.
	if _, err := s.Put(ctx, "runs/r1/m", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.SetRange(ctx, "f:{runs/r1/m}:m", 5, "9")
	_, err = s.Get(ctx, "runs/r1/m")
	wantBlobErr(t, err, spill.ErrCorrupt, "runs/r1/m", spill.NoChunk)
}

func TestDirCorrupted(t *testing.T) {
	t.Parallel()
	s := newDir(t, testConfig("f"))
	ctx := context.Background()
	data := spilltest.Random(2, 200<<10)
	put := func(key string) string {
		if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return s.Path(key)
	}
	// A flipped byte in chunk 7.
	f, err := os.OpenFile(put("runs/r/flip"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xde, 0xad}, 7*spill.MinChunkSize+99); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantBlobErr(t, readResult(t, s, "runs/r/flip", data), spill.ErrCorrupt, "runs/r/flip", 7)
	// A truncated file (chunks missing at the end) is rejected at Get.
	p := put("runs/r/trunc")
	if err := os.Truncate(p, 30*spill.MinChunkSize); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "runs/r/trunc")
	wantBlobErr(t, err, spill.ErrCorrupt, "runs/r/trunc", spill.NoChunk)
}

// slowReader yields n bytes of data, calling at once after the first
// trigger bytes.
type slowReader struct {
	r       io.Reader
	read    int
	trigger int
	at      func()
	fired   atomic.Bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > 8<<10 {
		p = p[:8<<10]
	}
	n, err := s.r.Read(p)
	s.read += n
	if s.read >= s.trigger && !s.fired.Swap(true) {
		s.at()
	}
	return n, err
}

func TestRedisKilledMidWrite(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := srv.Client()
	s, err := spill.NewRedis(c, testConfig("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	key := "runs/r/killed"
	r := &slowReader{r: bytes.NewReader(spilltest.Random(3, 2<<20)), trigger: 1 << 20, at: srv.Kill}
	start := time.Now()
	_, err = s.Put(ctx, key, r)
	be := wantBlobErr(t, err, spill.ErrUnavailable, key, -2)
	t.Logf("Put failed after %v: %v", time.Since(start), err)
	if be.Chunk < 0 {
		t.Errorf("error does not name the chunk being written: %v", err)
	}
	srv.Restart()
	// A fresh client: the old pool remembers its dial failures for a while.
	c = redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	s2, err := spill.NewRedis(c, testConfig("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := len(chunkKeys(t, c, "f", key)); n == 0 {
		t.Fatalf("no chunks survived the kill: the test did not exercise a partial blob")
	} else {
		t.Logf("%d chunk keys survived the kill", n)
	}
	_, err = s2.Get(ctx, key)
	wantBlobErr(t, err, spill.ErrNotFound, key, spill.NoChunk)
}

func TestRedisKilledMidRead(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client()
	s, err := spill.NewRedis(c, testConfig("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	key, data := "runs/r/read", spilltest.Random(4, 1<<20)
	if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 100<<10)
	if _, err := io.ReadFull(rc, head); err != nil || !bytes.Equal(head, data[:len(head)]) {
		t.Fatalf("first bytes: %v", err)
	}
	srv.Stop()
	rest, err := io.ReadAll(rc)
	if !bytes.HasPrefix(data[len(head):], rest) || len(head)+len(rest) >= len(data) {
		t.Fatalf("read %d more bytes after the kill, not a strict prefix", len(rest))
	}
	be := wantBlobErr(t, err, spill.ErrUnavailable, key, -2)
	if be.Chunk <= 0 {
		t.Errorf("chunk index %d, want the chunk being fetched", be.Chunk)
	}
	t.Logf("read failed: %v", err)
	// And with the server still down, Get and Open fail clearly.
	_, err = s.Get(ctx, key)
	wantBlobErr(t, err, spill.ErrUnavailable, key, spill.NoChunk)
	if _, err := spill.Open(ctx, srv.URL()); !errors.Is(err, spill.ErrUnavailable) {
		t.Fatalf("Open on a stopped server: err = %v, want ErrUnavailable", err)
	}
}

func TestRedisTTL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := context.Background()
	cfg := testConfig("ttl")
	cfg.TTL = 400 * time.Millisecond
	s, err := spill.NewRedis(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := spilltest.Random(5, 400<<10)

	t.Run("ExpiredBeforeGet", func(t *testing.T) {
		if _, err := s.Put(ctx, "runs/r/a", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		ttl := c.PTTL(ctx, "ttl:{runs/r/a}:m").Val()
		if ttl <= 0 || ttl > cfg.TTL {
			t.Fatalf("manifest PTTL %v, want in (0, %v]", ttl, cfg.TTL)
		}
		time.Sleep(cfg.TTL + 100*time.Millisecond)
		_, err := s.Get(ctx, "runs/r/a")
		wantBlobErr(t, err, spill.ErrNotFound, "runs/r/a", spill.NoChunk)
		if n := len(chunkKeys(t, c, "ttl", "runs/r/a")); n != 0 {
			t.Errorf("%d keys of the blob outlived the TTL", n)
		}
	})
	t.Run("ExpiredMidRead", func(t *testing.T) {
		if _, err := s.Put(ctx, "runs/r/b", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		rc, err := s.Get(ctx, "runs/r/b")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 10<<10)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(cfg.TTL + 100*time.Millisecond)
		_, err = io.ReadAll(rc)
		be := wantBlobErr(t, err, spill.ErrChunkMissing, "runs/r/b", -2)
		if be.Chunk <= 0 {
			t.Errorf("chunk %d, want a later chunk", be.Chunk)
		}
		t.Logf("%v", err)
	})
	t.Run("ExpiredBeforeCommit", func(t *testing.T) {
		r := &slowReader{r: bytes.NewReader(data), trigger: 100 << 10, at: func() { time.Sleep(cfg.TTL + 100*time.Millisecond) }}
		_, err := s.Put(ctx, "runs/r/c", r)
		wantBlobErr(t, err, spill.ErrChunkMissing, "runs/r/c", 0)
		if _, err := s.Get(ctx, "runs/r/c"); !errors.Is(err, spill.ErrNotFound) {
			t.Fatalf("Get after failed Put: %v, want ErrNotFound", err)
		}
	})
}

func TestRedisFull(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
	s, err := spill.NewRedis(srv.Client(), testConfig("full"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	_, err = s.Put(ctx, "runs/r/big", bytes.NewReader(spilltest.Random(6, 8<<20)))
	wantBlobErr(t, err, spill.ErrFull, "runs/r/big", -2)
	_, err = s.Get(ctx, "runs/r/big")
	wantBlobErr(t, err, spill.ErrNotFound, "runs/r/big", spill.NoChunk)
	// The failed Put cleaned up: there is room again.
	if _, err := s.Put(ctx, "runs/r/small", bytes.NewReader(spilltest.Random(7, 1<<20))); err != nil {
		t.Fatalf("Put after cleanup: %v", err)
	}
}

func TestDirTTL(t *testing.T) {
	t.Parallel()
	cfg := testConfig("ttl")
	cfg.TTL = 100 * time.Millisecond
	s := newDir(t, cfg)
	ctx := context.Background()
	if _, err := s.Put(ctx, "runs/r/a", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := spilltest.ReadAll(ctx, s, "runs/r/a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_, err := s.Get(ctx, "runs/r/a")
	wantBlobErr(t, err, spill.ErrNotFound, "runs/r/a", spill.NoChunk)
	if n, err := s.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 file removed", n, err)
	}
	if _, err := os.Stat(s.Path("runs/r/a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("expired file still there after Prune: %v", err)
	}
}

func TestDirFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	s, err := spill.NewDir(dir, testConfig("full"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	key := "runs/r/big"
	_, err = s.Put(ctx, key, bytes.NewReader(spilltest.Random(8, 2<<20)))
	wantBlobErr(t, err, spill.ErrFull, key, -2)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("err %v does not wrap ENOSPC", err)
	}
	t.Logf("%v", err)
	_, err = s.Get(ctx, key)
	wantBlobErr(t, err, spill.ErrNotFound, key, spill.NoChunk)
	ents, _ := os.ReadDir(filepath.Join(dir, "full", ".tmp"))
	if len(ents) != 0 {
		t.Errorf("%d temporary files left after a failed Put", len(ents))
	}
	data := spilltest.Data(9, 200<<10)
	if _, err := s.Put(ctx, "runs/r/small", bytes.NewReader(data)); err != nil {
		t.Fatalf("Put after the failed one: %v", err)
	}
	if err := readResult(t, s, "runs/r/small", data); err != nil {
		t.Fatal(err)
	}
}
