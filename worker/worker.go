package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/budget"
)

// Worker claims jobs from a queue while memory allows and runs them. Create it
// with New and call Run once.
type Worker struct {
	cfg   Config
	q     *Queue
	log   *slog.Logger
	meter *budget.Meter
	mon   *budget.Monitor
	gate  *budget.Gate
	met   *metrics

	started, draining atomic.Bool
	peakWS            atomic.Uint64

	mu     sync.Mutex
	active map[string]*active
}

type active struct {
	job    *Job
	token  string
	cancel context.CancelCauseFunc
	start  uint64 // working set when the attempt started
	peak   atomic.Uint64
}

// New validates cfg and returns a Worker. It reads the memory budget once.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.MetricsAddr != "" && cfg.Registerer == nil {
		// Serving /metrics without a registry: use a private one with the Go
		// runtime and process collectors.
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		cfg.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	w := &Worker{cfg: cfg, q: NewQueue(cfg.Redis, cfg.Queue), log: cfg.Logger.With("worker", cfg.ID), active: map[string]*active{}}
	m, err := budget.Detect(cfg.Budget)
	if err != nil {
		return nil, fmt.Errorf("worker: memory meter: %w", err)
	}
	w.meter = m
	w.met = newMetrics(cfg, w.q)
	w.mon, err = budget.NewMonitor(m, budget.MonitorConfig{Interval: cfg.SampleInterval, Registerer: cfg.Registerer, OnSample: w.observe})
	if err != nil {
		return nil, fmt.Errorf("worker: memory monitor: %w", err)
	}
	s := w.mon.Latest()
	w.gate, err = budget.NewGate(s.Limit, cfg.Gate)
	if err != nil {
		return nil, fmt.Errorf("worker: gate: %w", err)
	}
	w.gate.Observe(s)
	return w, nil
}

// observe takes every memory sample: it feeds the gate and raises the peaks
// of the worker and of every running job, so a job's peak is measured here
// every SampleInterval, not by a scraper.
func (w *Worker) observe(s budget.Sample) {
	if w.gate != nil {
		paused := w.gate.Observe(s)
		if w.met != nil {
			setGauge(w.met.paused, b2f(paused))
		}
		if paused && w.cfg.OnPressure != nil && s.Limit > 0 {
			resume := uint64(float64(s.Limit) * w.gateResumeAt())
			if s.WorkingSet > resume {
				w.cfg.OnPressure(int64(s.WorkingSet - resume))
			}
		}
	}
	raise(&w.peakWS, s.WorkingSet)
	if w.met != nil {
		setGauge(w.met.peakWS, float64(w.peakWS.Load()))
	}
	w.mu.Lock()
	for _, a := range w.active {
		raise(&a.peak, s.WorkingSet)
	}
	w.mu.Unlock()
}

func raise(p *atomic.Uint64, v uint64) {
	for {
		old := p.Load()
		if v <= old || p.CompareAndSwap(old, v) {
			return
		}
	}
}

func (w *Worker) setActive() {
	if w.met != nil {
		setGauge(w.met.active, float64(w.running()))
	}
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Queue returns the queue the worker consumes.
func (w *Worker) Queue() *Queue { return w.q }

// Run claims and runs jobs until ctx is cancelled, then drains: it stops
// claiming, lets running jobs finish within DrainGrace, cancels the rest with
// cause ErrDraining and puts them back at the front of the queue with their
// attempt refunded. It returns nil after a drain.
func (w *Worker) Run(ctx context.Context) error {
	cfg := w.cfg
	s := w.mon.Latest()
	if cfg.GoMemLimit == 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(float64(s.Limit) * 0.9))
	} else if cfg.GoMemLimit > 0 {
		debug.SetMemoryLimit(cfg.GoMemLimit)
	}
	stopServe, err := w.serve()
	if err != nil {
		return err
	}
	defer stopServe()
	defer w.unregister(context.WithoutCancel(ctx))
	w.started.Store(true)
	w.log.Info("worker started", "limit", s.Limit, "working_set", s.WorkingSet, "source", s.Source, "capacity", w.gate.Capacity(), "count_only", cfg.CountOnly)

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	for _, f := range []func(context.Context){
		func(c context.Context) { _ = w.mon.Run(c) },
		w.heartbeatLoop,
		w.reapLoop,
	} {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); f(bg) }()
	}
	defer func() { stopBG(); bgWG.Wait() }()

	jobBase, cancelJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelJobs(ErrDraining)
	slots := make(chan struct{}, cfg.Concurrency)
	var jobsWG sync.WaitGroup

	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		started, err := w.claimOne(ctx, jobBase, slots, &jobsWG)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("claim", "err", err)
		}
		if !started {
			<-slots
			sleep(ctx, cfg.PollInterval)
		}
	}

	// Drain.
	w.draining.Store(true)
	if w.met != nil {
		setGauge(w.met.draining, 1)
	}
	w.heartbeat(context.WithoutCancel(ctx))
	w.log.Info("draining", "running", w.running())
	done := make(chan struct{})
	go func() { jobsWG.Wait(); close(done) }()
	t := time.NewTimer(cfg.DrainGrace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	cancelJobs(ErrDraining)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// Executors that ignore ctx: put their jobs back anyway; their late
		// results are fenced.
		for _, a := range w.snapshot() {
			_ = w.finish(context.Background(), a, "release", Result{}, "", "")
		}
		w.log.Warn("executors did not return after cancel; jobs released")
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (w *Worker) running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.active)
}

func (w *Worker) snapshot() []*active {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*active, 0, len(w.active))
	for _, a := range w.active {
		out = append(out, a)
	}
	return out
}

// expectedPeak is the job's hint, else a quantile of its workflow's history,
// else DefaultPeak.
func (w *Worker) expectedPeak(ctx context.Context, workflow string, hint int64) (int64, error) {
	if hint > 0 {
		return hint, nil
	}
	p, err := w.q.peaks(ctx, workflow)
	if err != nil {
		return 0, err
	}
	if v := quantile(p, w.cfg.PeakQuantile); v > 0 {
		return v, nil
	}
	return w.cfg.DefaultPeak, nil
}

// claimOne peeks at the oldest job, admits it through the gate and claims it.
// It reports whether a job was started (and then owns the slot).
func (w *Worker) claimOne(ctx, jobBase context.Context, slots chan struct{}, wg *sync.WaitGroup) (bool, error) {
	q := w.q
	id, err := q.rdb.LIndex(ctx, q.prefix+"pending", -1).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	expectID := ""
	var res *budget.Reservation
	var expected int64
	if !w.cfg.CountOnly {
		if w.gate.Paused() {
			return false, nil
		}
		f, err := q.rdb.HMGet(ctx, q.prefix+"job:"+id, "workflow", "hint").Result()
		if err != nil {
			return false, err
		}
		wf, _ := f[0].(string)
		hint, _ := strconv.ParseInt(fmt.Sprint(f[1]), 10, 64)
		expected, err = w.expectedPeak(ctx, wf, hint)
		if err != nil {
			return false, err
		}
		res, err = w.gate.TryReserve(wf, expected)
		if errors.Is(err, budget.ErrTooLarge) {
			msg := fmt.Sprintf("expected peak %d bytes exceeds worker %s memory budget %d bytes", expected, w.cfg.ID, w.gate.Capacity())
			if _, err := rejectPendingScript.Run(ctx, q.rdb, []string{q.prefix + "pending"}, q.prefix, id, string(KindExceedsMemory), msg, w.cfg.ID).Result(); err != nil {
				return false, fmt.Errorf("dead-letter %s: %w", id, err)
			}
			w.met.job(OutcomeDeadLettered, 1)
			w.log.Warn("job exceeds memory budget: dead-lettered", "run_id", id, "expected", expected)
			return false, nil
		}
		if err != nil {
			return false, nil // paused or no room now: wait
		}
		expectID = id
	}
	v, err := claimScript.Run(ctx, q.rdb, []string{q.prefix + "pending"}, q.prefix, expectID, w.cfg.ID,
		w.cfg.LeaseTTL.Milliseconds(), w.cfg.MaxCrashes, w.cfg.MaxAttempts).StringSlice()
	if err != nil || len(v) == 0 || v[0] != "ok" {
		if res != nil {
			res.Release()
		}
		if err != nil {
			return false, fmt.Errorf("claim: %w", err)
		}
		return false, nil
	}
	attempt, _ := strconv.Atoi(v[3])
	hint, _ := strconv.ParseInt(v[6], 10, 64)
	crashes, _ := strconv.Atoi(v[7])
	job := &Job{RunID: v[1], Workflow: v[5], Payload: []byte(v[4]), MemoryHint: hint, ExpectedPeak: expected, Attempt: attempt, Crashes: crashes}
	jctx, cancel := context.WithCancelCause(jobBase)
	a := &active{job: job, token: v[2], cancel: cancel, start: w.mon.Latest().WorkingSet}
	a.peak.Store(a.start)
	w.mu.Lock()
	w.active[job.RunID] = a
	w.mu.Unlock()
	if w.met != nil {
		w.met.claims.Inc()
	}
	w.setActive()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-slots }()
		if res != nil {
			defer res.Release()
		}
		w.execute(jctx, a)
	}()
	return true, nil
}

func (w *Worker) execute(ctx context.Context, a *active) {
	defer a.cancel(nil)
	log := w.log.With("run_id", a.job.RunID, "attempt", a.job.Attempt)
	log.Info("job started", "expected_peak", a.job.ExpectedPeak)
	if w.cfg.JobTimeout > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeoutCause(ctx, w.cfg.JobTimeout, fmt.Errorf("%w: job timeout %v", context.DeadlineExceeded, w.cfg.JobTimeout))
		defer c()
	}
	res, err := w.cfg.Executor.Execute(ctx, a.job)
	if res.PeakBytes == 0 {
		raise(&a.peak, w.mon.Latest().WorkingSet)
		if p := a.peak.Load(); p > a.start {
			res.PeakBytes = int64(p - a.start)
		}
	}
	cause := context.Cause(ctx)
	outcome, kind, msg := "succeeded", ErrorKind(""), ""
	maxA := w.cfg.MaxAttempts
	switch {
	case err == nil:
	case errors.Is(err, ErrSuspended):
		outcome, msg = "suspended", err.Error()
	case errors.Is(cause, ErrDraining):
		outcome = "release"
	case errors.Is(cause, context.DeadlineExceeded):
		outcome, kind, msg = "failed", KindTimeout, err.Error()
	default:
		outcome, kind, msg = "failed", KindError, err.Error()
	}
	if outcome == "failed" && !errors.Is(err, ErrPermanent) && a.job.Attempt < maxA {
		outcome = "retry"
	}
	// Retry the write while Redis is unreachable, up to the lease: past it the
	// job is reaped and the result would be fenced anyway.
	deadline := time.Now().Add(w.cfg.LeaseTTL + w.cfg.ReapInterval)
	for {
		err := w.finish(context.Background(), a, outcome, res, kind, msg)
		if err == nil || errors.Is(err, ErrLeaseLost) || time.Now().After(deadline) {
			if err != nil {
				log.Warn("result not recorded", "outcome", outcome, "err", err)
				if errors.Is(err, ErrLeaseLost) {
					w.met.job(OutcomeFenced, 1)
				}
			} else {
				log.Info("job finished", "outcome", outcome, "peak", res.PeakBytes)
				w.met.job(metricOutcome(outcome, kind), 1)
			}
			if outcome != "release" {
				w.met.finished(a.job.Workflow, res)
			}
			w.setActive()
			if w.cfg.OnFinish != nil {
				w.cfg.OnFinish(a.job, outcome, err)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricOutcome maps a recorded outcome to its dagrun_worker_jobs_total label.
func metricOutcome(outcome string, kind ErrorKind) string {
	switch {
	case kind == KindTimeout:
		return OutcomeTimedOut
	case outcome == "retry":
		return OutcomeRetried
	case outcome == "release":
		return OutcomeReleased
	case outcome == "dead":
		return OutcomeDeadLettered
	}
	return outcome
}

// finish records an attempt's outcome, fenced by the lease token, and forgets
// the job locally.
func (w *Worker) finish(ctx context.Context, a *active, outcome string, res Result, kind ErrorKind, msg string) error {
	enc := func(v any, empty bool) (string, error) {
		if empty {
			return "", nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	nodes, err := enc(res.Nodes, res.Nodes == nil)
	if err != nil {
		return fmt.Errorf("encode nodes: %w", err)
	}
	susp, err := enc(res.Suspended, outcome != "suspended")
	if err != nil {
		return fmt.Errorf("encode suspended nodes: %w", err)
	}
	if outcome == "suspended" && len(res.Suspended) == 0 {
		susp = "[]"
	}
	stats, err := enc(res.NodeStats, len(res.NodeStats) == 0)
	if err != nil {
		return fmt.Errorf("encode node stats: %w", err)
	}
	n, err := finishScript.Run(ctx, w.q.rdb, []string{w.q.prefix + "leases"}, w.q.prefix, a.job.RunID, a.token, outcome,
		res.PeakBytes, nodes, string(kind), msg, w.cfg.HistorySize, w.cfg.ID, susp, stats).Int()
	if err != nil {
		return fmt.Errorf("finish %s: %w", a.job.RunID, err)
	}
	w.mu.Lock()
	if w.active[a.job.RunID] == a {
		delete(w.active, a.job.RunID)
	}
	w.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("finish %s attempt %d: %w", a.job.RunID, a.job.Attempt, ErrLeaseLost)
	}
	return nil
}

// heartbeatLoop extends the leases of running jobs and publishes the worker's
// state; a job whose lease is gone is cancelled with ErrLeaseLost.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		w.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) heartbeat(ctx context.Context) {
	q := w.q
	acts := w.snapshot()
	if len(acts) > 0 {
		args := []any{q.prefix, w.cfg.LeaseTTL.Milliseconds()}
		for _, a := range acts {
			args = append(args, a.job.RunID, a.token)
		}
		ok, err := heartbeatScript.Run(ctx, q.rdb, []string{q.prefix + "leases"}, args...).Int64Slice()
		if err != nil {
			w.log.Warn("heartbeat", "err", err)
		} else {
			for i, a := range acts {
				if i < len(ok) && ok[i] == 0 {
					w.log.Warn("lease lost", "run_id", a.job.RunID, "attempt", a.job.Attempt)
					a.cancel(ErrLeaseLost)
				}
			}
		}
	}
	s := w.mon.Latest()
	now := time.Now().UnixMilli()
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	pipe := q.rdb.Pipeline()
	key := q.prefix + "worker:" + w.cfg.ID
	pipe.HSet(ctx, key, "seen", now, "ws", s.WorkingSet, "limit", s.Limit, "paused", flag(w.gate.Paused()), "running", len(acts),
		"peak", w.peakWS.Load(), "capacity", w.gate.Capacity(), "source", string(s.Source), "draining", flag(w.draining.Load()))
	pipe.PExpire(ctx, key, 3*w.cfg.LeaseTTL+time.Minute)
	pipe.ZAdd(ctx, q.prefix+"workers", redis.Z{Score: float64(now), Member: w.cfg.ID})
	pipe.ZRemRangeByScore(ctx, q.prefix+"workers", "-inf", strconv.FormatInt(now-int64(time.Hour/time.Millisecond), 10))
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		w.log.Warn("worker heartbeat", "err", err)
	}
}

// unregister removes the worker's published state after a clean exit, so
// `dagrun queue stats` and doctor list only live workers.
func (w *Worker) unregister(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pipe := w.q.rdb.Pipeline()
	pipe.Del(ctx, w.q.prefix+"worker:"+w.cfg.ID)
	pipe.ZRem(ctx, w.q.prefix+"workers", w.cfg.ID)
	_, _ = pipe.Exec(ctx)
}

// reapLoop reaps expired leases and reconciles runs marked running without a
// lease. Safe to run in every worker at once: each reap is one script.
func (w *Worker) reapLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ReapInterval)
	defer t.Stop()
	var cursor uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := w.reapCount(ctx, nil)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("reap", "err", err)
			}
			continue
		}
		if n > 0 {
			w.log.Info("reaped expired leases", "jobs", n)
		}
		// Reconcile: "running" set members without a lease.
		ids, next, err := w.q.rdb.SScan(ctx, w.q.prefix+"running", cursor, "", 200).Result()
		if err != nil {
			continue
		}
		cursor = next
		var orphans []string
		if len(ids) > 0 {
			scores, err := w.q.rdb.ZMScore(ctx, w.q.prefix+"leases", ids...).Result()
			if err != nil {
				continue
			}
			for i, s := range scores {
				if s == 0 {
					orphans = append(orphans, ids[i])
				}
			}
		}
		if len(orphans) > 0 {
			if n, err := w.reapCount(ctx, orphans); err == nil && n > 0 {
				w.log.Warn("reconciled runs left running without a lease", "jobs", n)
			}
		}
	}
}

// reapCount reaps and counts what it recovered in the worker's metrics; each
// recovery happens in exactly one worker's script, so the sum over workers
// counts each crashed job once.
func (w *Worker) reapCount(ctx context.Context, orphans []string) (int, error) {
	expired, orphaned, dead, err := w.q.reap(ctx, w.cfg.MaxCrashes, orphans)
	if err != nil {
		return 0, err
	}
	w.met.recover("lease_expired", expired)
	w.met.recover("orphaned", orphaned)
	w.met.job(OutcomeKilled, expired+orphaned)
	w.met.job(OutcomeDeadLettered, dead)
	return expired + orphaned, nil
}

// reap runs the reaper script once: expired leases plus the given orphans.
// It returns the expired and orphaned jobs recovered and how many of them
// were dead-lettered.
func (q *Queue) reap(ctx context.Context, maxCrashes int, orphans []string) (expired, orphaned, dead int, err error) {
	args := []any{q.prefix, maxCrashes, 100}
	for _, id := range orphans {
		args = append(args, id)
	}
	v, err := reapScript.Run(ctx, q.rdb, []string{q.prefix + "leases"}, args...).Int64Slice()
	if err != nil || len(v) < 3 {
		return 0, 0, 0, err
	}
	return int(v[0]), int(v[1]), int(v[2]), nil
}

// gateResumeAt is the configured resume fraction (default 0.70).
func (w *Worker) gateResumeAt() float64 {
	if w.cfg.Gate.ResumeAt > 0 {
		return w.cfg.Gate.ResumeAt
	}
	return budget.DefaultResumeAt
}
