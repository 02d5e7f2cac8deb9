// Package dagrun embeds the dagrun workflow runtime: load a workflow (a DAG
// in JSON), run it with reference-counted outputs that are freed as soon as
// their last consumer has read them, streaming parsers, spilling of large
// outputs to a local directory or Redis, and child processes inside their
// own memory budget.
//
// The pieces live in their own packages: dag (the executor, which knows no
// file formats and no Redis), nodes (the built-in node types), parsers,
// spill, subproc, budget and worker. An Engine ties them together:
//
//	eng, _ := dagrun.New(dagrun.Config{})
//	plan, _ := eng.LoadFile("workflow.json")
//	res, err := eng.Run(ctx, plan, dagrun.RunOptions{})
//	defer res.Close()
package dagrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/spill"
)

// Config configures an Engine. The zero value runs workflows with the
// built-in node types, eviction and streaming on, and no spill store.
type Config struct {
	// Store receives spilled outputs and durable run records. nil disables
	// spilling (and resume). The Engine does not close it.
	Store spill.Store
	// Nodes configures the built-in node types (ignored with Registry).
	Nodes nodes.Options
	// Registry replaces the built-in node types; add your own with
	// dag.Registry.Register (start from nodes.NewRegistry to keep them).
	Registry *dag.Registry
	// Exec is the executor configuration; its Spiller is set from Store.
	Exec dag.Config
	// Limits bound workflow documents.
	Limits dag.LoadLimits
}

// Engine loads and runs workflows. It is safe for concurrent use.
type Engine struct {
	cfg Config
	reg *dag.Registry

	live   atomic.Int64 // live output bytes of all running runs
	mu     sync.Mutex
	active map[chan int64]struct{} // pressure channels of running runs
}

// LiveOutputBytes returns the output bytes held in memory by every run of
// the engine right now (exact, not sampled).
func (e *Engine) LiveOutputBytes() int64 { return e.live.Load() }

// New returns an Engine.
func New(cfg Config) (*Engine, error) {
	reg := cfg.Registry
	if reg == nil {
		reg = nodes.NewRegistry(cfg.Nodes)
	}
	if cfg.Store != nil {
		cfg.Exec.Spiller = StoreSpiller(cfg.Store)
	}
	if err := cfg.Exec.Validate(); err != nil {
		return nil, fmt.Errorf("dagrun: %w", err)
	}
	return &Engine{cfg: cfg, reg: reg, active: map[chan int64]struct{}{}}, nil
}

// Relieve asks every running run to spill its largest in-memory outputs
// until about n bytes are freed in all (n <= 0: the largest output of each
// run). It does not wait. The worker calls it when the container's working
// set passes the memory gate's pause threshold. Without a Store it does
// nothing.
func (e *Engine) Relieve(n int64) {
	if e.cfg.Store == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.active {
		select {
		case ch <- n:
		default: // a request is already pending
		}
	}
}

// Registry returns the engine's node types.
func (e *Engine) Registry() *dag.Registry { return e.reg }

// LoadFile reads, decodes and validates a workflow file. Errors name the
// file; an invalid workflow is a *dag.InvalidError listing every problem.
func (e *Engine) LoadFile(path string) (*dag.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return e.Load(f, path)
}

// Load decodes and validates a workflow from r; source names it in errors.
func (e *Engine) Load(r io.Reader, source string) (*dag.Plan, error) {
	wf, err := dag.Load(r, e.cfg.Limits)
	if err == nil {
		var p *dag.Plan
		if p, err = dag.Validate(wf, e.reg); err == nil {
			return p, nil
		}
	}
	var ie *dag.InvalidError
	if errors.As(err, &ie) {
		ie.Source = source
	}
	return nil, err
}

// Parse is Load over bytes.
func (e *Engine) Parse(data []byte, source string) (*dag.Plan, error) {
	return e.Load(bytes.NewReader(data), source)
}

// RunOptions are per-run settings on top of Config.Exec.
type RunOptions struct {
	// RunID names the run (default: random).
	RunID string
	// Durable persists completed outputs and records so the run can resume.
	Durable bool
	// Resume continues a run of the same RunID from its completed nodes.
	Resume bool
	// OnEvent receives lifecycle events.
	OnEvent func(dag.Event)
	// Pressure asks the run to spill its largest outputs.
	Pressure <-chan int64
}

// Run executes a plan. The caller must Close the Result (also on error,
// when it is not nil).
func (e *Engine) Run(ctx context.Context, p *dag.Plan, o RunOptions) (*dag.Result, error) {
	cfg := e.cfg.Exec
	cfg.LiveBytes = &e.live
	if o.RunID != "" {
		cfg.RunID = o.RunID
	}
	cfg.Durable = cfg.Durable || o.Durable
	cfg.Resume = cfg.Resume || o.Resume
	if o.OnEvent != nil {
		cfg.OnEvent = o.OnEvent
	}
	if o.Pressure != nil {
		cfg.Pressure = o.Pressure
	} else if cfg.Spiller != nil && cfg.Pressure == nil {
		ch := make(chan int64, 1)
		e.mu.Lock()
		e.active[ch] = struct{}{}
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			delete(e.active, ch)
			e.mu.Unlock()
		}()
		cfg.Pressure = ch
	}
	ex, err := dag.New(cfg)
	if err != nil {
		return nil, err
	}
	return ex.Run(ctx, p)
}

// StoreSpiller adapts a spill.Store to the executor's dag.Spiller.
func StoreSpiller(s spill.Store) dag.Spiller { return spiller{s} }

type spiller struct{ s spill.Store }

func (s spiller) Spill(ctx context.Context, key string, r io.Reader) (dag.SpillStat, error) {
	info, err := s.s.Put(ctx, key, r)
	if err != nil {
		return dag.SpillStat{}, err
	}
	return dag.SpillStat{Bytes: info.RawBytes, Compressed: info.CompressedBytes, Duration: info.Duration}, nil
}

func (s spiller) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.s.Get(ctx, key)
	if errors.Is(err, spill.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", dag.ErrBlobNotFound, err)
	}
	return rc, err
}

func (s spiller) Delete(ctx context.Context, key string) error { return s.s.Delete(ctx, key) }

// BaseDir returns the directory of a workflow file, against which its
// relative paths resolve.
func BaseDir(workflowPath string) string {
	abs, err := filepath.Abs(workflowPath)
	if err != nil {
		return filepath.Dir(workflowPath)
	}
	return filepath.Dir(abs)
}
