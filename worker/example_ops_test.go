package worker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/worker"
)

// A run whose executor waits for a human is parked as suspended, holding no
// worker; Approve puts it back in the queue and a worker finishes it.
func ExampleQueue_Approve() {
	srv := redistest.Start(exampleT)
	defer srv.Kill()
	ctx := context.Background()
	q := worker.NewQueue(srv.Client(), "example")
	approver := worker.NewApprover(q)
	w, err := worker.New(worker.Config{Redis: srv.Client(), Queue: "example", GoMemLimit: -1, PollInterval: 10 * time.Millisecond,
		Executor: worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
			d, err := approver.Decision(ctx, j.RunID, "sign-off")
			if err != nil {
				return worker.Result{}, err
			}
			if d == nodes.Pending {
				return worker.Result{Suspended: []string{"sign-off"}}, fmt.Errorf("waiting for sign-off: %w", worker.ErrSuspended)
			}
			return worker.Result{}, nil
		})})
	if err != nil {
		fmt.Println(err)
		return
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	defer func() { stop(); <-done }()

	_, _ = q.Enqueue(ctx, worker.EnqueueRequest{RunID: "invoice-7", Workflow: "invoice"})
	wait := func(s worker.Status) *worker.Run {
		for {
			if r, _ := q.GetRun(ctx, "invoice-7"); r != nil && r.Status == s {
				return r
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	r := wait(worker.StatusSuspended)
	fmt.Println(r.Status, r.Suspended, "attempts:", r.Attempts)
	if err := q.Approve(ctx, "invoice-7", "sign-off", "alice"); err != nil {
		fmt.Println(err)
		return
	}
	r = wait(worker.StatusSucceeded)
	fmt.Println(r.Status, r.Decisions["sign-off"], "attempts:", r.Attempts)
	// Output:
	// suspended [sign-off] attempts: 0
	// succeeded approved attempts: 1
}
