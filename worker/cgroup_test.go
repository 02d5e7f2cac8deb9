package worker_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagrun/dagrun/worker"
)

// supervise restarts a worker process every time it dies, like a pod
// restart, until the test ends. It returns a function reporting how many
// runs ended by SIGKILL.
func (e *env) supervise(t *testing.T, id string, args ...string) func() int {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	kills := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			p := e.launch(fmt.Sprintf("%s-%d", id, n), args...)
			select {
			case <-stop:
				return
			case <-p.done:
			}
			if sig, ok := p.killedBySignal(); ok && sig == syscall.SIGKILL {
				mu.Lock()
				kills++
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	return func() int { mu.Lock(); defer mu.Unlock(); return kills }
}

// TestPoisonPillOOMKilled: a job that allocates past a real 512 MiB cgroup
// limit is OOM-killed, starts exactly 3 times, lands in the dead-letter set
// with its reason, and 100 ordinary jobs behind it all complete.
func TestPoisonPillOOMKilled(t *testing.T) {
	t.Parallel()
	cg := memCgroup(t, "pill", 512<<20)
	e := setup(t)
	kills := e.supervise(t, "w", "-cgroup", cg, "-concurrency", "2")
	pill := e.enqueue("pill", `{"alloc_mib":700,"sleep_ms":100}`, 0)
	var ids []string
	for i := 0; i < 100; i++ {
		ids = append(ids, e.enqueue(fmt.Sprintf("ok%03d", i), `{"sleep_ms":5}`, 0))
	}
	eventually(t, 60*time.Second, "pill dead and ordinary jobs done", func() bool {
		return e.status(pill) == worker.StatusDead && e.allSucceeded(ids)
	})
	if n := count(e.allEvents(), "start", pill); n != 3 {
		t.Errorf("pill started %d times, want 3", n)
	}
	r := e.run(pill)
	if !r.Status.Failed() || r.LastError == nil || r.LastError.Kind != worker.KindKilled || r.Crashes != 3 {
		t.Fatalf("pill run = %s crashes %d last error %+v, want dead (failed) after 3 crashes of kind killed", r.Status, r.Crashes, r.LastError)
	}
	dead, err := e.q.DeadLetters(context.Background(), 0, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != pill {
		t.Fatalf("dead letters = %v, %v; want just the pill", dead, err)
	}
	if k := oomKills(t, cg); k < 3 {
		t.Errorf("cgroup oom_kill = %d, want >= 3 (real OOM kills)", k)
	}
	if kills() < 3 {
		t.Errorf("worker processes ended by SIGKILL: %d, want >= 3", kills())
	}
	t.Logf("pill: %s; oom kills %d", r.LastError.Message, oomKills(t, cg))
	st := e.stats()
	if st.Pending != 0 || st.Running != 0 {
		t.Errorf("pending %d leases %d, want 0", st.Pending, st.Running)
	}
}

// TestGatePausesInCgroup: a worker in a 512 MiB cgroup whose working set a
// ballast process pushes to ~85% stops claiming, keeps heartbeating, is not
// OOM-killed, and resumes when the ballast goes away (below 70%).
func TestGatePausesInCgroup(t *testing.T) {
	t.Parallel()
	cg := memCgroup(t, "gate", 512<<20)
	e := setup(t)
	ballast := exec.Command(testworkerBin, "-cgroup", cg, "-ballast-mib", "430")
	ballast.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, _ := ballast.StdoutPipe()
	if err := ballast.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	w := e.start("w", "-cgroup", cg, "-concurrency", "2")
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, e.enqueue(fmt.Sprintf("j%d", i), `{"alloc_mib":40,"sleep_ms":50}`, 0))
	}
	time.Sleep(1500 * time.Millisecond)
	if n := count(e.eventsOf("w"), "start", ""); n != 0 {
		t.Fatalf("worker started %d jobs while at ~85%% of its limit", n)
	}
	st := e.stats()
	if st.Pending != 10 || len(st.Workers) != 1 || !st.Workers[0].Paused {
		t.Fatalf("stats while paused: pending %d workers %+v", st.Pending, st.Workers)
	}
	seen1 := st.Workers[0].LastSeen
	t.Logf("paused at working set %d of %d", st.Workers[0].WorkingSet, st.Workers[0].Limit)
	time.Sleep(700 * time.Millisecond)
	if st := e.stats(); !st.Workers[0].LastSeen.After(seen1) {
		t.Fatal("worker stopped heartbeating while paused")
	}
	_ = ballast.Process.Kill()
	_ = ballast.Wait()
	eventually(t, 20*time.Second, "jobs done after ballast released", func() bool { return e.allSucceeded(ids) })
	select {
	case <-w.done:
		t.Fatalf("worker exited: %v", w.err)
	default:
	}
	if k := oomKills(t, cg); k != 0 {
		t.Fatalf("oom kills in the gated cgroup: %d", k)
	}
}
