package dag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures an Executor. The zero value is usable: eviction on,
// streaming pipes on, no spilling, parallelism 4.
type Config struct {
	// Parallelism bounds how many node groups run at once (default 4). A
	// group is a node, or a chain of nodes joined by piped tables, which run
	// together.
	Parallelism int
	// FailFast cancels the whole run at the first failure. Otherwise
	// independent branches finish and only dependents are skipped.
	FailFast bool
	// NoEvict holds every output until the run ends, as executors without
	// reference counting do. It exists to measure the gain.
	NoEvict bool
	// NoPipe materialises every table instead of piping it to a single
	// streaming consumer.
	NoPipe bool
	// Spiller, when set, receives outputs larger than the spill threshold and,
	// under memory pressure, the largest live outputs.
	Spiller Spiller
	// SpillThreshold is the default size above which an output is spilled
	// (default 32 MiB). Workflow defaults and nodes can override it.
	SpillThreshold int64
	// RunID names the run; with a Spiller it namespaces spilled blobs and the
	// run's durable record. Default: a random id.
	RunID string
	// Durable persists every completed output and a record of completed nodes
	// in the Spiller, so that a crashed run can be resumed. Needs a Spiller.
	Durable bool
	// Resume skips nodes that a previous attempt of the same RunID completed
	// and whose outputs are intact (implies Durable).
	Resume bool
	// Pressure, when set, is read during a run: each value n asks the run to
	// spill its largest in-memory outputs until at least n bytes are freed
	// (n <= 0: the single largest). Needs a Spiller.
	Pressure <-chan int64
	// OnEvent, when set, is called synchronously for every lifecycle event.
	// It must be fast and safe for concurrent use.
	OnEvent func(Event)
	// SampleInterval is how often Go heap and RSS are sampled (default 20ms).
	SampleInterval time.Duration
	// PoolBytes is how much memory of freed outputs is kept for reuse
	// (default 64 MiB).
	PoolBytes int64
	// LiveBytes, when set, also receives every change of the run's live
	// output bytes, so that one gauge can add up concurrent runs.
	LiveBytes *atomic.Int64
	// Logger receives run and node logs (default: discard).
	Logger *slog.Logger
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Parallelism < 0 {
		errs = append(errs, errors.New("Parallelism must be >= 0"))
	}
	if (c.Durable || c.Resume || c.Pressure != nil) && c.Spiller == nil {
		errs = append(errs, errors.New("Durable, Resume and Pressure need a Spiller"))
	}
	if c.Resume && c.RunID == "" {
		errs = append(errs, errors.New("Resume needs a RunID"))
	}
	if c.SpillThreshold < 0 {
		errs = append(errs, errors.New("SpillThreshold must be >= 0"))
	}
	return errors.Join(errs...)
}

// Executor runs validated plans. It is safe for concurrent use: each Run is
// independent.
type Executor struct {
	cfg Config
}

// New returns an Executor for cfg.
func New(cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dag config: %w", err)
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = 4
	}
	if cfg.SpillThreshold == 0 {
		cfg.SpillThreshold = 32 << 20
	}
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = 20 * time.Millisecond
	}
	if cfg.PoolBytes == 0 {
		cfg.PoolBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resume {
		cfg.Durable = true
	}
	return &Executor{cfg: cfg}, nil
}

// EventType names a lifecycle event.
type EventType string

// Lifecycle events.
const (
	EventNodeStarted  EventType = "node_started"
	EventNodeFinished EventType = "node_finished"
	EventNodeSkipped  EventType = "node_skipped"
	EventNodeResumed  EventType = "node_resumed"
	EventReleased     EventType = "output_released"
	EventFreed        EventType = "output_freed"
	EventSpilled      EventType = "output_spilled"
)

// Event is one lifecycle event of a run.
type Event struct {
	Type EventType
	// Node is the node the event is about (for releases: the producer).
	Node string
	// By is the consumer that released an output.
	By string
	// Refs is the number of references left after a release.
	Refs int
	// Bytes is the output's size (freed, spilled) or live output bytes.
	Bytes int64
	// Live is the run's live output bytes after the event.
	Live int64
	// Key is the spill key of a spilled output.
	Key    string
	Status Status
	Err    error
	Time   time.Time
}

// Status is a node's final state.
type Status string

// Node states.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusSkipped   Status = "skipped"
	StatusCancelled Status = "cancelled"
	StatusResumed   Status = "resumed"
	StatusSuspended Status = "suspended"
)

type run struct {
	cfg     *Config
	plan    *Plan
	ctx     context.Context
	cancel  context.CancelCauseFunc
	id      string
	log     *slog.Logger
	spiller Spiller
	debug   bool
	acct    *accountant
	pool    *chunkPool
	wg      sync.WaitGroup

	mu      sync.Mutex
	values  []*value // by node idx: the committed output
	states  []*nodeState
	groupOf []*group // by node idx; nil for resumed nodes
}

type nodeState struct {
	status     Status
	attempts   int
	err        *NodeError
	upstream   []string
	started    time.Time
	ended      time.Time
	heapDelta  int64
	piped      bool
	pipedBytes int64
	metrics    map[string]int64
	mode       string
}

func (r *run) emit(e Event) {
	if r.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Live, _ = r.acct.get()
	r.cfg.OnEvent(e)
}

func (r *run) outputKey(node string) string { return "runs/" + r.id + "/out/" + node }
func (r *run) recordKey(node string) string { return "runs/" + r.id + "/nodes/" + node }

// group is a set of nodes joined by piped tables, launched together. Its
// members form an in-tree: every member but the sink pipes its table to
// another member, so only the sink's output is read from outside.
type group struct {
	members   []*planNode
	sink      *planNode
	piped     map[*planNode]bool // producers whose output is piped inside the group (nil: none)
	pending   int
	waiters   []*group
	lastWait  *group   // dedup marker while building waiters
	failed    []string // failed or skipped upstream node ids
	suspended bool     // an upstream node suspended the run
}

// Run executes a plan. It returns a Result (with the report, and the
// outputs of the workflow's result nodes) whenever the run started; the
// error is a *RunError when a node failed or the run was cancelled. The
// caller must Close the Result to free the result outputs. Run returns only
// after every goroutine it started has ended.
func (e *Executor) Run(ctx context.Context, p *Plan) (*Result, error) {
	cfg := e.cfg
	r := &run{cfg: &cfg, plan: p, id: cfg.RunID, spiller: cfg.Spiller, acct: &accountant{shared: cfg.LiveBytes},
		pool: &chunkPool{limit: int(cfg.PoolBytes / maxChunk)}}
	if r.id == "" {
		r.id = newRunID()
	}
	r.log = cfg.Logger.With("run_id", r.id, "workflow", p.Workflow.Name)
	r.debug = r.log.Enabled(ctx, slog.LevelDebug)
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)
	r.values = make([]*value, len(p.nodes))
	r.states = make([]*nodeState, len(p.nodes))
	for i := range r.states {
		r.states[i] = &nodeState{status: StatusPending}
	}
	rep := &Report{Workflow: p.Workflow.Name, Version: p.Workflow.Version, RunID: r.id, Started: time.Now(),
		Evict: !cfg.NoEvict, Pipe: !cfg.NoPipe, Spill: cfg.Spiller != nil}
	sampler := startSampler(cfg.SampleInterval)

	resumed := map[*planNode]bool{}
	if cfg.Resume {
		var err error
		if resumed, err = r.loadResume(); err != nil {
			sampler.stop()
			return nil, err
		}
	}
	groups := r.buildGroups(resumed)
	r.log.Info("run started", "nodes", len(p.nodes), "groups", len(groups), "resumed", len(resumed))

	r.schedule(groups)
	r.wg.Wait()

	res := &Result{r: r}
	for _, n := range p.nodes {
		if n.result && r.values[n.idx] != nil {
			res.outputs = append(res.outputs, &Input{v: r.values[n.idx]})
		}
	}
	if cfg.NoEvict {
		// Everything was held; free what is not a result now.
		for _, n := range p.nodes {
			if v := r.values[n.idx]; v != nil && !n.result {
				r.free(v)
			}
		}
	}
	sampler.stop()
	rep.fill(r, sampler)
	res.Report = rep
	runErr := r.runError()
	if runErr == nil && cfg.Durable {
		r.clearRecords()
	}
	if runErr != nil {
		rep.Status = "failed"
		if runErr.Cause != nil {
			rep.Status = "cancelled"
		} else if len(runErr.Failed) == 0 && len(runErr.Suspended) > 0 {
			rep.Status = "suspended"
		}
		rep.Error = runErr.Error()
		r.log.Info("run finished", "status", rep.Status, "err", runErr)
		return res, runErr
	}
	rep.Status = "succeeded"
	r.log.Info("run finished", "status", rep.Status, "duration", rep.Duration)
	return res, nil
}

func (s *nodeState) errOr() error {
	if s.err != nil {
		return s.err
	}
	return errors.New("node failed")
}

func (r *run) groupFailed(g *group) bool {
	for _, m := range g.members {
		if r.states[m.idx].status == StatusFailed {
			return true
		}
	}
	return false
}

func (r *run) runError() *RunError {
	re := &RunError{}
	for _, n := range r.plan.order {
		st := r.states[n.idx]
		switch st.status {
		case StatusFailed:
			re.Failed = append(re.Failed, st.err)
		case StatusSkipped:
			re.Skipped = append(re.Skipped, n.spec.ID)
		case StatusCancelled:
			re.Cancelled = append(re.Cancelled, n.spec.ID)
		case StatusSuspended:
			re.Suspended = append(re.Suspended, n.spec.ID)
		case StatusPending:
			re.Pending = append(re.Pending, n.spec.ID)
		}
	}
	if cause := context.Cause(r.ctx); cause != nil && r.ctx.Err() != nil && len(re.Failed) == 0 {
		re.Cause = cause
	}
	if len(re.Failed) == 0 && len(re.Skipped) == 0 && len(re.Cancelled) == 0 && len(re.Suspended) == 0 && re.Cause == nil {
		return nil
	}
	return re
}

// schedule runs every group. Parallelism worker goroutines take ready
// groups from a shared queue and, when one finishes, mark its dependents
// ready themselves, so that no node pays for a goroutine start or a
// hand-off to a scheduler. Groups whose upstream failed or suspended, or
// that are ready after the run was cancelled, are settled without running.
// Memory-pressure requests are served on the calling goroutine meanwhile.
func (r *run) schedule(groups []*group) {
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		ready    []*group
		finished int
	)
	for _, g := range groups {
		if g.pending == 0 {
			ready = append(ready, g)
		}
	}
	complete := func(g *group) { // with mu held
		finished++
		for _, w := range g.waiters {
			w.pending--
			switch st := r.states[g.sink.idx].status; st {
			case StatusSucceeded, StatusResumed:
			case StatusSuspended, StatusPending:
				w.suspended = true
			default:
				w.failed = append(w.failed, g.sink.spec.ID)
			}
			if w.pending == 0 {
				ready = append(ready, w)
				cond.Signal()
			}
		}
		if finished == len(groups) {
			cond.Broadcast()
		}
	}
	worker := func() {
		mu.Lock()
		defer mu.Unlock()
		for {
			for len(ready) == 0 && finished < len(groups) {
				cond.Wait()
			}
			if finished == len(groups) {
				return
			}
			g := ready[0]
			ready = ready[1:]
			if len(g.failed) > 0 || g.suspended || r.ctx.Err() != nil {
				r.skip(g)
				complete(g)
				continue
			}
			mu.Unlock()
			r.runGroup(g)
			mu.Lock()
			complete(g)
			if r.cfg.FailFast && r.groupFailed(g) {
				r.cancel(fmt.Errorf("fail-fast: %w", r.states[g.members[0].idx].errOr()))
			}
		}
	}
	workers := min(r.cfg.Parallelism, len(groups))
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker()
		}()
	}
	if r.cfg.Pressure == nil {
		wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			return
		case n := <-r.cfg.Pressure:
			if freed, err := r.relieve(n); err != nil {
				r.log.Warn("spill under pressure", "err", err)
			} else {
				r.log.Info("spilled under pressure", "freed_bytes", freed)
			}
		}
	}
}

// buildGroups joins producers and consumers by piped edges. An edge is piped
// when the producer declares a table or bytes output, has exactly one consumer, that
// consumer streams its input, the output is not a result, and neither
// NoEvict nor NoPipe nor Durable is set.
func (r *run) buildGroups(resumed map[*planNode]bool) []*group {
	p := r.plan
	parent := make([]int, len(p.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	piped := map[*planNode]bool{}
	if !r.cfg.NoEvict && !r.cfg.NoPipe && !r.cfg.Durable {
		for _, n := range p.nodes {
			if (n.typ.Output == KindTable || n.typ.Output == KindBytes) && len(n.consumers) == 1 && !n.result && n.consumers[0].typ.StreamsInput {
				piped[n] = true
				parent[find(n.idx)] = find(n.consumers[0].idx)
			}
		}
	}
	byRoot := map[int]*group{}
	var groups []*group
	r.groupOf = make([]*group, len(p.nodes))
	for _, n := range p.order {
		if resumed[n] {
			r.states[n.idx].status = StatusResumed
			continue
		}
		root := find(n.idx)
		g := byRoot[root]
		if g == nil {
			g = &group{}
			byRoot[root] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, n)
		r.groupOf[n.idx] = g
		if piped[n] {
			if g.piped == nil {
				g.piped = map[*planNode]bool{}
			}
			g.piped[n] = true
			r.states[n.idx].piped = true
		} else {
			g.sink = n
		}
	}
	for _, g := range groups {
		for _, m := range g.members {
			for _, in := range m.inputs {
				dg := r.groupOf[in.idx]
				if dg == g || dg == nil || dg.lastWait == g {
					continue
				}
				dg.lastWait = g
				dg.waiters = append(dg.waiters, g)
				g.pending++
			}
		}
	}
	return groups
}

// refsFor is the number of references a newly committed output starts with.
func (r *run) refsFor(n *planNode) int {
	refs := 0
	for _, c := range n.consumers {
		if r.groupOf[c.idx] != nil { // resumed consumers never read it
			refs++
		}
	}
	if n.result {
		refs++
	}
	return refs
}

// skip marks every member of a group skipped (upstream failed) or cancelled,
// and releases the inputs they would have read.
func (r *run) skip(g *group) {
	status := StatusSkipped
	switch {
	case len(g.failed) > 0:
	case g.suspended && r.ctx.Err() == nil:
		status = StatusPending
	default:
		status = StatusCancelled
	}
	for _, m := range g.members {
		st := r.states[m.idx]
		r.mu.Lock()
		st.status = status
		st.upstream = append([]string(nil), g.failed...)
		r.mu.Unlock()
		r.emit(Event{Type: EventNodeSkipped, Node: m.spec.ID, Status: status})
	}
	r.releaseInputs(g)
}

// releaseInputs releases one reference per consuming edge from the group's
// members to outputs outside it.
func (r *run) releaseInputs(g *group) {
	for _, m := range g.members {
		for _, in := range m.inputs {
			if r.groupOf[in.idx] != g {
				r.release(in, m)
			}
		}
	}
}

func (r *run) release(producer, consumer *planNode) {
	r.mu.Lock()
	v := r.values[producer.idx]
	if v == nil {
		r.mu.Unlock()
		return
	}
	v.refs--
	refs := v.refs
	r.mu.Unlock()
	r.emit(Event{Type: EventReleased, Node: producer.spec.ID, By: consumer.spec.ID, Refs: refs})
	if refs <= 0 && !r.cfg.NoEvict {
		r.free(v)
	}
}

func (r *run) free(v *value) {
	v.mu.Lock()
	already := v.freed
	size := v.size
	v.mu.Unlock()
	if already {
		return
	}
	v.release()
	r.emit(Event{Type: EventFreed, Node: v.node, Bytes: size})
}

// runGroup runs a group's members (concurrently, joined by pipes) with the
// retry policy of the member that failed.
func (r *run) runGroup(g *group) {
	defer r.releaseInputs(g)
	for attempt := 1; ; attempt++ {
		failed, err := r.attemptGroup(g, attempt)
		if failed == nil {
			return
		}
		retry := r.retryOf(failed)
		if attempt >= retry.Attempts || errors.Is(err, ErrPermanent) || errors.Is(err, ErrSuspended) || r.ctx.Err() != nil {
			return
		}
		wait := time.Duration(retry.Backoff) << (attempt - 1)
		if retry.MaxBackoff > 0 && wait > time.Duration(retry.MaxBackoff) {
			wait = time.Duration(retry.MaxBackoff)
		}
		r.log.Info("retrying node", "node_id", failed.spec.ID, "attempt", attempt+1, "after", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (r *run) retryOf(n *planNode) Retry {
	if n.spec.Retry != nil {
		return *n.spec.Retry
	}
	if d := r.plan.Workflow.Defaults.Retry; d != nil {
		return *d
	}
	return Retry{Attempts: 1}
}

// attemptGroup runs every member once. It returns the member that failed
// first (the root cause) and its error, or nil.
func (r *run) attemptGroup(g *group, attempt int) (*planNode, error) {
	gctx, gcancel := r.ctx, context.CancelCauseFunc(func(error) {})
	if len(g.members) > 1 {
		gctx, gcancel = context.WithCancelCause(r.ctx)
		defer gcancel(nil)
	}
	outs := make([]*Output, len(g.members))
	var pipes map[*planNode]*pipe
	var outOf map[*planNode]*Output
	for i, m := range g.members {
		v := &value{r: r, node: m.spec.ID, kind: m.typ.Output, threshold: r.threshold(m)}
		outs[i] = &Output{v: v, typeK: m.typ.Output}
		if g.piped[m] {
			if pipes == nil {
				pipes, outOf = map[*planNode]*pipe{}, map[*planNode]*Output{}
			}
			pp := newPipe(r.acct, m.typ.Output)
			pipes[m] = pp
			outs[i].pipe = pp
			outOf[m] = outs[i]
		}
	}
	var (
		mu        sync.Mutex
		firstNode *planNode
		firstErr  error
	)
	runOne := func(m *planNode, out *Output) {
		in := &Inputs{list: make([]*Input, 0, len(m.inputs))}
		for _, src := range m.inputs {
			if pp := pipes[src]; pp != nil {
				in.list = append(in.list, &Input{v: outOf[src].v, pipe: pp})
			} else {
				r.mu.Lock()
				v := r.values[src.idx]
				r.mu.Unlock()
				in.list = append(in.list, &Input{v: v})
			}
		}
		err := r.runNode(gctx, m, in, out, attempt)
		for _, src := range m.inputs {
			if pp := pipes[src]; pp != nil {
				pp.stop() // the consumer is done: a producer still writing stops
			}
		}
		if err != nil {
			if out.pipe != nil {
				out.pipe.fail(err)
			}
			mu.Lock()
			if firstNode == nil {
				firstNode, firstErr = m, err
			}
			mu.Unlock()
			gcancel(fmt.Errorf("%w: node %q failed", ErrUpstreamFailed, m.spec.ID))
		}
	}
	if len(g.members) == 1 {
		runOne(g.members[0], outs[0])
	} else {
		var wg sync.WaitGroup
		for i, m := range g.members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runOne(m, outs[i])
			}()
		}
		wg.Wait()
	}
	for _, pp := range pipes {
		pp.drain(true)
	}
	if firstNode == nil {
		for i, m := range g.members {
			st := r.states[m.idx]
			r.mu.Lock()
			st.status = StatusSucceeded
			r.mu.Unlock()
			if g.piped[m] {
				r.mu.Lock()
				st.pipedBytes = outs[i].v.size
				r.mu.Unlock()
				continue
			}
			v := outs[i].v
			v.mu.Lock()
			v.complete = true
			v.doneAt = time.Now()
			v.refs = r.refsFor(m)
			refs := v.refs
			v.mu.Unlock()
			r.mu.Lock()
			r.values[m.idx] = v
			r.mu.Unlock()
			if r.cfg.Durable {
				if err := r.writeRecord(m, v); err != nil {
					r.log.Warn("write run record", "node_id", m.spec.ID, "err", err)
				}
			}
			if refs == 0 && !r.cfg.NoEvict {
				r.free(v)
			}
		}
		return nil, nil
	}
	// Classify: the root cause failed; members cancelled because of it are
	// skipped as upstream failed (or failed themselves on the last attempt).
	for i, m := range g.members {
		outs[i].abort(firstErr)
		st := r.states[m.idx]
		r.mu.Lock()
		if m == firstNode {
			st.status = StatusFailed
			st.err = classify(m, attempt, firstErr, r.ctx)
			if st.err.Kind == KindCancelled {
				st.status = StatusCancelled
			}
			if errors.Is(firstErr, ErrSuspended) {
				st.status, st.err = StatusSuspended, nil
			}
		} else {
			st.status = StatusSkipped
			st.upstream = []string{firstNode.spec.ID}
		}
		r.mu.Unlock()
	}
	return firstNode, firstErr
}

func (r *run) threshold(n *planNode) int64 {
	if r.cfg.Durable {
		return 1 // persist everything
	}
	if n.spec.SpillThreshold > 0 {
		return int64(n.spec.SpillThreshold)
	}
	if t := r.plan.Workflow.Defaults.SpillThreshold; t > 0 {
		return int64(t)
	}
	return r.cfg.SpillThreshold
}

func classify(n *planNode, attempt int, err error, runCtx context.Context) *NodeError {
	ne := &NodeError{Node: n.spec.ID, Type: n.spec.Type, Kind: KindError, Attempt: attempt, Err: err}
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		ne.Kind = KindPanic
	case errors.Is(err, ErrTimeout):
		ne.Kind = KindTimeout
	case runCtx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.Cause(runCtx))):
		ne.Kind = KindCancelled
	}
	return ne
}

type panicError struct {
	v     any
	stack string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", p.v, p.stack) }

// runNode runs one attempt of one node and completes its output.
func (r *run) runNode(ctx context.Context, m *planNode, in *Inputs, out *Output, attempt int) (err error) {
	st := r.states[m.idx]
	r.mu.Lock()
	st.status = StatusRunning
	st.attempts = attempt
	if st.started.IsZero() {
		st.started = time.Now()
	}
	r.mu.Unlock()
	r.emit(Event{Type: EventNodeStarted, Node: m.spec.ID})
	if r.debug {
		r.log.Debug("node started", "node_id", m.spec.ID, "node_type", m.spec.Type, "attempt", attempt)
	}
	heap0 := readHeap()
	nctx := ctx
	timeout := time.Duration(m.spec.Timeout)
	if timeout == 0 {
		timeout = time.Duration(r.plan.Workflow.Defaults.Timeout)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		nctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %s", ErrTimeout, timeout))
		defer cancel()
	}
	nctx = withNodeInfo(nctx, &NodeInfo{RunID: r.id, NodeID: m.spec.ID, Type: m.spec.Type, Attempt: attempt, state: st, r: r})
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = &panicError{v: v, stack: string(debug.Stack())}
			}
		}()
		err = m.node.Run(nctx, in, out)
	}()
	if errors.Is(err, ErrStopped) {
		err = nil
	}
	if err != nil && nctx.Err() != nil {
		if cause := context.Cause(nctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
	}
	if err == nil {
		err = out.finish(nctx)
	}
	r.mu.Lock()
	st.ended = time.Now()
	st.heapDelta = readHeap() - heap0
	r.mu.Unlock()
	if err != nil {
		r.log.Info("node failed", "node_id", m.spec.ID, "node_type", m.spec.Type, "attempt", attempt, "err", err)
	} else if r.debug {
		r.log.Debug("node finished", "node_id", m.spec.ID, "node_type", m.spec.Type, "attempt", attempt)
	}
	r.emit(Event{Type: EventNodeFinished, Node: m.spec.ID, Err: err})
	return err
}

// relieve spills the largest complete in-memory outputs until n bytes are
// freed (n <= 0: one output).
func (r *run) relieve(n int64) (int64, error) {
	if r.spiller == nil {
		return 0, errors.New("no spiller configured")
	}
	type cand struct {
		v    *value
		held int64
	}
	r.mu.Lock()
	var cs []cand
	for _, v := range r.values {
		if v != nil {
			v.mu.Lock()
			cs = append(cs, cand{v, v.held})
			v.mu.Unlock()
		}
	}
	r.mu.Unlock()
	sort.Slice(cs, func(i, j int) bool { return cs[i].held > cs[j].held })
	var freed int64
	for _, c := range cs {
		v := c.v
		got, err := v.spillNow(r.ctx)
		if err != nil {
			return freed, err
		}
		freed += got
		if got > 0 && (n <= 0 || freed >= n) {
			break
		}
	}
	return freed, nil
}

// NodeInfo describes the running node to node code; get it with
// NodeInfoFrom.
type NodeInfo struct {
	RunID   string
	NodeID  string
	Type    string
	Attempt int
	state   *nodeState
	r       *run
}

// Logger returns the run's logger with the node's attributes.
func (n *NodeInfo) Logger() *slog.Logger {
	return n.r.log.With("node_id", n.NodeID, "node_type", n.Type, "attempt", n.Attempt)
}

// SetMetric records a named figure in the node's report (for example the
// peak memory of a child process, or rows read).
func (n *NodeInfo) SetMetric(name string, v int64) {
	n.r.mu.Lock()
	defer n.r.mu.Unlock()
	if n.state.metrics == nil {
		n.state.metrics = map[string]int64{}
	}
	n.state.metrics[name] = v
}

// SetMode records a short free-text mode in the report (for example the
// memory-limit mode of a child process).
func (n *NodeInfo) SetMode(mode string) {
	n.r.mu.Lock()
	defer n.r.mu.Unlock()
	n.state.mode = mode
}

type nodeInfoKey struct{}

func withNodeInfo(ctx context.Context, n *NodeInfo) context.Context {
	return context.WithValue(ctx, nodeInfoKey{}, n)
}

// NodeInfoFrom returns the running node's info, or nil outside a node.
func NodeInfoFrom(ctx context.Context) *NodeInfo {
	n, _ := ctx.Value(nodeInfoKey{}).(*NodeInfo)
	return n
}

// Result holds a finished run's report and its result outputs. Close frees
// the outputs; it is safe to call more than once.
type Result struct {
	Report  *Report
	r       *run
	outputs []*Input
	closed  bool
}

// Outputs returns the result outputs of the nodes that succeeded, in node
// order.
func (res *Result) Outputs() []*Input { return res.outputs }

// Output returns the result output of node id.
func (res *Result) Output(id string) (*Input, bool) {
	for _, o := range res.outputs {
		if o.NodeID() == id {
			return o, true
		}
	}
	return nil, false
}

// Close frees the result outputs (and, for a --no-evict run, everything).
func (res *Result) Close() error {
	if res == nil || res.closed {
		return nil
	}
	res.closed = true
	r := res.r
	for _, v := range r.values {
		if v != nil {
			r.free(v)
		}
	}
	if r.cfg.Durable && res.Report != nil && res.Report.Status == "succeeded" {
		ctx := context.WithoutCancel(r.ctx)
		for _, n := range r.plan.nodes {
			if n.result {
				_ = r.spiller.Delete(ctx, r.outputKey(n.spec.ID))
			}
		}
	}
	return nil
}

// record is the durable note that a node completed and where its output is.
type record struct {
	Node    string   `json:"node"`
	Kind    Kind     `json:"kind"`
	Columns []string `json:"columns,omitempty"`
	Key     string   `json:"key,omitempty"`
	Size    int64    `json:"size"`
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "bytes":
		*k = KindBytes
	case "json":
		*k = KindJSON
	case "table":
		*k = KindTable
	default:
		*k = KindAny
	}
	return nil
}

func (r *run) writeRecord(n *planNode, v *value) error {
	rec := record{Node: n.spec.ID, Kind: v.kind, Columns: v.cols, Key: v.spillKey, Size: v.size}
	if v.spillKey == "" && v.size > 0 {
		return fmt.Errorf("output of %q is not in the store", n.spec.ID)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = r.spiller.Spill(r.ctx, r.recordKey(n.spec.ID), strings.NewReader(string(b)))
	return err
}

// loadResume reads the run's records and decides which nodes to skip: a
// completed node is skipped when no consumer that will run needs its output,
// or when its output is intact in the store.
func (r *run) loadResume() (map[*planNode]bool, error) {
	recs := map[*planNode]*record{}
	for _, n := range r.plan.nodes {
		rc, err := r.spiller.Open(r.ctx, r.recordKey(n.spec.ID))
		if err != nil {
			if errors.Is(err, ErrBlobNotFound) {
				continue
			}
			return nil, fmt.Errorf("resume run %s: read record of %q: %w", r.id, n.spec.ID, err)
		}
		var rec record
		err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&rec)
		rc.Close()
		if err != nil {
			r.log.Warn("corrupt run record; node will run again", "node_id", n.spec.ID, "err", err)
			continue
		}
		recs[n] = &rec
	}
	skip := map[*planNode]bool{}
	for i := len(r.plan.order) - 1; i >= 0; i-- {
		n := r.plan.order[i]
		rec := recs[n]
		if rec == nil {
			continue
		}
		needed := n.result
		for _, c := range n.consumers {
			if !skip[c] {
				needed = true
			}
		}
		if !needed {
			skip[n] = true
			continue
		}
		if err := r.verify(rec); err != nil {
			r.log.Warn("stored output unusable; node will run again", "node_id", n.spec.ID, "key", rec.Key, "err", err)
			continue
		}
		skip[n] = true
		v := &value{r: r, node: n.spec.ID, kind: rec.Kind, cols: rec.Columns, size: rec.Size, spillKey: rec.Key, complete: true, doneAt: time.Now()}
		refs := 0
		if n.result {
			refs++
		}
		for _, c := range n.consumers {
			if !skip[c] {
				refs++
			}
		}
		v.refs = refs
		r.values[n.idx] = v
	}
	for n := range skip {
		r.states[n.idx].status = StatusResumed
		r.emit(Event{Type: EventNodeResumed, Node: n.spec.ID})
	}
	return skip, nil
}

// verify reads a stored output through, so that a missing or corrupt blob is
// found before anything depends on it.
func (r *run) verify(rec *record) error {
	if rec.Key == "" {
		if rec.Size == 0 {
			return nil
		}
		return errors.New("record has no key")
	}
	rc, err := r.spiller.Open(r.ctx, rec.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return err
	}
	if n != rec.Size {
		return fmt.Errorf("size %d, record says %d", n, rec.Size)
	}
	return nil
}

// clearRecords deletes a succeeded durable run's records and the blobs of
// outputs that are not results (result blobs go when the Result is closed).
func (r *run) clearRecords() {
	ctx := context.WithoutCancel(r.ctx)
	for _, n := range r.plan.nodes {
		_ = r.spiller.Delete(ctx, r.recordKey(n.spec.ID))
		if !n.result {
			_ = r.spiller.Delete(ctx, r.outputKey(n.spec.ID))
		}
	}
}
