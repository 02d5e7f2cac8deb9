package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultQueue is the queue name used when none is configured.
const DefaultQueue = "dagrun"

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no run (or dead letter) with that id.
	ErrNotFound = errors.New("worker: run not found")
	// ErrDuplicate: Enqueue was given a run id that already exists.
	ErrDuplicate = errors.New("worker: run id already exists")
	// ErrLeaseLost: the worker no longer holds the job's lease (it expired and
	// was reaped, or another worker now runs the job); its result was not
	// recorded.
	ErrLeaseLost = errors.New("worker: lease lost")
	// ErrSuspended is wrapped by an Executor's error when the run waits for
	// something outside it (a human approval): the worker records the run as
	// suspended with Result.Suspended, refunds the attempt, frees the slot and
	// does not re-enqueue it; Queue.Approve does.
	ErrSuspended = errors.New("worker: run suspended")
	// ErrNotSuspended: Approve or Reject was given a run that already
	// finished, or that is suspended at other nodes.
	ErrNotSuspended = errors.New("worker: run not suspended at that node")
)

// Status is the state of a run.
type Status string

// Run statuses. Dead means failed for good and parked in the dead-letter set
// (Failed reports true for it). Suspended means parked on purpose (waiting
// for an approval): not pending, not leased, never touched by the reaper.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusRetrying  Status = "retrying"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusDead      Status = "dead"
	StatusSuspended Status = "suspended"
)

// Terminal reports whether the run will not change without an operator.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusDead
}

// Failed reports whether the run ended in failure (failed or dead).
func (s Status) Failed() bool { return s == StatusFailed || s == StatusDead }

// ErrorKind classifies a run's last error.
type ErrorKind string

// Error kinds recorded on runs.
const (
	// KindKilled: the worker died mid-job (SIGKILL, OOM kill); its lease expired.
	KindKilled ErrorKind = "killed"
	// KindTimeout: the job exceeded Config.JobTimeout.
	KindTimeout ErrorKind = "timeout"
	// KindError: the executor returned an error.
	KindError ErrorKind = "error"
	// KindExceedsMemory: the job's expected peak exceeds the worker's budget.
	KindExceedsMemory ErrorKind = "exceeds_memory"
	// KindExhausted: the job used all its attempts.
	KindExhausted ErrorKind = "exhausted"
	// KindRejected: an operator rejected a suspended node (Queue.Reject).
	KindRejected ErrorKind = "rejected"
)

// Queue is a client of one Redis queue: it enqueues jobs and reads and
// operates on run records and dead letters. It is safe for concurrent use and
// does not close the Redis client it was given.
type Queue struct {
	rdb    redis.UniversalClient
	name   string
	prefix string
}

// NewQueue returns a Queue named name (DefaultQueue if empty) on rdb.
func NewQueue(rdb redis.UniversalClient, name string) *Queue {
	if name == "" {
		name = DefaultQueue
	}
	return &Queue{rdb: rdb, name: name, prefix: "{" + name + "}:"}
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// EnqueueRequest describes a job to queue.
type EnqueueRequest struct {
	// RunID names the run; empty means a random id. Reusing an id fails with
	// ErrDuplicate, which makes enqueueing idempotent.
	RunID string
	// Workflow is the workflow's name; observed peaks are kept per workflow.
	Workflow string
	// Payload is the raw workflow JSON handed to the Executor.
	Payload []byte
	// MemoryHint is the expected peak in bytes; 0 means use history.
	MemoryHint int64
	// MaxAttempts bounds the attempts of this job; 0 means the worker's
	// Config.MaxAttempts.
	MaxAttempts int
	// Class is a resource class (kept on the record for operators).
	Class string
}

// Enqueue queues a job at the back of the pending list and returns its run id.
func (q *Queue) Enqueue(ctx context.Context, req EnqueueRequest) (string, error) {
	if req.Workflow == "" {
		return "", errors.New("worker: enqueue: Workflow is empty")
	}
	if req.MemoryHint < 0 || req.MaxAttempts < 0 {
		return "", fmt.Errorf("worker: enqueue %s: negative MemoryHint %d or MaxAttempts %d", req.Workflow, req.MemoryHint, req.MaxAttempts)
	}
	id := req.RunID
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	n, err := enqueueScript.Run(ctx, q.rdb, []string{q.prefix + "pending"}, q.prefix, id, req.Workflow, req.Payload,
		req.MemoryHint, req.MaxAttempts, req.Class).Int()
	if err != nil {
		return "", fmt.Errorf("worker: enqueue %s: %w", id, err)
	}
	if n == 0 {
		return "", fmt.Errorf("worker: enqueue %s: %w", id, ErrDuplicate)
	}
	return id, nil
}

// RunError is the last error of a run.
type RunError struct {
	Kind    ErrorKind
	Message string
}

// Event is one entry of a run's history (the last 64 are kept).
type Event struct {
	// Event is enqueued, start, succeeded, failed, retry, release, crashed,
	// dead or retry_dead.
	Event   string    `json:"ev"`
	At      time.Time `json:"-"`
	AtMilli int64     `json:"at"`
	Attempt int       `json:"attempt"`
	Worker  string    `json:"worker"`
	Kind    string    `json:"kind"`
	Error   string    `json:"error"`
	Peak    int64     `json:"peak"`
}

// Run is the record of one run.
type Run struct {
	ID          string
	Workflow    string
	Class       string
	Status      Status
	Attempts    int // attempts started (counted at pickup; a drained attempt is refunded)
	Crashes     int // attempts lost with their worker
	MaxAttempts int // 0: the worker's default
	MemoryHint  int64
	PeakBytes   int64  // peak of the last finished attempt
	Worker      string // worker of the last attempt
	AckedBy     string // worker that recorded the final result
	Nodes       map[string]string
	LastError   *RunError
	Payload     []byte
	EnqueuedAt  time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	UpdatedAt   time.Time
	LeaseUntil  time.Time
	History     []Event
	// Suspended lists the nodes a suspended run waits at; SuspendReason is
	// the executor's message; SuspendedAt when it was parked.
	Suspended     []string
	SuspendReason string
	SuspendedAt   time.Time
	// Decisions maps node id to "approved" or "rejected".
	Decisions map[string]string
	// NodeStats are the per-node figures of the last finished attempt.
	NodeStats []NodeStat
}

func ms(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// GetRun reads a run record with its history.
func (q *Queue) GetRun(ctx context.Context, id string) (*Run, error) {
	pipe := q.rdb.Pipeline()
	h := pipe.HGetAll(ctx, q.prefix+"job:"+id)
	lg := pipe.LRange(ctx, q.prefix+"log:"+id, 0, -1)
	ap := pipe.HGetAll(ctx, q.prefix+"approval:"+id)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("worker: get run %s: %w", id, err)
	}
	f := h.Val()
	if len(f) == 0 {
		return nil, fmt.Errorf("worker: get run %s: %w", id, ErrNotFound)
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(f[k]); return n }
	r := &Run{
		ID: id, Workflow: f["workflow"], Class: f["class"], Status: Status(f["status"]),
		Attempts: atoi("attempts"), Crashes: atoi("crashes"), MaxAttempts: atoi("max_attempts"),
		Worker: f["worker"], AckedBy: f["acked_by"], Payload: []byte(f["payload"]),
		EnqueuedAt: ms(f["enqueued_at"]), StartedAt: ms(f["started_at"]), FinishedAt: ms(f["finished_at"]),
		UpdatedAt: ms(f["updated_at"]), LeaseUntil: ms(f["lease_until"]),
		SuspendReason: f["suspend_msg"], SuspendedAt: ms(f["suspended_at"]),
	}
	if r.Status == StatusSuspended && f["suspended"] != "" {
		if err := json.Unmarshal([]byte(f["suspended"]), &r.Suspended); err != nil {
			return nil, fmt.Errorf("worker: get run %s: field suspended: %w", id, err)
		}
	}
	if f["node_stats"] != "" {
		if err := json.Unmarshal([]byte(f["node_stats"]), &r.NodeStats); err != nil {
			return nil, fmt.Errorf("worker: get run %s: field node_stats: %w", id, err)
		}
	}
	for k, v := range ap.Val() {
		if v == "approved" || v == "rejected" {
			if r.Decisions == nil {
				r.Decisions = map[string]string{}
			}
			r.Decisions[k] = v
		}
	}
	r.MemoryHint, _ = strconv.ParseInt(f["hint"], 10, 64)
	r.PeakBytes, _ = strconv.ParseInt(f["peak"], 10, 64)
	if f["error_kind"] != "" || f["error"] != "" {
		r.LastError = &RunError{Kind: ErrorKind(f["error_kind"]), Message: f["error"]}
	}
	if f["nodes"] != "" {
		if err := json.Unmarshal([]byte(f["nodes"]), &r.Nodes); err != nil {
			return nil, fmt.Errorf("worker: get run %s: field nodes: %w", id, err)
		}
	}
	for _, s := range lg.Val() {
		var e Event
		if json.Unmarshal([]byte(s), &e) == nil {
			e.At = time.UnixMilli(e.AtMilli)
			r.History = append(r.History, e)
		}
	}
	return r, nil
}

// ListOptions selects runs for ListRuns.
type ListOptions struct {
	// Status, when set, keeps only runs in that status.
	Status Status
	// Offset skips that many runs (newest first) before filtering.
	Offset int
	// Limit bounds the runs examined (default 100, at most 1000).
	Limit int
}

// ListRuns returns runs newest first.
func (q *Queue) ListRuns(ctx context.Context, opt ListOptions) ([]*Run, error) {
	if opt.Limit <= 0 {
		opt.Limit = 100
	}
	if opt.Limit > 1000 {
		opt.Limit = 1000
	}
	ids, err := q.rdb.ZRevRange(ctx, q.prefix+"runs", int64(opt.Offset), int64(opt.Offset+opt.Limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("worker: list runs: %w", err)
	}
	return q.runs(ctx, ids, opt.Status)
}

func (q *Queue) runs(ctx context.Context, ids []string, status Status) ([]*Run, error) {
	out := make([]*Run, 0, len(ids))
	for _, id := range ids {
		r, err := q.GetRun(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if status == "" || r.Status == status {
			out = append(out, r)
		}
	}
	return out, nil
}

// DeadLetters returns dead runs, oldest death first.
func (q *Queue) DeadLetters(ctx context.Context, offset, limit int) ([]*Run, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := q.rdb.ZRange(ctx, q.prefix+"dead", int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("worker: dead letters: %w", err)
	}
	return q.runs(ctx, ids, "")
}

// RetryDead moves a dead run back to the back of the queue with its attempts
// and crashes reset. Its history is kept.
func (q *Queue) RetryDead(ctx context.Context, id string) error {
	n, err := retryDeadScript.Run(ctx, q.rdb, []string{q.prefix + "dead"}, q.prefix, id).Int()
	if err != nil {
		return fmt.Errorf("worker: retry dead %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("worker: retry dead %s: %w", id, ErrNotFound)
	}
	return nil
}

// DropDead deletes a dead run and its record.
func (q *Queue) DropDead(ctx context.Context, id string) error {
	n, err := dropDeadScript.Run(ctx, q.rdb, []string{q.prefix + "dead"}, q.prefix, id).Int()
	if err != nil {
		return fmt.Errorf("worker: drop dead %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("worker: drop dead %s: %w", id, ErrNotFound)
	}
	return nil
}

// WorkerInfo is what a live worker last reported.
type WorkerInfo struct {
	ID         string
	LastSeen   time.Time
	WorkingSet uint64
	Limit      uint64
	Paused     bool
	Running    int
	// Peak is the highest working set the worker saw since it started;
	// Capacity its gate's pause threshold in bytes (the largest expected
	// peak it admits); Source where it reads memory (cgroup1, cgroup2, rss);
	// Draining whether it is shutting down.
	Peak     uint64
	Capacity int64
	Source   string
	Draining bool
}

// Stats is a snapshot of the queue.
type Stats struct {
	Pending int64 // jobs waiting
	Running int64 // live leases
	Dead    int64 // dead letters
	// Suspended counts runs parked waiting for an approval.
	Suspended int64
	// Counters: enqueued, started, succeeded, failed, retried, released,
	// crashes, dead, fenced (results refused because the lease was lost),
	// dead_retried, dead_dropped, suspended, approved, rejected.
	Counters map[string]int64
	Workers  []WorkerInfo // workers seen within the last minute
}

// Stats reads a snapshot of the queue.
func (q *Queue) Stats(ctx context.Context) (*Stats, error) {
	pipe := q.rdb.Pipeline()
	p := pipe.LLen(ctx, q.prefix+"pending")
	l := pipe.ZCard(ctx, q.prefix+"leases")
	d := pipe.ZCard(ctx, q.prefix+"dead")
	su := pipe.ZCard(ctx, q.prefix+"suspended")
	c := pipe.HGetAll(ctx, q.prefix+"stats")
	now := time.Now()
	w := pipe.ZRangeByScore(ctx, q.prefix+"workers", &redis.ZRangeBy{Min: strconv.FormatInt(now.Add(-time.Minute).UnixMilli(), 10), Max: "+inf"})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("worker: stats: %w", err)
	}
	st := &Stats{Pending: p.Val(), Running: l.Val(), Dead: d.Val(), Suspended: su.Val(), Counters: map[string]int64{}}
	for k, v := range c.Val() {
		st.Counters[k], _ = strconv.ParseInt(v, 10, 64)
	}
	for _, id := range w.Val() {
		f, err := q.rdb.HGetAll(ctx, q.prefix+"worker:"+id).Result()
		if err != nil {
			return nil, fmt.Errorf("worker: stats: worker %s: %w", id, err)
		}
		wi := WorkerInfo{ID: id, LastSeen: ms(f["seen"]), Paused: f["paused"] == "1"}
		wi.WorkingSet, _ = strconv.ParseUint(f["ws"], 10, 64)
		wi.Limit, _ = strconv.ParseUint(f["limit"], 10, 64)
		wi.Running, _ = strconv.Atoi(f["running"])
		wi.Peak, _ = strconv.ParseUint(f["peak"], 10, 64)
		wi.Capacity, _ = strconv.ParseInt(f["capacity"], 10, 64)
		wi.Source, wi.Draining = f["source"], f["draining"] == "1"
		st.Workers = append(st.Workers, wi)
	}
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].ID < st.Workers[j].ID })
	return st, nil
}

// peaks returns the recent observed peaks of a workflow.
func (q *Queue) peaks(ctx context.Context, workflow string) ([]int64, error) {
	vals, err := q.rdb.LRange(ctx, q.prefix+"peaks:"+workflow, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(vals))
	for _, v := range vals {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// quantile returns the q-quantile (nearest rank) of xs, or 0 when empty.
func quantile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
