package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/budget"
)

// Job is one claimed attempt of a run, handed to the Executor.
type Job struct {
	RunID    string
	Workflow string
	// Payload is the raw workflow JSON given to Enqueue.
	Payload []byte
	// MemoryHint is the hint given to Enqueue (0 if none).
	MemoryHint int64
	// ExpectedPeak is what the gate reserved for this attempt.
	ExpectedPeak int64
	// Attempt counts from 1; a drained attempt is refunded and not counted.
	// An Executor that resumes from spilled outputs keys them by RunID.
	Attempt int
	// Crashes is how many earlier attempts were lost with their worker.
	Crashes int
}

// Result is what an Executor reports for a finished attempt.
type Result struct {
	// PeakBytes is the attempt's peak memory; 0 lets the worker use the rise
	// of the container working set during the attempt (approximate when
	// several jobs run at once).
	PeakBytes int64
	// Nodes maps node id to its status, stored on the run record.
	Nodes map[string]string
	// Suspended lists the nodes that suspended the run, when the error wraps
	// ErrSuspended; they are stored on the run record.
	Suspended []string
	// NodeStats are per-node figures, stored on the run record and exported
	// as histograms labelled by workflow and node type.
	NodeStats []NodeStat
}

// NodeStat is what one node of an attempt used.
type NodeStat struct {
	Node   string `json:"node"`
	Type   string `json:"type"`
	Status string `json:"status"`
	// PeakBytes is the node's own peak (heap attributed to it, or its child
	// process); SpilledBytes what its outputs spilled to the store;
	// ChildPeakBytes the peak of its child process, if any.
	PeakBytes      int64 `json:"peak_bytes"`
	SpilledBytes   int64 `json:"spilled_bytes"`
	ChildPeakBytes int64 `json:"child_peak_bytes"`
}

// Executor runs one job attempt. It must return soon after ctx is done;
// context.Cause(ctx) tells a drain (ErrDraining), a lost lease (ErrLeaseLost)
// and a timeout apart. Returning an error wrapping ErrPermanent fails the run
// without retry.
type Executor interface {
	Execute(ctx context.Context, job *Job) (Result, error)
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, job *Job) (Result, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, job *Job) (Result, error) { return f(ctx, job) }

// ErrPermanent marks an executor error that must not be retried.
var ErrPermanent = errors.New("worker: permanent failure")

// ErrDraining is the cause of a job context cancelled because the worker is
// shutting down; the attempt is refunded and the job put back.
var ErrDraining = errors.New("worker: draining")

// Config configures a Worker. The zero value, plus Redis and Executor, is a
// worker with the defaults documented on each field.
type Config struct {
	// Redis is the client; the Worker does not close it.
	Redis redis.UniversalClient
	// Executor runs jobs.
	Executor Executor
	// Queue is the queue name (default "dagrun").
	Queue string
	// ID names this worker (default hostname-pid-random).
	ID string
	// Concurrency is the most jobs run at once (default 1).
	Concurrency int
	// LeaseTTL is how long a claimed job stays leased without a heartbeat
	// (default 30s). HeartbeatInterval extends leases (default LeaseTTL/3).
	LeaseTTL          time.Duration
	HeartbeatInterval time.Duration
	// ReapInterval is how often expired leases are reaped (default 5s).
	ReapInterval time.Duration
	// PollInterval is the wait when the queue is empty or the gate is shut
	// (default 200ms).
	PollInterval time.Duration
	// MaxAttempts bounds attempts per job unless the job says otherwise
	// (default 5). MaxCrashes dead-letters a job after that many attempts
	// were lost with their worker (default 3).
	MaxAttempts int
	MaxCrashes  int
	// JobTimeout, when set, bounds one attempt.
	JobTimeout time.Duration
	// DrainGrace is how long running jobs may finish after Run's context is
	// cancelled before they are cancelled and put back (default 30s).
	DrainGrace time.Duration

	// Memory budget. Budget configures the meter (zero: this process's own
	// memory cgroup); Gate the pause/resume thresholds (0.80/0.70);
	// SampleInterval the sampling period (250ms).
	Budget         budget.Config
	Gate           budget.GateConfig
	SampleInterval time.Duration
	// CountOnly admits by concurrency slot only, ignoring memory. For
	// comparison benchmarks; do not use in production.
	CountOnly bool
	// DefaultPeak is the expected peak of a job with no hint and no history
	// (default 64 MiB). PeakQuantile is the quantile of a workflow's observed
	// peaks used as its expected peak (default 0.95); HistorySize is how many
	// peaks are kept per workflow (default 50).
	DefaultPeak  int64
	PeakQuantile float64
	HistorySize  int
	// GoMemLimit sets debug.SetMemoryLimit when Run starts: 0 means 90% of
	// the memory limit unless the GOMEMLIMIT variable is set, -1 leaves it.
	GoMemLimit int64

	// OnFinish, when set, is called after each attempt's outcome (succeeded,
	// failed, retry, dead or release) was written, with nil, or was refused,
	// with an error wrapping ErrLeaseLost or a Redis error.
	OnFinish func(job *Job, outcome string, err error)

	// Logger (default: discard). Registerer, when set, gets the worker's and
	// the memory monitor's metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// MetricsAddr, when set (":9090"), makes Run serve Handler there:
	// /metrics (from Gatherer), /livez and /readyz. The listener is opened
	// before Run claims anything and closed when Run returns.
	MetricsAddr string
	// Gatherer serves /metrics; default: Registerer if it is also a Gatherer
	// (a *prometheus.Registry). With MetricsAddr set and no Registerer, New
	// makes a private registry with the Go and process collectors.
	Gatherer prometheus.Gatherer
	// LiveOutputBytes, when set, is read at each scrape for
	// dagrun_executor_output_bytes_live (the executor's outputs held in
	// memory).
	LiveOutputBytes func() int64
	// OnPressure, when set, is called on every memory sample taken while the
	// gate is paused, with how far the working set is above the resume
	// threshold; the engine answers by spilling its largest live outputs
	// (dagrun.Engine.Relieve). It must not block.
	OnPressure func(overBytes int64)
	// MaxWorkflowLabels bounds the distinct workflow label values of the
	// per-workflow metrics (default 100); later workflows are exported as
	// "other".
	MaxWorkflowLabels int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	def(&c.LeaseTTL, 30*time.Second)
	def(&c.HeartbeatInterval, c.LeaseTTL/3)
	def(&c.ReapInterval, 5*time.Second)
	def(&c.PollInterval, 200*time.Millisecond)
	def(&c.DrainGrace, 30*time.Second)
	def(&c.SampleInterval, budget.DefaultInterval)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.MaxCrashes == 0 {
		c.MaxCrashes = 3
	}
	if c.DefaultPeak == 0 {
		c.DefaultPeak = 64 << 20
	}
	if c.PeakQuantile == 0 {
		c.PeakQuantile = 0.95
	}
	if c.HistorySize == 0 {
		c.HistorySize = 50
	}
	if c.MaxWorkflowLabels == 0 {
		c.MaxWorkflowLabels = 100
	}
	if c.Gatherer == nil {
		if g, ok := c.Registerer.(prometheus.Gatherer); ok {
			c.Gatherer = g
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Redis == nil:
		return errors.New("worker: Config.Redis is nil")
	case c.Executor == nil:
		return errors.New("worker: Config.Executor is nil")
	case c.Concurrency < 0:
		return fmt.Errorf("worker: Config.Concurrency %d < 0", c.Concurrency)
	case c.LeaseTTL < 100*time.Millisecond:
		return fmt.Errorf("worker: Config.LeaseTTL %v < 100ms", c.LeaseTTL)
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.LeaseTTL:
		return fmt.Errorf("worker: Config.HeartbeatInterval %v must be > 0 and < LeaseTTL %v", c.HeartbeatInterval, c.LeaseTTL)
	case c.ReapInterval < 0 || c.PollInterval < 0 || c.DrainGrace < 0 || c.JobTimeout < 0:
		return errors.New("worker: negative interval in Config")
	case c.MaxAttempts < 0 || c.MaxCrashes < 0:
		return fmt.Errorf("worker: Config.MaxAttempts %d / MaxCrashes %d < 0", c.MaxAttempts, c.MaxCrashes)
	case c.PeakQuantile < 0 || c.PeakQuantile > 1:
		return fmt.Errorf("worker: Config.PeakQuantile %v outside [0,1]", c.PeakQuantile)
	case c.DefaultPeak < 0 || c.HistorySize < 0:
		return errors.New("worker: Config.DefaultPeak / HistorySize < 0")
	}
	return c.Gate.Validate()
}
