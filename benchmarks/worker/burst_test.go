// Package worker_test benchmarks memory-gated admission against count-only
// admission: a burst of memory-hungry jobs against one worker process in a
// real 512 MiB cgroup v1 memory group, restarted like a pod whenever it dies.
//
//	go test -run '^$' -bench Burst -benchtime 1x -count 3 ./benchmarks/worker/
package worker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

const (
	limit    = 512 << 20
	jobs     = 30
	allocMiB = 150
)

func BenchmarkBurst(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "testworker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../worker/internal/testworker").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for _, mode := range []string{"gated", "count-only"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				burst(b, bin, mode == "count-only")
			}
		})
	}
}

func burst(b *testing.B, bin string, countOnly bool) {
	cg := memCgroup(b, limit)
	srv := redistest.Start(b)
	q := worker.NewQueue(srv.Client(), "burst")
	ctx := context.Background()
	var ids []string
	for i := 0; i < jobs; i++ {
		id, err := q.Enqueue(ctx, worker.EnqueueRequest{Workflow: "big", Payload: []byte(fmt.Sprintf(`{"alloc_mib":%d,"sleep_ms":300}`, allocMiB)), MemoryHint: allocMiB << 20})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	args := []string{"-redis", srv.Addr, "-queue", "burst", "-cgroup", cg, "-concurrency", "4", "-lease", "1s", "-reap", "500ms"}
	if countOnly {
		args = append(args, "-count-only")
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cur *exec.Cmd
	restarts := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			cmd := exec.Command(bin, append(args, "-id", fmt.Sprintf("w%d", n))...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				return
			}
			mu.Lock()
			cur = cmd
			mu.Unlock()
			_ = cmd.Wait()
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			restarts++
			mu.Unlock()
		}
	}()
	var succeeded, dead int
	for {
		succeeded, dead = 0, 0
		for _, id := range ids {
			r, err := q.GetRun(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			switch r.Status {
			case worker.StatusSucceeded:
				succeeded++
			case worker.StatusDead, worker.StatusFailed:
				dead++
			}
		}
		if succeeded+dead == jobs || time.Since(start) > 5*time.Minute {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	close(stop)
	mu.Lock()
	_ = cur.Process.Kill()
	mu.Unlock()
	wg.Wait()
	kills := oomKills(b, cg)
	b.ReportMetric(float64(kills), "oom-kills")
	b.ReportMetric(float64(succeeded), "completed")
	b.ReportMetric(float64(dead), "dead")
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(restarts), "restarts")
}

func memCgroup(b *testing.B, limit int64) string {
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Skip(err)
	}
	own := ""
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") {
			own = f[2]
		}
	}
	if own == "" {
		b.Skip("no cgroup v1 memory controller")
	}
	dir := filepath.Join("/sys/fs/cgroup/memory", own, fmt.Sprintf("dagrun-bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Skipf("cannot create memory cgroup: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

func oomKills(b *testing.B, dir string) int {
	raw, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
