// Package spilltest is the conformance suite every spill.Store must pass.
package spilltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/dagrun/dagrun/spill"
)

// Data returns n bytes of deterministic, compressible but not trivial
// data: JSON-lines rows with random numbers and words.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	words := []string{"invoice", "alpha", "region", "EMEA", "quantity", "total", "pending", "shipped", "north", "widget", "gadget", "customer"}
	var b bytes.Buffer
	b.Grow(n + 256)
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"name":"%s %s","amount":%.2f,"status":"%s","ts":%d}`+"\n",
			r.Uint32(), words[r.IntN(len(words))], words[r.IntN(len(words))], r.Float64()*10000, words[r.IntN(len(words))], 1700000000+r.IntN(1e8))
	}
	return b.Bytes()[:n]
}

// Random returns n incompressible bytes.
func Random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ReadAll gets key and reads it whole.
func ReadAll(ctx context.Context, s spill.Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// Run runs the conformance suite. newStore returns a fresh, empty store
// (its own namespace) for each subtest; it is closed by the caller's
// cleanup if needed. Stores are expected to use a small ChunkSize (for
// example spill.MinChunkSize) so multi-chunk paths are exercised cheaply.
func Run(t *testing.T, newStore func(t *testing.T) spill.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		cases := []struct {
			name string
			data []byte
		}{
			{"empty", nil},
			{"one-byte", []byte("x")},
			{"small-json", []byte(`{"run":"r1","state":"running","nodes":3}`)},
			{"at-small-limit", Data(1, 64<<10)},
			{"above-small-limit", Data(2, 64<<10+1)},
			{"multi-chunk-json", Data(3, 3<<20+17)},
			{"multi-chunk-random", Random(4, 1<<20+5)},
		}
		for _, c := range cases {
			key := "runs/r1/" + c.name
			info, err := s.Put(ctx, key, bytes.NewReader(c.data))
			if err != nil {
				t.Fatalf("%s: Put: %v", c.name, err)
			}
			if info.Key != key || info.RawBytes != int64(len(c.data)) || info.Chunks < 1 || info.CompressedBytes < 1 {
				t.Errorf("%s: Info = %+v, want key %q, RawBytes %d, Chunks >= 1", c.name, info, key, len(c.data))
			}
			got, err := ReadAll(ctx, s, key)
			if err != nil {
				t.Fatalf("%s: Get: %v", c.name, err)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatalf("%s: got %d bytes, want %d (content differs: %v)", c.name, len(got), len(c.data), len(got) == len(c.data))
			}
		}
	})
	t.Run("CompressesAndChunks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		data := Data(5, 2<<20)
		info, err := s.Put(context.Background(), "runs/r/n", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if info.Ratio() < 2 {
			t.Errorf("compression ratio %.2f on JSON lines, want >= 2 (%+v)", info.Ratio(), info)
		}
		if info.Chunks < 2 {
			t.Errorf("Chunks = %d for %d compressed bytes, want several (store should use a small ChunkSize)", info.Chunks, info.CompressedBytes)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.Get(context.Background(), "runs/missing/node")
		if !errors.Is(err, spill.ErrNotFound) {
			t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
		}
		if !strings.Contains(err.Error(), "runs/missing/node") {
			t.Errorf("error %q does not name the key", err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		for _, n := range []int{10, 200 << 10} {
			key := fmt.Sprintf("runs/r/del-%d", n)
			if _, err := s.Put(ctx, key, bytes.NewReader(Data(6, n))); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, spill.ErrNotFound) {
				t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("second Delete: %v, want nil", err)
			}
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		first, second := Data(7, 300<<10), Data(8, 100<<10)
		for _, d := range [][]byte{first, second, []byte("tiny"), first} {
			if _, err := s.Put(ctx, "runs/r/over", bytes.NewReader(d)); err != nil {
				t.Fatal(err)
			}
			got, err := ReadAll(ctx, s, "runs/r/over")
			if err != nil || !bytes.Equal(got, d) {
				t.Fatalf("after overwrite: %d bytes, err %v; want %d bytes", len(got), err, len(d))
			}
		}
	})
	t.Run("KeysDoNotCollide", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		keys := []string{"runs/a/n", "runs/a", "runs/a/n/x", "runs/b/n", "runs%2Fa"}
		for i, k := range keys {
			if err := spill.ValidateKey(k); err != nil {
				continue
			}
			if _, err := s.Put(ctx, k, strings.NewReader(fmt.Sprint("value-", i))); err != nil {
				t.Fatalf("Put %q: %v", k, err)
			}
		}
		for i, k := range keys {
			if spill.ValidateKey(k) != nil {
				continue
			}
			got, err := ReadAll(ctx, s, k)
			if err != nil || string(got) != fmt.Sprint("value-", i) {
				t.Errorf("Get %q = %q, %v; want value-%d", k, got, err, i)
			}
		}
	})
	t.Run("InvalidKey", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		for _, k := range []string{"", "/abs", "runs//x", "runs/../x", "a b", "runs/{tag}", strings.Repeat("k", spill.MaxKeyLen+1)} {
			if _, err := s.Put(ctx, k, strings.NewReader("x")); !errors.Is(err, spill.ErrInvalidKey) {
				t.Errorf("Put %q: err = %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Get(ctx, k); !errors.Is(err, spill.ErrInvalidKey) {
				t.Errorf("Get %q: err = %v, want ErrInvalidKey", k, err)
			}
			if err := s.Delete(ctx, k); !errors.Is(err, spill.ErrInvalidKey) {
				t.Errorf("Delete %q: err = %v, want ErrInvalidKey", k, err)
			}
		}
	})
	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		boom := errors.New("producer crashed")
		old := Data(9, 10<<10)
		if _, err := s.Put(ctx, "runs/r/keep", bytes.NewReader(old)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{100, 500 << 10} {
			for _, key := range []string{"runs/r/new", "runs/r/keep"} {
				r := io.MultiReader(bytes.NewReader(Data(10, n)), &errReader{boom})
				if _, err := s.Put(ctx, key, r); !errors.Is(err, boom) {
					t.Fatalf("Put with failing reader (%d bytes): err = %v, want the reader's error", n, err)
				}
			}
			if _, err := s.Get(ctx, "runs/r/new"); !errors.Is(err, spill.ErrNotFound) {
				t.Fatalf("failed Put is visible: Get err = %v, want ErrNotFound", err)
			}
			got, err := ReadAll(ctx, s, "runs/r/keep")
			if err != nil || !bytes.Equal(got, old) {
				t.Fatalf("failed overwrite damaged the previous blob: %d bytes, %v", len(got), err)
			}
		}
	})
	t.Run("CanceledPut", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		r := &cancelAfter{r: bytes.NewReader(Data(11, 2<<20)), n: 512 << 10, cancel: cancel}
		if _, err := s.Put(ctx, "runs/r/cancel", r); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with canceled ctx: err = %v, want context.Canceled", err)
		}
		if _, err := s.Get(context.Background(), "runs/r/cancel"); !errors.Is(err, spill.ErrNotFound) {
			t.Fatalf("canceled Put is visible: %v", err)
		}
	})
	t.Run("EarlyClose", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		data := Data(12, 2<<20)
		if _, err := s.Put(ctx, "runs/r/early", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			rc, err := s.Get(ctx, "runs/r/early")
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1000)
			if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[:1000]) {
				t.Fatalf("first 1000 bytes wrong: %v", err)
			}
			if err := rc.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := rc.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 4; i++ {
					key := fmt.Sprintf("runs/c/w%d-%d", w, i)
					data := Data(uint64(100+w*10+i), 50<<10+w*100<<10)
					if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
						errs <- err
						return
					}
					got, err := ReadAll(ctx, s, key)
					if err != nil || !bytes.Equal(got, data) {
						errs <- fmt.Errorf("%s: %d bytes, %v", key, len(got), err)
						return
					}
				}
			}()
		}
		// Concurrent writers of one key: the result is one of them, whole.
		a, b := Data(200, 400<<10), Data(201, 300<<10)
		for _, d := range [][]byte{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Put(ctx, "runs/c/same", bytes.NewReader(d)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := ReadAll(ctx, s, "runs/c/same")
		if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
			t.Fatalf("racing Puts of one key: %d bytes, %v; want one writer's blob whole", len(got), err)
		}
	})
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelAfter cancels a context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n -= k
	if c.n <= 0 {
		c.cancel()
	}
	return k, err
}
