package worker

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Job outcome label values of dagrun_worker_jobs_total.
const (
	OutcomeSucceeded    = "succeeded"
	OutcomeFailed       = "failed"
	OutcomeRetried      = "retried"
	OutcomeTimedOut     = "timed_out"
	OutcomeSuspended    = "suspended"
	OutcomeReleased     = "released"
	OutcomeFenced       = "fenced"
	OutcomeKilled       = "killed"
	OutcomeDeadLettered = "dead_lettered"
)

// memBuckets are byte buckets from 16 MiB to 16 GiB.
var memBuckets = prometheus.ExponentialBuckets(16<<20, 2, 11)

// metrics are one worker's Prometheus metrics; a nil *metrics does nothing.
type metrics struct {
	paused, draining, active, peakWS prometheus.Gauge
	claims                           prometheus.Counter
	jobs, recovered                  *prometheus.CounterVec
	jobPeak                          *prometheus.HistogramVec
	nodePeak, childPeak              *prometheus.HistogramVec
	spilled                          *prometheus.CounterVec

	workflows, types *labelBound
}

func newMetrics(cfg Config, q *Queue) *metrics {
	if cfg.Registerer == nil {
		return nil
	}
	f := promauto.With(cfg.Registerer)
	m := &metrics{
		paused:   f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_worker_gate_paused", Help: "1 while the memory gate is paused (working set at or above the pause threshold): the worker claims nothing."}),
		draining: f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_worker_draining", Help: "1 while the worker is shutting down."}),
		active:   f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_worker_jobs_active", Help: "Jobs this worker runs now."}),
		peakWS:   f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_worker_peak_working_set_bytes", Help: "Highest container working set this worker sampled since it started."}),
		claims:   f.NewCounter(prometheus.CounterOpts{Name: "dagrun_worker_claims_total", Help: "Jobs claimed (attempts started) by this worker."}),
		jobs: f.NewCounterVec(prometheus.CounterOpts{Name: "dagrun_worker_jobs_total",
			Help: "Job attempts by outcome: succeeded, failed, retried, timed_out, suspended, released, fenced; killed and dead_lettered are counted by the worker whose reaper recovered a crashed job or which dead-lettered it."}, []string{"outcome"}),
		recovered: f.NewCounterVec(prometheus.CounterOpts{Name: "dagrun_worker_recovered_jobs_total",
			Help: "Jobs recovered by this worker's reaper: lease_expired (worker died mid-job) or orphaned (running without a lease)."}, []string{"reason"}),
		jobPeak: f.NewHistogramVec(prometheus.HistogramOpts{Name: "dagrun_job_peak_bytes",
			Help: "Peak memory of finished job attempts, measured by the worker (executor report, else working-set rise sampled every SampleInterval).", Buckets: memBuckets}, []string{"workflow"}),
		nodePeak: f.NewHistogramVec(prometheus.HistogramOpts{Name: "dagrun_node_peak_bytes",
			Help: "Peak memory of nodes, from the executor's node stats.", Buckets: memBuckets}, []string{"workflow", "node_type"}),
		childPeak: f.NewHistogramVec(prometheus.HistogramOpts{Name: "dagrun_node_child_peak_bytes",
			Help: "Peak memory of nodes' child processes.", Buckets: memBuckets}, []string{"workflow", "node_type"}),
		spilled: f.NewCounterVec(prometheus.CounterOpts{Name: "dagrun_node_spilled_bytes_total",
			Help: "Bytes nodes' outputs spilled to the spill store."}, []string{"workflow", "node_type"}),
		workflows: &labelBound{max: cfg.MaxWorkflowLabels, seen: map[string]bool{}},
		types:     &labelBound{max: cfg.MaxWorkflowLabels, seen: map[string]bool{}},
	}
	for _, o := range []string{OutcomeSucceeded, OutcomeFailed, OutcomeRetried, OutcomeTimedOut, OutcomeSuspended, OutcomeReleased, OutcomeFenced, OutcomeKilled, OutcomeDeadLettered} {
		m.jobs.WithLabelValues(o)
	}
	m.recovered.WithLabelValues("lease_expired")
	m.recovered.WithLabelValues("orphaned")
	if cfg.LiveOutputBytes != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: "dagrun_executor_output_bytes_live", Help: "Bytes of node outputs the executor holds in memory now."},
			func() float64 { return float64(cfg.LiveOutputBytes()) })
	}
	cfg.Registerer.MustRegister(&queueCollector{q: q})
	return m
}

func (m *metrics) job(outcome string, n int) {
	if m != nil && n > 0 {
		m.jobs.WithLabelValues(outcome).Add(float64(n))
	}
}

func (m *metrics) recover(reason string, n int) {
	if m != nil && n > 0 {
		m.recovered.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *metrics) finished(workflow string, res Result) {
	if m == nil {
		return
	}
	wf := m.workflows.label(workflow)
	if res.PeakBytes > 0 {
		m.jobPeak.WithLabelValues(wf).Observe(float64(res.PeakBytes))
	}
	for _, n := range res.NodeStats {
		t := m.types.label(n.Type)
		if n.PeakBytes > 0 {
			m.nodePeak.WithLabelValues(wf, t).Observe(float64(n.PeakBytes))
		}
		if n.ChildPeakBytes > 0 {
			m.childPeak.WithLabelValues(wf, t).Observe(float64(n.ChildPeakBytes))
		}
		if n.SpilledBytes > 0 {
			m.spilled.WithLabelValues(wf, t).Add(float64(n.SpilledBytes))
		}
	}
}

func setGauge(g prometheus.Gauge, v float64) {
	if g != nil {
		g.Set(v)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// labelBound keeps a label's distinct values bounded: past max, new values
// become "other".
type labelBound struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func (l *labelBound) label(v string) string {
	if v == "" {
		return "unknown"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[v] {
		return v
	}
	if len(l.seen) >= l.max {
		return "other"
	}
	l.seen[v] = true
	return v
}

// queueCollector reads the queue's depths from Redis once per scrape.
type queueCollector struct{ q *Queue }

var (
	descPending   = prometheus.NewDesc("dagrun_queue_pending", "Jobs waiting in the pending list (queue-wide: take max() across workers).", []string{"queue"}, nil)
	descInflight  = prometheus.NewDesc("dagrun_queue_inflight", "Jobs holding a lease (running somewhere).", []string{"queue"}, nil)
	descDead      = prometheus.NewDesc("dagrun_queue_dead_letters", "Jobs in the dead-letter set.", []string{"queue"}, nil)
	descSuspended = prometheus.NewDesc("dagrun_queue_suspended", "Runs suspended waiting for an approval.", []string{"queue"}, nil)
	descRedisUp   = prometheus.NewDesc("dagrun_redis_up", "1 if the scrape could read the queue from Redis.", []string{"queue"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descInflight
	ch <- descDead
	ch <- descSuspended
	ch <- descRedisUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	q := c.q
	pipe := q.rdb.Pipeline()
	p := pipe.LLen(ctx, q.prefix+"pending")
	l := pipe.ZCard(ctx, q.prefix+"leases")
	d := pipe.ZCard(ctx, q.prefix+"dead")
	s := pipe.ZCard(ctx, q.prefix+"suspended")
	if _, err := pipe.Exec(ctx); err != nil {
		ch <- prometheus.MustNewConstMetric(descRedisUp, prometheus.GaugeValue, 0, q.name)
		return
	}
	ch <- prometheus.MustNewConstMetric(descRedisUp, prometheus.GaugeValue, 1, q.name)
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p.Val()), q.name)
	ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(l.Val()), q.name)
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(d.Val()), q.name)
	ch <- prometheus.MustNewConstMetric(descSuspended, prometheus.GaugeValue, float64(s.Val()), q.name)
}
