package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/internal/budgettest"
	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/ops"
	"github.com/dagrun/dagrun/worker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runWorker runs an in-process worker with a 1 GiB budget on queue until
// cond holds, then stops it.
func runWorker(t *testing.T, srv *redistest.Server, queue string, exec worker.Executor, cond func() bool) {
	t.Helper()
	w, err := worker.New(worker.Config{Redis: srv.Client(), Queue: queue, Executor: exec, GoMemLimit: -1,
		Budget: quiet(t), PollInterval: 10 * time.Millisecond, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("worker did not reach the expected state")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func status(q *worker.Queue, id string) worker.Status {
	r, err := q.GetRun(context.Background(), id)
	if err != nil {
		return ""
	}
	return r.Status
}

func call(t *testing.T, f func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := f(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestDoctorNamesProblems: against a real Redis set to allkeys-lru with a
// dead letter, a run left running without a lease and a job pending with no
// live worker, doctor exits 1 and names the four problems with their fixes
// (and warns about a run one crash from the dead-letter set); once repaired,
// it passes.
func TestDoctorNamesProblems(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--maxmemory-policy", "allkeys-lru")
	ctx := context.Background()
	q := worker.NewQueue(srv.Client(), "doc")
	for _, req := range []worker.EnqueueRequest{
		{RunID: "huge", Workflow: "quarterly-report", MemoryHint: 8 << 30},
		{RunID: "fine", Workflow: "small"},
		{RunID: "orphan", Workflow: "etl"},
	} {
		if _, err := q.Enqueue(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// A real worker dead-letters "huge" (above its 1 GiB budget) and runs
	// the others.
	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		return worker.Result{PeakBytes: 5 << 20}, nil
	})
	runWorker(t, srv, "doc", exec, func() bool {
		return status(q, "huge") == worker.StatusDead && status(q, "orphan") == worker.StatusSucceeded
	})
	// "orphan" is then left running without a lease, as after a SIGKILL
	// with no worker left to reconcile it.
	rdb := srv.Client()
	if err := rdb.HSet(ctx, "{doc}:job:orphan", "status", "running", "worker", "gone-1").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.SAdd(ctx, "{doc}:running", "orphan")
	// "wobbly" crashed twice: one more and it is dead-lettered.
	if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "wobbly", Workflow: "etl"}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, "{doc}:job:wobbly", "crashes", 2, "status", "retrying", "error_kind", "killed", "error", "worker w-3 lost mid-job")

	out, err := call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Doctor(ctx, a, o, e) },
		"--redis", srv.URL(), "--queue", "doc", "--skip-local")
	var ee *ops.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !errors.Is(err, ops.ErrProblems) {
		t.Fatalf("doctor error = %v, want exit code 1 wrapping ErrProblems\n%s", err, out)
	}
	for _, want := range []string{
		"maxmemory-policy is allkeys-lru", "CONFIG SET maxmemory-policy noeviction",
		"1 dead letter(s) by reason / workflow: exceeds_memory / quarterly-report: 1 (e.g. huge)", "dagrun dlq show RUN",
		"1 run(s) marked running without a live lease", "orphan (etl, no lease, worker gone-1",
		"no worker heartbeat in the last minute; 1 job(s) pending",
		"1 run(s) at 2 crash(es) of MaxCrashes 3: wobbly (etl, 2 crash(es), last: [killed] worker w-3 lost mid-job)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "PROBLEM"); n != 4 {
		t.Errorf("%d problems printed, want 4:\n%s", n, out)
	}
	t.Logf("doctor output:\n%s", out)

	// JSON form of the same.
	jsonOut, _ := call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Doctor(ctx, a, o, e) },
		"--redis", srv.URL(), "--queue", "doc", "--skip-local", "--json")
	var doc struct {
		Problems int           `json:"problems"`
		Findings []ops.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &doc); err != nil || doc.Problems != 4 {
		t.Fatalf("doctor --json: %v, problems %d\n%s", err, doc.Problems, jsonOut)
	}

	// Fixed: policy, dead letter dropped, orphan repaired by a live worker.
	rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	if _, err := call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.DLQ(ctx, a, o, e) },
		"drop", "huge", "--redis", srv.URL(), "--queue", "doc"); err != nil {
		t.Fatal(err)
	}
	runWorker(t, srv, "doc", exec, func() bool {
		return status(q, "orphan") == worker.StatusSucceeded && status(q, "wobbly") == worker.StatusSucceeded
	})
	out, err = call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Doctor(ctx, a, o, e) },
		"--redis", srv.URL(), "--queue", "doc")
	if err != nil {
		t.Fatalf("doctor on a repaired queue: %v\n%s", err, out)
	}
	if !strings.Contains(out, "child-cgroup") || !strings.Contains(out, "cgroup ") {
		t.Errorf("doctor without --skip-local lacks the cgroup findings:\n%s", out)
	}
	t.Logf("repaired:\n%s", out)
}

// TestRunsDLQQueueCommands drives the run, dead-letter and queue commands
// against a real Redis and worker: list/show with text and JSON, approve and
// reject of suspended runs, dlq retry.
func TestRunsDLQQueueCommands(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	q := worker.NewQueue(srv.Client(), "cmds")
	approver := worker.NewApprover(q)
	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		if j.Workflow == "approval" {
			d, err := approver.Decision(ctx, j.RunID, "sign-off")
			if err != nil {
				return worker.Result{}, err
			}
			if d == 0 {
				return worker.Result{Suspended: []string{"sign-off"}, Nodes: map[string]string{"load": "succeeded", "sign-off": "suspended"}},
					fmt.Errorf("waiting for sign-off: %w", worker.ErrSuspended)
			}
		}
		return worker.Result{PeakBytes: 300 << 20, Nodes: map[string]string{"load": "succeeded"},
			NodeStats: []worker.NodeStat{{Node: "load", Type: "xlsx.read", Status: "succeeded", PeakBytes: 200 << 20, SpilledBytes: 50 << 20}}}, nil
	})
	for _, req := range []worker.EnqueueRequest{
		{RunID: "a1", Workflow: "approval"}, {RunID: "a2", Workflow: "approval"},
		{RunID: "big", Workflow: "huge", MemoryHint: 4 << 30}, {RunID: "ok", Workflow: "plain"},
	} {
		if _, err := q.Enqueue(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	runWorker(t, srv, "cmds", exec, func() bool {
		return status(q, "a1") == worker.StatusSuspended && status(q, "a2") == worker.StatusSuspended &&
			status(q, "big") == worker.StatusDead && status(q, "ok") == worker.StatusSucceeded
	})
	common := []string{"--redis", srv.URL(), "--queue", "cmds"}
	runs := func(a ...string) (string, error) {
		return call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Runs(ctx, a, o, e) }, append(a, common...)...)
	}
	dlq := func(a ...string) (string, error) {
		return call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.DLQ(ctx, a, o, e) }, append(a, common...)...)
	}
	out, err := runs("list", "--status", "suspended")
	if err != nil || !strings.Contains(out, "a1") || !strings.Contains(out, "a2") || strings.Contains(out, "big") || !strings.Contains(out, "waiting for sign-off") {
		t.Fatalf("runs list --status suspended: %v\n%s", err, out)
	}
	out, err = runs("show", "ok")
	for _, want := range []string{"Status:", "succeeded", "300.0 MiB", "xlsx.read", "200.0 MiB", "50.0 MiB", "History:"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("runs show ok lacks %q (%v):\n%s", want, err, out)
		}
	}
	out, err = runs("show", "ok", "--json")
	var shown struct {
		ID        string
		Status    string
		NodeStats []worker.NodeStat
	}
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != "ok" || len(shown.NodeStats) != 1 || shown.NodeStats[0].SpilledBytes != 50<<20 {
		t.Fatalf("runs show --json: %v %+v\n%s", err, shown, out)
	}
	if _, err := runs("approve", "a1", "wrong-node"); !errors.Is(err, worker.ErrNotSuspended) {
		t.Fatalf("approve at a wrong node: %v", err)
	}
	if _, err := runs("show", "nope"); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("show unknown: %v", err)
	}
	var ee *ops.ExitError
	if _, err := runs("approve", "a1"); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("approve without node: %v, want usage error code 2", err)
	}
	if out, err := runs("approve", "a1", "sign-off", "--by", "carol"); err != nil || !strings.Contains(out, "approved a1 node sign-off: run is now queued") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out, err := runs("reject", "a2", "sign-off", "--reason", "wrong totals"); err != nil || !strings.Contains(out, "run is now failed") {
		t.Fatalf("reject: %v\n%s", err, out)
	}
	out, err = dlq("list")
	if err != nil || !strings.Contains(out, "big") || !strings.Contains(out, "exceeds_memory") || !strings.Contains(out, "exceeds worker") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	if _, err := dlq("show", "ok"); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("dlq show of a live run: %v", err)
	}
	if out, err := dlq("retry", "big"); err != nil || !strings.Contains(out, "requeued big") {
		t.Fatalf("dlq retry: %v\n%s", err, out)
	}
	runWorker(t, srv, "cmds", exec, func() bool { return status(q, "a1") == worker.StatusSucceeded && status(q, "big") == worker.StatusDead })
	if r, _ := q.GetRun(ctx, "a2"); r.LastError == nil || r.LastError.Kind != worker.KindRejected || !strings.Contains(r.LastError.Message, "wrong totals") {
		t.Fatalf("a2 = %+v", r.LastError)
	}
	out, err = call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Queue(ctx, a, o, e) }, append([]string{"stats"}, common...)...)
	if err != nil || !strings.Contains(out, "pending 0") || !strings.Contains(out, "dead letters 1") || !strings.Contains(out, "approved=1") || !strings.Contains(out, "rejected=1") {
		t.Fatalf("queue stats: %v\n%s", err, out)
	}
	out, err = call(t, func(ctx context.Context, a []string, o, e *bytes.Buffer) error { return ops.Queue(ctx, a, o, e) }, append([]string{"stats", "--json"}, common...)...)
	var st worker.Stats
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Dead != 1 || len(st.Workers) != 0 {
		t.Fatalf("queue stats --json: %v %+v\n%s", err, st, out)
	}
}

// quiet is a 1 GiB memory budget read from a cgroup of the test's own (see
// budgettest), so admission does not depend on the machine's load.
func quiet(t *testing.T) budget.Config {
	cfg, _ := budgettest.Quiet(t, 1<<30)
	return cfg
}
