package budget_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/dagrun/dagrun/budget"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeTree builds a /proc and /sys/fs/cgroup pair under t.TempDir.
func fakeTree(t *testing.T, selfCgroup string, files map[string]string) budget.Config {
	t.Helper()
	root := t.TempDir()
	cfg := budget.Config{CgroupRoot: filepath.Join(root, "cg"), ProcRoot: filepath.Join(root, "proc")}
	write(t, filepath.Join(cfg.ProcRoot, "self", "cgroup"), selfCgroup)
	write(t, filepath.Join(cfg.ProcRoot, "self", "statm"), "1000 256 10 1 0 100 0\n")
	write(t, filepath.Join(cfg.ProcRoot, "meminfo"), "MemTotal:       2048 kB\nMemFree:        1024 kB\n")
	for p, c := range files {
		write(t, filepath.Join(cfg.CgroupRoot, p), c)
	}
	return cfg
}

func TestMeterLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		self   string
		files  map[string]string
		budget uint64
		want   budget.Sample
	}{
		{
			name: "v2 with limit",
			self: "0::/kubepods/pod1\n",
			files: map[string]string{
				"kubepods/pod1/memory.current": "1000000\n",
				"kubepods/pod1/memory.max":     "4000000\n",
				"kubepods/pod1/memory.stat":    "anon 500000\nfile 400000\ninactive_file 300000\nactive_file 100000\n",
			},
			want: budget.Sample{WorkingSet: 700000, Usage: 1000000, InactiveFile: 300000, Limit: 4000000, LimitFromCgroup: true, Source: budget.SourceCgroupV2},
		},
		{
			name: "v2 no limit falls back to host MemTotal",
			self: "0::/a\n",
			files: map[string]string{
				"a/memory.current": "5000\n", "a/memory.max": "max\n", "a/memory.stat": "inactive_file 1000\n",
			},
			want: budget.Sample{WorkingSet: 4000, Usage: 5000, InactiveFile: 1000, Limit: 2048 * 1024, Source: budget.SourceCgroupV2},
		},
		{
			name: "v2 no limit uses configured budget",
			self: "0::/a\n",
			files: map[string]string{
				"a/memory.current": "5000\n", "a/memory.max": "max\n", "a/memory.stat": "inactive_file 1000\n",
			},
			budget: 9000,
			want:   budget.Sample{WorkingSet: 4000, Usage: 5000, InactiveFile: 1000, Limit: 9000, Source: budget.SourceCgroupV2},
		},
		{
			name: "v1 hierarchy uses total_inactive_file",
			self: "12:pids:/\n4:memory:/process_api/x\n0::/\n",
			files: map[string]string{
				"memory/process_api/x/memory.usage_in_bytes": "3000000\n",
				"memory/process_api/x/memory.limit_in_bytes": "536870912\n",
				"memory/process_api/x/memory.stat":           "cache 100\ninactive_file 7\ntotal_inactive_file 1000000\n",
			},
			want: budget.Sample{WorkingSet: 2000000, Usage: 3000000, InactiveFile: 1000000, Limit: 536870912, LimitFromCgroup: true, Source: budget.SourceCgroupV1},
		},
		{
			name: "v1 unlimited, budget smaller",
			self: "4:memory:/\n",
			files: map[string]string{
				"memory/memory.usage_in_bytes": "100\n",
				"memory/memory.limit_in_bytes": "9223372036854771712\n",
				"memory/memory.stat":           "total_inactive_file 200\n",
			},
			budget: 5000,
			want:   budget.Sample{WorkingSet: 0, Usage: 100, InactiveFile: 200, Limit: 5000, Source: budget.SourceCgroupV1},
		},
		{
			name: "v1 namespaced path not present: root of the mount",
			self: "4:memory:/docker/abc\n",
			files: map[string]string{
				"memory/memory.usage_in_bytes": "100\n",
				"memory/memory.limit_in_bytes": "1000\n",
				"memory/memory.stat":           "total_inactive_file 50\n",
			},
			want: budget.Sample{WorkingSet: 50, Usage: 100, InactiveFile: 50, Limit: 1000, LimitFromCgroup: true, Source: budget.SourceCgroupV1},
		},
		{
			name: "no memory cgroup: process RSS and host memory",
			self: "0::/\n",
			want: budget.Sample{WorkingSet: 256 * uint64(os.Getpagesize()), Usage: 256 * uint64(os.Getpagesize()), Limit: 2048 * 1024, Source: budget.SourceRSS},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := fakeTree(t, tc.self, tc.files)
			cfg.Budget = tc.budget
			m, err := budget.Detect(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Read()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Read() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMeterBadFileNamesIt(t *testing.T) {
	t.Parallel()
	cfg := fakeTree(t, "0::/a\n", map[string]string{
		"a/memory.current": "lots\n", "a/memory.max": "max\n", "a/memory.stat": "inactive_file 1\n",
	})
	m, err := budget.Detect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Read()
	if err == nil || !strings.Contains(err.Error(), "memory.current") {
		t.Fatalf("Read() error = %v, want one naming memory.current", err)
	}
}

// TestRealCgroupV1 reads this process's real memory cgroup, allocates 64 MiB
// and sees the working set grow.
func TestRealCgroupV1(t *testing.T) {
	m, err := budget.Detect(budget.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Source() == budget.SourceRSS {
		t.Skip("no readable memory cgroup on this kernel")
	}
	// The cgroup is shared with every other process of the container, whose
	// memory comes and goes meanwhile: a few tries, each touching a fresh
	// 64 MiB, and one of them must see the growth.
	var kept [][]byte
	var growth []int64
	for try := 0; try < 5; try++ {
		before, err := m.Read()
		if err != nil {
			t.Fatal(err)
		}
		if before.Limit == 0 || before.WorkingSet == 0 {
			t.Fatalf("sample %+v: want non-zero working set and limit", before)
		}
		ballast := make([]byte, 64<<20)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
		kept = append(kept, ballast)
		after, err := m.Read()
		if err != nil {
			t.Fatal(err)
		}
		g := int64(after.WorkingSet) - int64(before.WorkingSet)
		if g >= 48<<20 {
			return
		}
		growth = append(growth, g)
	}
	t.Fatalf("working set growth after touching 64 MiB, 5 tries: %v bytes; want >= 48 MiB in one", growth)
}

func TestGateHysteresisAndReservations(t *testing.T) {
	t.Parallel()
	const limit = 1000
	g, err := budget.NewGate(limit, budget.GateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Capacity() != 800 {
		t.Fatalf("Capacity() = %d, want 800", g.Capacity())
	}
	if _, err := g.TryReserve("huge", 801); !errors.Is(err, budget.ErrTooLarge) {
		t.Fatalf("TryReserve(801) error = %v, want ErrTooLarge", err)
	}
	g.Observe(budget.Sample{WorkingSet: 100, Limit: limit})
	r1, err := g.TryReserve("wf-a", 400)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.TryReserve("wf-b", 450); !errors.Is(err, budget.ErrNoRoom) {
		t.Fatalf("reservations 400+450 > 800 - want ErrNoRoom, got %v", err)
	}
	r2, err := g.TryReserve("wf-b", 300)
	if err != nil {
		t.Fatal(err)
	}
	by, total := g.Reserved()
	if total != 700 || by["wf-a"] != 400 || by["wf-b"] != 300 {
		t.Fatalf("Reserved() = %v %d", by, total)
	}
	r1.Release()
	r1.Release() // second release is a no-op
	if _, total := g.Reserved(); total != 300 {
		t.Fatalf("after release total = %d, want 300", total)
	}
	// Working set check: 600 observed + 250 > 800.
	g.Observe(budget.Sample{WorkingSet: 600, Limit: limit})
	if _, err := g.TryReserve("wf-c", 250); !errors.Is(err, budget.ErrNoRoom) {
		t.Fatalf("ws 600 + 250: want ErrNoRoom, got %v", err)
	}
	steps := []struct {
		ws     uint64
		paused bool
	}{{790, false}, {800, true}, {750, true}, {700, true}, {699, false}, {790, false}}
	for _, s := range steps {
		if got := g.Observe(budget.Sample{WorkingSet: s.ws, Limit: limit}); got != s.paused {
			t.Fatalf("Observe(ws=%d) paused = %v, want %v", s.ws, got, s.paused)
		}
		if s.paused {
			if _, err := g.TryReserve("x", 1); !errors.Is(err, budget.ErrPaused) {
				t.Fatalf("ws=%d paused: TryReserve error %v, want ErrPaused", s.ws, err)
			}
		}
	}
	r2.Release()
	if _, err := budget.NewGate(limit, budget.GateConfig{PauseAt: 0.5, ResumeAt: 0.6}); err == nil {
		t.Fatal("ResumeAt > PauseAt accepted")
	}
}

func TestMonitorSamplesAndExports(t *testing.T) {
	t.Parallel()
	cfg := fakeTree(t, "0::/a\n", map[string]string{
		"a/memory.current": "5000\n", "a/memory.max": "10000\n", "a/memory.stat": "inactive_file 1000\n",
	})
	m, err := budget.Detect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	seen := make(chan budget.Sample, 100)
	mon, err := budget.NewMonitor(m, budget.MonitorConfig{Interval: 5 * time.Millisecond, Registerer: reg, OnSample: func(s budget.Sample) {
		select {
		case seen <- s:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mon.Latest().WorkingSet; got != 4000 {
		t.Fatalf("Latest().WorkingSet = %d, want 4000", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	write(t, filepath.Join(cfg.CgroupRoot, "a", "memory.current"), "9000\n")
	deadline := time.After(5 * time.Second)
	for s := range seen {
		if s.WorkingSet == 8000 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("monitor never saw the new usage")
		default:
		}
	}
	cancel()
	<-done
	if got := gauge(t, reg, "dagrun_memory_working_set_bytes"); got != 8000 {
		t.Fatalf("dagrun_memory_working_set_bytes = %v, want 8000", got)
	}
	if p := mon.ResetPeak(); p != 8000 {
		t.Fatalf("ResetPeak() = %d, want 8000", p)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
