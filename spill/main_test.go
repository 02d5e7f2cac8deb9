package spill_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/spill/spilltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis pool reapers of clients closed by t.Cleanup after the check.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		// redistest's waiter for redis-server children.
		goleak.IgnoreTopFunction("os/exec.(*Cmd).Wait"),
		goleak.IgnoreTopFunction("syscall.Syscall6"),
	)
}

// testConfig uses the smallest chunks so every test crosses chunk
// boundaries.
func testConfig(prefix string) spill.Config {
	return spill.Config{Prefix: prefix, ChunkSize: spill.MinChunkSize, ReadAhead: 2, RetryBackoff: 10_000_000}
}

func newDir(t *testing.T, cfg spill.Config) *spill.DirStore {
	t.Helper()
	s, err := spill.NewDir(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceDir(t *testing.T) {
	t.Parallel()
	spilltest.Run(t, func(t *testing.T) spill.Store { return newDir(t, testConfig("t")) })
}

func TestConformanceRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := srv.Client()
	spilltest.Run(t, func(t *testing.T) spill.Store {
		s, err := spill.NewRedis(client, testConfig("t-"+sanitize(t.Name())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestConformanceRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	client := cl.Client(t)
	spilltest.Run(t, func(t *testing.T) spill.Store {
		s, err := spill.NewRedis(client, testConfig("t-"+sanitize(t.Name())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}
