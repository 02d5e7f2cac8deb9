package spill_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/spill/spilltest"
)

// Every key of a blob lands in one hash slot, and blobs spread over nodes.
func TestRedisClusterOneSlotPerBlob(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	client := cl.Client(t)
	s, err := spill.NewRedis(client, testConfig("slot"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	nodesUsed := map[string]bool{}
	for _, key := range []string{"runs/r1/a", "runs/r1/b", "runs/r2/a", "runs/r3/x", "runs/r4/y", "runs/r5/z"} {
		if _, err := s.Put(ctx, key, bytes.NewReader(spilltest.Random(1, 100<<10))); err != nil {
			t.Fatal(err)
		}
		slots := map[int64]bool{}
		total := 0
		for _, n := range cl.Nodes {
			c := redis.NewClient(&redis.Options{Addr: n.Addr})
			keys, err := c.Keys(ctx, "slot:{"+key+"}:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				slots[client.ClusterKeySlot(ctx, k).Val()] = true
				nodesUsed[n.Addr] = true
			}
			total += len(keys)
			c.Close()
		}
		if len(slots) != 1 || total != 27 { // 26 chunks of 4 KiB + manifest
			t.Fatalf("%s: %d keys in %d slots, want 27 keys in 1 slot", key, total, len(slots))
		}
	}
	if len(nodesUsed) < 2 {
		t.Errorf("6 blobs all on one node: hash tags do not spread blobs")
	}
}

// Tenants (prefixes) on one Redis do not see each other's blobs.
func TestRedisNamespaces(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := srv.Client()
	a, _ := spill.NewRedis(c, spill.Config{Prefix: "tenant-a"})
	b, _ := spill.NewRedis(c, spill.Config{Prefix: "tenant-b"})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	if _, err := a.Put(ctx, "runs/r/n", strings.NewReader("A")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "runs/r/n"); !errors.Is(err, spill.ErrNotFound) {
		t.Fatalf("tenant-b sees tenant-a's blob: %v", err)
	}
	if err := b.Delete(ctx, "runs/r/n"); err != nil {
		t.Fatal(err)
	}
	if got, err := spilltest.ReadAll(ctx, a, "runs/r/n"); err != nil || string(got) != "A" {
		t.Fatalf("tenant-a blob after tenant-b delete: %q, %v", got, err)
	}
	// The store did not close the client it was handed.
	a.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("client closed by the store: %v", err)
	}
}

func TestOpenURL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	if err := admin.ConfigSet(ctx, "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	u := "redis://:s3cret@" + srv.Addr + "/2?ttl=1h&prefix=x&chunk_size=8192&dial_timeout=2s"
	s, err := spill.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "runs/r/n", bytes.NewReader(spilltest.Data(1, 100<<10))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret", DB: 2})
	defer c.Close()
	if ttl := c.TTL(ctx, "x:{runs/r/n}:m").Val(); ttl <= 0 || ttl.Hours() > 1 {
		t.Fatalf("manifest TTL %v in db 2, want (0, 1h]", ttl)
	}
	bad := []string{
		"redis://" + srv.Addr + "?ttl=forever",
		"redis://" + srv.Addr + "?chunk_size=1",
		"redis://" + srv.Addr + "?prefix=a{b}",
		"ftp://host/x",
		"dir://relative",
	}
	for _, b := range bad {
		if s, err := spill.Open(ctx, b); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", b)
		}
	}
	// Wrong password: a clear error without the password in it.
	_, err = spill.Open(ctx, "redis://:wrong@"+srv.Addr)
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Open with a bad password: %v", err)
	}
	// Cluster URL.
	cl := redistest.StartCluster(t, 3)
	cu := "redis://" + cl.Nodes[0].Addr + "?addr=" + url.QueryEscape(cl.Nodes[1].Addr) + "&prefix=c"
	cs, err := spill.Open(ctx, cu)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	data := spilltest.Data(2, 300<<10)
	if _, err := cs.Put(ctx, "runs/r/n", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := spilltest.ReadAll(ctx, cs, "runs/r/n"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cluster via URL: %d bytes, %v", len(got), err)
	}
}
