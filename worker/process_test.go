package worker_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagrun/dagrun/worker"
)

// TestKill9RerunOnce: a worker SIGKILLed mid-job; the other worker re-runs the
// job once within lease + reap time and the run ends succeeded.
func TestKill9RerunOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.start("a")
	b := e.start("b")
	id := e.enqueue("job1", `{"sleep_ms":1500}`, 0)
	eventually(t, 5*time.Second, "first start", func() bool { return count(e.allEvents(), "start", id) == 1 })
	first, other := a, b
	if count(e.eventsOf("b"), "start", id) == 1 {
		first, other = b, a
	}
	first.signal(syscall.SIGKILL)
	killedAt := time.Now()
	first.wait(t, 5*time.Second)
	eventually(t, 5*time.Second, "re-run on the other worker", func() bool { return count(e.eventsOf(other.id), "start", id) == 1 })
	// lease 1s + reap 0.5s, plus the heartbeat that extended it (0.25s) and slack.
	if d := time.Since(killedAt); d > 3*time.Second {
		t.Errorf("re-run started %v after the kill, want within lease+reap (~1.5s)", d)
	}
	eventually(t, 5*time.Second, "run succeeded", func() bool { return e.status(id) == worker.StatusSucceeded })
	r := e.run(id)
	if r.Attempts != 2 || r.Crashes != 1 || r.AckedBy != other.id {
		t.Errorf("run = attempts %d crashes %d acked by %q, want 2, 1, %q", r.Attempts, r.Crashes, r.AckedBy, other.id)
	}
	evs := e.allEvents()
	if n := count(evs, "acked", id); n != 1 {
		t.Errorf("acked %d times, want 1", n)
	}
	if n := count(evs, "start", id); n != 2 {
		t.Errorf("started %d times, want 2", n)
	}
	st := e.stats()
	if st.Pending != 0 || st.Running != 0 {
		t.Errorf("pending %d, leases %d, want 0 and 0", st.Pending, st.Running)
	}
}

// TestRecoveredJobGoesToBack: job A is lost with its worker while B1..B100
// wait; A's next attempt starts after every B.
func TestRecoveredJobGoesToBack(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w1 := e.start("w1")
	a := e.enqueue("A", `{"sleep_ms":5000}`, 0)
	eventually(t, 5*time.Second, "A started", func() bool { return count(e.eventsOf("w1"), "start", a) == 1 })
	var bs []string
	for i := 1; i <= 100; i++ {
		bs = append(bs, e.enqueue(fmt.Sprintf("B%d", i), `{"sleep_ms":1}`, 0))
	}
	w1.signal(syscall.SIGKILL)
	w1.wait(t, 5*time.Second)
	e.start("w2")
	all := append([]string{a}, bs...)
	eventually(t, 30*time.Second, "all done", func() bool { return e.allSucceeded(all) })
	evs := e.eventsOf("w2")
	aIdx, lastB := -1, -1
	for i, ev := range evs {
		if ev.kind != "start" {
			continue
		}
		if ev.run == a {
			aIdx = i
		} else if strings.HasPrefix(ev.run, "B") {
			lastB = i
		}
	}
	if aIdx < lastB {
		t.Fatalf("A re-started at event %d, before the last B (%d): recovered job was not put at the back", aIdx, lastB)
	}
	if r := e.run(a); r.Attempts != 2 || r.Crashes != 1 {
		t.Errorf("A attempts %d crashes %d, want 2 and 1", r.Attempts, r.Crashes)
	}
}

// TestFencedAfterSIGSTOP: a worker frozen past its lease and thawed after
// another worker re-ran the job cannot record its result.
func TestFencedAfterSIGSTOP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.start("a")
	id := e.enqueue("job", `{"sleep_ms":1500}`, 0)
	eventually(t, 5*time.Second, "a started", func() bool { return count(e.eventsOf("a"), "start", id) == 1 })
	a.signal(syscall.SIGSTOP)
	e.start("b")
	eventually(t, 10*time.Second, "b re-ran and acked", func() bool { return count(e.eventsOf("b"), "acked", id) == 1 })
	a.signal(syscall.SIGCONT)
	eventually(t, 5*time.Second, "a's result refused", func() bool { return count(e.eventsOf("a"), "fenced", id) == 1 })
	r := e.run(id)
	if r.Status != worker.StatusSucceeded || r.AckedBy != "b" || r.Nodes["by"] != "b" {
		t.Fatalf("run = %s acked by %q nodes %v, want succeeded by b", r.Status, r.AckedBy, r.Nodes)
	}
	if count(e.eventsOf("a"), "acked", id) != 0 {
		t.Fatal("frozen worker recorded a result")
	}
	if e.stats().Counters["fenced"] < 1 {
		t.Fatal("fenced counter not incremented")
	}
}

// TestSIGTERMDrainRefunds: SIGTERM lets a short job finish within the grace
// period and puts a long one back with its attempt refunded; it then
// completes once on another worker.
func TestSIGTERMDrainRefunds(t *testing.T) {
	t.Parallel()
	e := setup(t)
	w := e.start("w", "-concurrency", "2", "-drain", "700ms")
	short := e.enqueue("short", `{"sleep_ms":300}`, 0)
	long := e.enqueue("long", `{"sleep_ms":3000}`, 0)
	eventually(t, 5*time.Second, "both started", func() bool { return count(e.eventsOf("w"), "start", "") == 2 })
	w.signal(syscall.SIGTERM)
	w.wait(t, 10*time.Second)
	if _, killed := w.killedBySignal(); killed || w.err != nil {
		t.Fatalf("worker exit: %v", w.err)
	}
	if s := e.status(short); s != worker.StatusSucceeded {
		t.Fatalf("short job %s after drain, want succeeded", s)
	}
	r := e.run(long)
	if r.Status != worker.StatusQueued || r.Attempts != 0 {
		t.Fatalf("long job after drain: %s attempts %d, want queued with attempt refunded (0)", r.Status, r.Attempts)
	}
	e.start("w2")
	eventually(t, 10*time.Second, "long done", func() bool { return e.status(long) == worker.StatusSucceeded })
	r = e.run(long)
	if r.Attempts != 1 || r.Crashes != 0 {
		t.Errorf("long: attempts %d crashes %d, want 1 and 0", r.Attempts, r.Crashes)
	}
	if n := count(e.allEvents(), "end", long); n != 1 {
		t.Errorf("long completed %d times, want 1", n)
	}
}
