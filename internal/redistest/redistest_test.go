package redistest

import (
	"context"
	"testing"
)

func TestStartRestartCluster(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded after kill")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Fatalf("key survived a restart without persistence")
	}

	cl := StartCluster(t, 3).Client(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := cl.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("cluster set %s: %v", k, err)
		}
	}
}
