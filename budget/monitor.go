package budget

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// DefaultInterval is how often a Monitor samples by default.
const DefaultInterval = 250 * time.Millisecond

// MonitorConfig configures a Monitor. The zero value samples every 250 ms and
// exports nothing.
type MonitorConfig struct {
	// Interval between samples (default 250 ms).
	Interval time.Duration
	// Registerer, when set, gets gauges dagrun_memory_working_set_bytes,
	// dagrun_memory_usage_bytes, dagrun_memory_inactive_file_bytes and
	// dagrun_memory_limit_bytes.
	Registerer prometheus.Registerer
	// OnSample, when set, is called with every sample from the Run goroutine.
	OnSample func(Sample)
}

// Monitor samples a Meter periodically and keeps the latest sample. Latest and
// Refresh are safe for concurrent use; Run must be called by one owner.
type Monitor struct {
	meter  *Meter
	cfg    MonitorConfig
	latest atomic.Pointer[Sample]
	peak   atomic.Uint64

	ws, usage, inactive, limit prometheus.Gauge
}

// NewMonitor returns a Monitor over m. It takes one sample right away so that
// Latest is valid before Run starts.
func NewMonitor(m *Meter, cfg MonitorConfig) (*Monitor, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	mon := &Monitor{meter: m, cfg: cfg}
	if cfg.Registerer != nil {
		f := promauto.With(cfg.Registerer)
		mon.ws = f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_memory_working_set_bytes", Help: "Container memory usage minus inactive file cache."})
		mon.usage = f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_memory_usage_bytes", Help: "Container memory usage as reported by the cgroup."})
		mon.inactive = f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_memory_inactive_file_bytes", Help: "Inactive file cache of the container."})
		mon.limit = f.NewGauge(prometheus.GaugeOpts{Name: "dagrun_memory_limit_bytes", Help: "Memory limit the worker budgets against."})
	}
	if _, err := mon.Refresh(); err != nil {
		return nil, err
	}
	return mon, nil
}

// Refresh takes a sample now, stores it as the latest and returns it.
func (mon *Monitor) Refresh() (Sample, error) {
	s, err := mon.meter.Read()
	if err != nil {
		return Sample{}, err
	}
	mon.latest.Store(&s)
	for {
		p := mon.peak.Load()
		if s.WorkingSet <= p || mon.peak.CompareAndSwap(p, s.WorkingSet) {
			break
		}
	}
	if mon.ws != nil {
		mon.ws.Set(float64(s.WorkingSet))
		mon.usage.Set(float64(s.Usage))
		mon.inactive.Set(float64(s.InactiveFile))
		mon.limit.Set(float64(s.Limit))
	}
	if mon.cfg.OnSample != nil {
		mon.cfg.OnSample(s)
	}
	return s, nil
}

// Latest returns the most recent sample.
func (mon *Monitor) Latest() Sample { return *mon.latest.Load() }

// ResetPeak returns the highest working set seen since the last reset and
// starts a new window at the current value.
func (mon *Monitor) ResetPeak() uint64 {
	return mon.peak.Swap(mon.Latest().WorkingSet)
}

// Run samples every Interval until ctx is done, then returns nil. A failed
// read keeps the previous sample.
func (mon *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(mon.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = mon.Refresh()
		}
	}
}
