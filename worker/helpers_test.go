package worker_test

import (
	"bufio"
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

	"go.uber.org/goleak"

	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/internal/budgettest"
	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

var testworkerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "testworker")
	if err != nil {
		panic(err)
	}
	testworkerBin = filepath.Join(dir, "testworker")
	out, err := exec.Command("go", "build", "-o", testworkerBin, "./internal/testworker").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build testworker: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's Redis, queue and event directory.
type env struct {
	t      *testing.T
	srv    *redistest.Server
	q      *worker.Queue
	queue  string
	events string

	mu    sync.Mutex
	procs []*proc
}

func setup(t *testing.T, redisArgs ...string) *env {
	t.Helper()
	srv := redistest.Start(t, redisArgs...)
	e := &env{t: t, srv: srv, queue: "q" + strconv.Itoa(os.Getpid()), events: t.TempDir()}
	e.q = worker.NewQueue(srv.Client(), e.queue)
	t.Cleanup(func() {
		e.mu.Lock()
		ps := e.procs
		e.mu.Unlock()
		for _, p := range ps {
			p.kill()
		}
	})
	return e
}

// proc is one worker process.
type proc struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("worker %s did not exit within %v", p.id, d)
	}
}

// killedBySignal reports the signal that ended the process, if any.
func (p *proc) killedBySignal() (syscall.Signal, bool) {
	st, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !st.Signaled() {
		return 0, false
	}
	return st.Signal(), true
}

// start runs a testworker process and waits for its "worker ready" line.
func (e *env) start(id string, args ...string) *proc {
	e.t.Helper()
	p := e.launch(id, args...)
	return p
}

func (e *env) launch(id string, args ...string) *proc {
	all := append([]string{"-redis", e.srv.Addr, "-queue", e.queue, "-id", id, "-events", e.events}, args...)
	cmd := exec.Command(testworkerBin, all...)
	stderr, err := os.Create(filepath.Join(e.events, id+".stderr"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{id: id, cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				once.Do(func() { close(ready) })
			}
		}
		once.Do(func() { close(ready) })
		p.err = cmd.Wait()
		stderr.Close()
		close(p.done)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		e.t.Fatalf("worker %s not ready", id)
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

// event is one line of a worker's events file.
type event struct {
	kind, run, worker, extra string
	attempt                  int
}

// events reads all event files, each in its own order, concatenated by
// worker; within one file lines are in time order.
func (e *env) eventsOf(worker string) []event {
	b, _ := os.ReadFile(filepath.Join(e.events, worker+".events"))
	var out []event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		a, _ := strconv.Atoi(f[2])
		ev := event{kind: f[0], run: f[1], attempt: a, worker: f[3]}
		if len(f) > 4 {
			ev.extra = f[4]
		}
		out = append(out, ev)
	}
	return out
}

func (e *env) allEvents() []event {
	files, _ := filepath.Glob(filepath.Join(e.events, "*.events"))
	var out []event
	for _, f := range files {
		out = append(out, e.eventsOf(strings.TrimSuffix(filepath.Base(f), ".events"))...)
	}
	return out
}

func count(evs []event, kind, run string) int {
	n := 0
	for _, ev := range evs {
		if ev.kind == kind && (run == "" || ev.run == run) {
			n++
		}
	}
	return n
}

// eventually polls cond every 50ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) enqueue(id, payload string, hint int64) string {
	e.t.Helper()
	got, err := e.q.Enqueue(context.Background(), worker.EnqueueRequest{RunID: id, Workflow: "wf", Payload: []byte(payload), MemoryHint: hint})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *env) run(id string) *worker.Run {
	e.t.Helper()
	r, err := e.q.GetRun(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) status(id string) worker.Status {
	r, err := e.q.GetRun(context.Background(), id)
	if err != nil {
		return ""
	}
	return r.Status
}

func (e *env) stats() *worker.Stats {
	e.t.Helper()
	s, err := e.q.Stats(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) allSucceeded(ids []string) bool {
	for _, id := range ids {
		if e.status(id) != worker.StatusSucceeded {
			return false
		}
	}
	return true
}

// memCgroup creates a cgroup v1 memory group with a limit below this
// process's own memory cgroup, removed at cleanup.
func memCgroup(t *testing.T, name string, limit int64) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	own := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") {
			own = f[2]
		}
	}
	if own == "" {
		t.Skip("no cgroup v1 memory controller for this process (kernel or mount lacks it)")
	}
	dir := filepath.Join("/sys/fs/cgroup/memory", own, fmt.Sprintf("dagrun-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create memory cgroup (need root and a writable cgroup v1 memory mount): %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, pid := range strings.Fields(string(b)) {
				n, _ := strconv.Atoi(pid)
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

func oomKills(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// quietBudget is a memory budget read from a cgroup of the test's own (see
// budgettest), so admission does not depend on the machine's load.
func quietBudget(t testing.TB, limit uint64) budget.Config {
	cfg, _ := budgettest.Quiet(t, limit)
	return cfg
}
