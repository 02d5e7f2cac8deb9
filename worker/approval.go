package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/nodes"
)

// Approve records that node of run was approved. A run suspended at that node
// goes to the back of the pending list (the suspended attempt was already
// refunded, so the resume costs no attempt) and any worker resumes it. A run
// not suspended yet (queued or running) keeps the decision for when it
// reaches the node. It fails with ErrNotFound for an unknown run and
// ErrNotSuspended for a finished run or one suspended at other nodes. who
// names the operator in the run's history.
func (q *Queue) Approve(ctx context.Context, runID, nodeID, who string) error {
	return q.decide(ctx, approveScript, "approve", runID, nodeID, who, "")
}

// Reject records that node of run was rejected with reason. A run suspended
// at that node fails at once with kind KindRejected and the reason; a run not
// suspended yet fails when its node reads the decision. Errors as Approve.
func (q *Queue) Reject(ctx context.Context, runID, nodeID, who, reason string) error {
	return q.decide(ctx, rejectScript, "reject", runID, nodeID, who, reason)
}

func (q *Queue) decide(ctx context.Context, s *redis.Script, op, runID, nodeID, who, reason string) error {
	if runID == "" || nodeID == "" {
		return fmt.Errorf("worker: %s: run id and node id are required", op)
	}
	if who == "" {
		who = "operator"
	}
	v, err := s.Run(ctx, q.rdb, []string{q.prefix + "job:" + runID}, q.prefix, runID, nodeID, who, reason).StringSlice()
	if err != nil {
		return fmt.Errorf("worker: %s %s node %s: %w", op, runID, nodeID, err)
	}
	switch v[0] {
	case "missing":
		return fmt.Errorf("worker: %s %s: %w", op, runID, ErrNotFound)
	case "terminal":
		return fmt.Errorf("worker: %s %s node %s: run is %s: %w", op, runID, nodeID, v[1], ErrNotSuspended)
	case "notat":
		return fmt.Errorf("worker: %s %s node %s: run is suspended at %s: %w", op, runID, nodeID, v[1], ErrNotSuspended)
	}
	return nil
}

// SuspendedRuns returns runs waiting for an approval, oldest first.
func (q *Queue) SuspendedRuns(ctx context.Context, offset, limit int) ([]*Run, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := q.rdb.ZRange(ctx, q.prefix+"suspended", int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("worker: suspended runs: %w", err)
	}
	return q.runs(ctx, ids, "")
}

// Approver answers nodes.Approver from the decisions Queue.Approve and
// Queue.Reject store in Redis. It is safe for concurrent use.
type Approver struct{ q *Queue }

// NewApprover returns an Approver reading q's decisions.
func NewApprover(q *Queue) *Approver { return &Approver{q: q} }

var _ nodes.Approver = (*Approver)(nil)

// Decision returns the stored decision for node of run, Pending if none.
func (a *Approver) Decision(ctx context.Context, runID, nodeID string) (nodes.Decision, error) {
	v, err := a.q.rdb.HGet(ctx, a.q.prefix+"approval:"+runID, nodeID).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nodes.Pending, nil
	case err != nil:
		return nodes.Pending, fmt.Errorf("worker: approval of %s node %s: %w", runID, nodeID, err)
	case v == "approved":
		return nodes.Approved, nil
	case v == "rejected":
		return nodes.Rejected, nil
	}
	return nodes.Pending, nil
}

// WorkflowPeaks returns the recent observed peaks (bytes, newest first) of
// every workflow that has any, read with SCAN (bounded to 1000 workflows).
func (q *Queue) WorkflowPeaks(ctx context.Context) (map[string][]int64, error) {
	out := map[string][]int64{}
	var cursor uint64
	for {
		keys, next, err := q.rdb.Scan(ctx, cursor, q.prefix+"peaks:*", 200).Result()
		if err != nil {
			return nil, fmt.Errorf("worker: workflow peaks: %w", err)
		}
		for _, k := range keys {
			wf := k[len(q.prefix+"peaks:"):]
			p, err := q.peaks(ctx, wf)
			if err != nil {
				return nil, fmt.Errorf("worker: workflow peaks %s: %w", wf, err)
			}
			out[wf] = p
		}
		cursor = next
		if cursor == 0 || len(out) >= 1000 {
			return out, nil
		}
	}
}
