package dagrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/worker"
)

// WorkerExecutor returns a worker.Executor that runs each job's payload (a
// workflow document) with the engine. With a store, every run is durable
// under its run id and every attempt resumes from the nodes an earlier
// attempt completed: a job re-run after its worker was SIGKILLed, or
// re-queued after a human approval, does not redo finished work.
//
// Errors map to the worker's: an invalid workflow and a node failure that
// retrying cannot fix (a corrupt file, a child over its memory budget)
// wrap worker.ErrPermanent; a suspension wraps worker.ErrSuspended with the
// suspended nodes in the Result.
func (e *Engine) WorkerExecutor() worker.Executor {
	return worker.ExecutorFunc(e.execute)
}

func (e *Engine) execute(ctx context.Context, job *worker.Job) (worker.Result, error) {
	plan, err := e.Parse(job.Payload, "run "+job.RunID)
	if err != nil {
		return worker.Result{}, fmt.Errorf("%w: %w", worker.ErrPermanent, err)
	}
	durable := e.cfg.Store != nil
	res, runErr := e.Run(ctx, plan, RunOptions{RunID: job.RunID, Durable: durable, Resume: durable})
	if res == nil {
		return worker.Result{}, runErr
	}
	defer res.Close()
	out := resultOf(res.Report)
	var re *dag.RunError
	switch {
	case runErr == nil:
		return out, nil
	case errors.Is(runErr, dag.ErrSuspended) && errors.As(runErr, &re) && len(re.Failed) == 0:
		out.Suspended = re.Suspended
		return out, fmt.Errorf("%w: %w", worker.ErrSuspended, runErr)
	case errors.As(runErr, &re) && len(re.Failed) > 0 && allPermanent(re.Failed):
		return out, fmt.Errorf("%w: %w", worker.ErrPermanent, runErr)
	}
	return out, runErr
}

func allPermanent(errs []*dag.NodeError) bool {
	for _, ne := range errs {
		if !errors.Is(ne, dag.ErrPermanent) {
			return false
		}
	}
	return true
}

// resultOf summarises a run report for the worker's run record and metrics.
// The attempt's peak is its peak of live outputs plus the largest child
// process peak: both measured by the process itself, not sampled by a
// scraper.
func resultOf(r *dag.Report) worker.Result {
	out := worker.Result{Nodes: map[string]string{}}
	var childMax int64
	for _, n := range r.Nodes {
		out.Nodes[n.ID] = string(n.Status)
		child := n.Metrics["child_peak_bytes"]
		childMax = max(childMax, child)
		out.NodeStats = append(out.NodeStats, worker.NodeStat{
			Node: n.ID, Type: n.Type, Status: string(n.Status),
			PeakBytes: max(n.OutputBytes, child), SpilledBytes: n.SpilledBytes, ChildPeakBytes: child,
		})
	}
	out.PeakBytes = r.PeakLiveOutputBytes + childMax
	return out
}
