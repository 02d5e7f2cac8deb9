package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

// TestExceedsBudgetDeadLetteredAndDLQOps runs an in-process worker with a
// 1 GiB budget: a job hinted at 2 GiB is dead-lettered unrun, a small one runs;
// RetryDead and DropDead operate on the dead letter.
func TestExceedsBudgetDeadLetteredAndDLQOps(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	ran := make(chan string, 10)
	cfg := worker.Config{
		Redis: srv.Client(), Queue: "inproc", LeaseTTL: time.Second, ReapInterval: 200 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, GoMemLimit: -1,
		Budget: quietBudget(t, 1<<30),
		Executor: worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
			ran <- j.RunID
			if string(j.Payload) == "fail" {
				return worker.Result{}, errors.Join(worker.ErrPermanent, errors.New("bad input: field x"))
			}
			return worker.Result{PeakBytes: 1234, Nodes: map[string]string{"n1": "succeeded"}}, nil
		}),
	}
	if err := (worker.Config{}).Validate(); err == nil {
		t.Fatal("Validate accepted a config without Redis")
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := w.Queue()
	big, _ := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "big", Workflow: "wf", Payload: []byte("x"), MemoryHint: 2 << 30})
	small, _ := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "small", Workflow: "wf", Payload: []byte("x")})
	bad, _ := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "bad", Workflow: "wf", Payload: []byte("fail")})
	if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "small", Workflow: "wf"}); !errors.Is(err, worker.ErrDuplicate) {
		t.Fatalf("duplicate enqueue error = %v, want ErrDuplicate", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	eventually(t, 10*time.Second, "small and bad finished", func() bool {
		s, _ := q.GetRun(ctx, small)
		b, _ := q.GetRun(ctx, bad)
		return s != nil && b != nil && s.Status == worker.StatusSucceeded && b.Status == worker.StatusFailed
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(ran)
	for id := range ran {
		if id == big {
			t.Fatal("job exceeding the budget was run")
		}
	}
	r, _ := q.GetRun(ctx, big)
	if r.Status != worker.StatusDead || r.LastError == nil || r.LastError.Kind != worker.KindExceedsMemory || r.Attempts != 0 {
		t.Fatalf("big = %s %+v attempts %d, want dead exceeds_memory never started", r.Status, r.LastError, r.Attempts)
	}
	s, _ := q.GetRun(ctx, small)
	if s.PeakBytes != 1234 || s.Nodes["n1"] != "succeeded" {
		t.Fatalf("small record peak %d nodes %v", s.PeakBytes, s.Nodes)
	}
	b, _ := q.GetRun(ctx, bad)
	if b.Attempts != 1 || b.LastError.Kind != worker.KindError {
		t.Fatalf("permanent failure retried: attempts %d, %+v", b.Attempts, b.LastError)
	}
	runs, err := q.ListRuns(ctx, worker.ListOptions{Status: worker.StatusDead})
	if err != nil || len(runs) != 1 || runs[0].ID != big {
		t.Fatalf("ListRuns(dead) = %v %v", runs, err)
	}
	if err := q.RetryDead(ctx, big); err != nil {
		t.Fatal(err)
	}
	if r, _ := q.GetRun(ctx, big); r.Status != worker.StatusQueued {
		t.Fatalf("after RetryDead status %s", r.Status)
	}
	if err := q.DropDead(ctx, big); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("DropDead of a non-dead run: %v, want ErrNotFound", err)
	}
	st, _ := q.Stats(ctx)
	if st.Pending != 1 || st.Counters["succeeded"] != 1 || st.Counters["failed"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}
