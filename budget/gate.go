package budget

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Default gate thresholds, as fractions of the memory limit.
const (
	DefaultPauseAt  = 0.80
	DefaultResumeAt = 0.70
)

// Errors returned by Gate.TryReserve. Callers branch on them: ErrTooLarge
// means the work can never run under this budget (dead-letter it or send it
// to a larger pool); ErrPaused and ErrNoRoom mean wait and try again.
var (
	ErrTooLarge = errors.New("budget: expected peak exceeds the whole budget")
	ErrPaused   = errors.New("budget: admission paused above the pause threshold")
	ErrNoRoom   = errors.New("budget: expected peak does not fit under the pause threshold now")
)

// GateConfig configures a Gate. The zero value pauses at 0.80 of the limit and
// resumes below 0.70.
type GateConfig struct {
	// PauseAt is the working-set fraction of the limit at or above which the
	// gate admits nothing (default 0.80).
	PauseAt float64
	// ResumeAt is the fraction below which a paused gate admits again
	// (default 0.70). It must not exceed PauseAt.
	ResumeAt float64
}

// Validate checks the thresholds after defaults are applied.
func (c GateConfig) Validate() error {
	c = c.withDefaults()
	if c.PauseAt <= 0 || c.PauseAt > 1 {
		return fmt.Errorf("budget: GateConfig.PauseAt %v: want 0 < PauseAt <= 1", c.PauseAt)
	}
	if c.ResumeAt <= 0 || c.ResumeAt > c.PauseAt {
		return fmt.Errorf("budget: GateConfig.ResumeAt %v: want 0 < ResumeAt <= PauseAt (%v)", c.ResumeAt, c.PauseAt)
	}
	return nil
}

func (c GateConfig) withDefaults() GateConfig {
	if c.PauseAt == 0 {
		c.PauseAt = DefaultPauseAt
	}
	if c.ResumeAt == 0 {
		c.ResumeAt = DefaultResumeAt
	}
	return c
}

// Gate admits work byte-weighted against a memory limit. Work is admitted
// only while the gate is not paused (hysteresis between ResumeAt and PauseAt
// on the observed working set), the working set plus the work's expected peak
// stays under the pause threshold, and the sum of outstanding reservations
// plus the expected peak stays under it too (a semaphore.Weighted of
// capacity PauseAt*limit), so work that has not ramped up yet is counted.
// A Gate is safe for concurrent use.
type Gate struct {
	cfg      GateConfig
	capacity int64
	sem      *semaphore.Weighted

	mu       sync.Mutex
	paused   bool
	ws       uint64
	limit    uint64
	reserved map[string]int64
	total    int64
}

// NewGate returns a Gate for a memory limit in bytes.
func NewGate(limit uint64, cfg GateConfig) (*Gate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if limit == 0 {
		return nil, errors.New("budget: NewGate: limit is 0")
	}
	cfg = cfg.withDefaults()
	capacity := int64(float64(limit) * cfg.PauseAt)
	return &Gate{cfg: cfg, capacity: capacity, sem: semaphore.NewWeighted(capacity), limit: limit, reserved: map[string]int64{}}, nil
}

// Capacity is the pause threshold in bytes: the largest expected peak the
// gate can ever admit.
func (g *Gate) Capacity() int64 { return g.capacity }

// Observe feeds a sample to the gate and reports whether it is now paused.
func (g *Gate) Observe(s Sample) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ws = s.WorkingSet
	f := float64(s.WorkingSet) / float64(g.limit)
	switch {
	case !g.paused && f >= g.cfg.PauseAt:
		g.paused = true
	case g.paused && f < g.cfg.ResumeAt:
		g.paused = false
	}
	return g.paused
}

// Paused reports whether the gate is paused.
func (g *Gate) Paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// Reservation is admitted work. Release it once when the work ends; further
// calls do nothing.
type Reservation struct {
	g     *Gate
	key   string
	bytes int64
	once  sync.Once
}

// Bytes is the reserved amount.
func (r *Reservation) Bytes() int64 { return r.bytes }

// Release returns the bytes to the gate.
func (r *Reservation) Release() {
	r.once.Do(func() {
		r.g.sem.Release(r.bytes)
		r.g.mu.Lock()
		defer r.g.mu.Unlock()
		r.g.total -= r.bytes
		if r.g.reserved[r.key] -= r.bytes; r.g.reserved[r.key] <= 0 {
			delete(r.g.reserved, r.key)
		}
	})
}

// TryReserve admits bytes of expected peak under key (for example a workflow
// or node name) without waiting. It returns ErrTooLarge when bytes exceeds
// Capacity, ErrPaused while paused and ErrNoRoom when the bytes do not fit now.
func (g *Gate) TryReserve(key string, bytes int64) (*Reservation, error) {
	if bytes < 0 {
		return nil, fmt.Errorf("budget: reserve %q: negative bytes %d", key, bytes)
	}
	if bytes > g.capacity {
		return nil, fmt.Errorf("%w: %q expects %d bytes, capacity %d (%.0f%% of limit %d)", ErrTooLarge, key, bytes, g.capacity, g.cfg.PauseAt*100, g.limit)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		return nil, ErrPaused
	}
	if int64(g.ws)+bytes > g.capacity {
		return nil, fmt.Errorf("%w: working set %d + %d > %d", ErrNoRoom, g.ws, bytes, g.capacity)
	}
	if !g.sem.TryAcquire(bytes) {
		return nil, fmt.Errorf("%w: reserved %d + %d > %d", ErrNoRoom, g.total, bytes, g.capacity)
	}
	g.total += bytes
	g.reserved[key] += bytes
	return &Reservation{g: g, key: key, bytes: bytes}, nil
}

// Reserved returns the outstanding reservations by key and their total.
func (g *Gate) Reserved() (map[string]int64, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int64, len(g.reserved))
	for k, v := range g.reserved {
		out[k] = v
	}
	return out, g.total
}
