package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const mountinfoV1 = `25 20 0:22 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
26 20 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
30 20 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const mountinfoV2 = `30 20 0:27 /kubepods/pod1 /sys/fs/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
`

func TestDetectFrom(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// v1 layout: memory controller only in the v1 mount; unified has none.
	write(t, filepath.Join(root, "sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes"), "9223372036854771712\n")
	write(t, filepath.Join(root, "sys/fs/cgroup/unified/cgroup.controllers"), "\n")
	// v2 layout (separate root) inside a cgroup namespace-like mount root.
	root2 := t.TempDir()
	write(t, filepath.Join(root2, "sys/fs/cgroup/worker/cgroup.controllers"), "cpu io memory pids\n")
	// v2 after Prepare: we sit in the leaf, parent already delegates memory.
	root3 := t.TempDir()
	write(t, filepath.Join(root3, "sys/fs/cgroup/cgroup.subtree_control"), "memory\n")
	write(t, filepath.Join(root3, "sys/fs/cgroup/cgroup.controllers"), "memory\n")
	write(t, filepath.Join(root3, "sys/fs/cgroup/dagrun-worker/cgroup.controllers"), "memory\n")

	tests := []struct {
		name, cg, mi, root string
		want               Hierarchy
		wantErr            bool
	}{
		{"v1", "4:memory:/process_api/x\n0::/\n", mountinfoV1, root,
			Hierarchy{V1, filepath.Join(root, "sys/fs/cgroup/memory/process_api/x")}, false},
		{"v2 under mount root", "0::/kubepods/pod1/worker\n", mountinfoV2, root2,
			Hierarchy{V2, filepath.Join(root2, "sys/fs/cgroup/worker")}, false},
		{"v2 leaf", "0::/kubepods/pod1/dagrun-worker\n", mountinfoV2, root3,
			Hierarchy{V2, filepath.Join(root3, "sys/fs/cgroup")}, false},
		{"none", "0::/\n", mountinfoV2, t.TempDir(), Hierarchy{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFrom(tt.cg, tt.mi, tt.root)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPrepareV2MovesWorkerIntoLeaf(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	write(t, filepath.Join(p, "cgroup.controllers"), "cpu memory\n")
	write(t, filepath.Join(p, "cgroup.subtree_control"), "")
	write(t, filepath.Join(p, "cgroup.procs"), "101\n202\n")
	h := Hierarchy{Version: V2, Parent: p}
	moved, err := h.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(moved, []int{101, 202}) {
		t.Fatalf("moved %v", moved)
	}
	if got := read(t, filepath.Join(p, LeafName, "cgroup.procs")); got != "101\n202\n" {
		t.Fatalf("leaf procs %q", got)
	}
	if got := read(t, filepath.Join(p, "cgroup.subtree_control")); got != "+memory" {
		t.Fatalf("subtree_control %q", got)
	}
	// Second call: memory already delegated, nothing moves.
	moved, err = h.Prepare()
	if err != nil || len(moved) != 0 {
		t.Fatalf("second prepare moved %v, err %v", moved, err)
	}
}

func TestCreateV2(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	h := Hierarchy{Version: V2, Parent: p}
	g, err := h.Create("dagrun-sp-1-1", 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "268435456", "memory.swap.max": "0", "memory.oom.group": "1"} {
		if got := read(t, filepath.Join(g.Dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	write(t, filepath.Join(g.Dir, "memory.peak"), "123456\n")
	write(t, filepath.Join(g.Dir, "memory.events"), "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n")
	peak, ok, err := g.Peak()
	if err != nil || !ok || peak != 123456 {
		t.Fatalf("peak %d %v %v", peak, ok, err)
	}
	ev, err := g.Events()
	if err != nil || ev.OOMKills != 1 || ev.LimitHits != 7 {
		t.Fatalf("events %+v %v", ev, err)
	}
	if err := g.AddProc(999999); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(g.Dir, "cgroup.procs"), "") // fake: the process has gone
	if err := g.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
		t.Fatalf("group dir still there: %v", err)
	}
}

func TestCreateV2WithoutPeakFile(t *testing.T) {
	t.Parallel()
	g, err := Hierarchy{Version: V2, Parent: t.TempDir()}.Create("g", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := g.Peak(); ok || err != nil {
		t.Fatalf("peak without memory.peak: ok=%v err=%v", ok, err)
	}
}

func TestCreateV1(t *testing.T) {
	t.Parallel()
	for _, memsw := range []bool{true, false} {
		p := t.TempDir()
		write(t, filepath.Join(p, "memory.limit_in_bytes"), "9223372036854771712\n")
		if memsw {
			write(t, filepath.Join(p, "memory.memsw.limit_in_bytes"), "9223372036854771712\n")
		}
		g, err := Hierarchy{Version: V1, Parent: p}.Create("c", 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(g.Dir, "memory.limit_in_bytes")); got != "67108864" {
			t.Errorf("limit %q", got)
		}
		_, err = os.Stat(filepath.Join(g.Dir, "memory.memsw.limit_in_bytes"))
		if memsw != (err == nil) {
			t.Errorf("memsw present=%v but file err=%v", memsw, err)
		}
		write(t, filepath.Join(g.Dir, "memory.max_usage_in_bytes"), "67100000\n")
		write(t, filepath.Join(g.Dir, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
		write(t, filepath.Join(g.Dir, "memory.failcnt"), "31\n")
		peak, ok, err := g.Peak()
		if err != nil || !ok || peak != 67100000 {
			t.Fatalf("peak %d %v %v", peak, ok, err)
		}
		ev, err := g.Events()
		if err != nil || ev.OOMKills != 2 || ev.LimitHits != 31 {
			t.Fatalf("events %+v %v", ev, err)
		}
		if err := g.Remove(time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateReportsMissingParent(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing", "parent")
	_, err := Hierarchy{Version: V2, Parent: missing}.Create("g", 1<<20)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want one naming %s", err, missing)
	}
}

func TestStale(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	for _, d := range []string{"dagrun-sp-999999999-1", "dagrun-sp-" + strconv.Itoa(os.Getpid()) + "-2", "other", "dagrun-sp-x-1"} {
		if err := os.Mkdir(filepath.Join(p, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	gs, err := Hierarchy{Version: V1, Parent: p}.Stale("dagrun-sp-")
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || filepath.Base(gs[0].Dir) != "dagrun-sp-999999999-1" {
		t.Fatalf("stale = %+v", gs)
	}
}
