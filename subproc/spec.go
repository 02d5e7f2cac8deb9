package subproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Mode is how a child's memory budget is enforced and measured.
type Mode int

const (
	// ModeAuto (the zero value) uses a cgroup when one is writable and falls
	// back to the watchdog otherwise.
	ModeAuto Mode = iota
	// ModeCgroup requires a cgroup (v2 or v1); Run fails with
	// ErrCgroupUnavailable otherwise.
	ModeCgroup
	// ModeCgroupV2 is reported in Result.Mode when a v2 cgroup was used.
	ModeCgroupV2
	// ModeCgroupV1 is reported in Result.Mode when a v1 cgroup was used.
	ModeCgroupV1
	// ModeWatchdog samples the child tree's memory and kills it over budget.
	ModeWatchdog
	// ModeNone enforces nothing; the peak is the direct child's max RSS.
	ModeNone
)

// String returns the mode's log name: auto, cgroup, cgroup-v2, cgroup-v1,
// watchdog, none.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCgroup:
		return "cgroup"
	case ModeCgroupV2:
		return "cgroup-v2"
	case ModeCgroupV1:
		return "cgroup-v1"
	case ModeWatchdog:
		return "watchdog"
	case ModeNone:
		return "none"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Precision texts reported in Result.Precision and logs.
const (
	PrecisionCgroupV2 = "exact: kernel-enforced limit, peak from memory.peak (memory.current sampled when absent)"
	PrecisionCgroupV1 = "exact: kernel-enforced limit, peak from memory.max_usage_in_bytes"
	PrecisionNone     = "low: no limit enforced, peak is the direct child's max RSS from wait4"
)

func watchdogPrecision(iv time.Duration) string {
	return fmt.Sprintf("sampled: anonymous+shmem PSS of the process tree every %s; spikes shorter than that are missed and the tree may overrun the budget by what it allocates in one interval", iv)
}

// Spec describes one child run. Only Path is required.
type Spec struct {
	// Path is the program to run, or the script when Node is set.
	Path string
	// Args are the arguments after Path.
	Args []string
	// Dir is the working directory (default: the worker's).
	Dir string
	// Env is the child's whole environment as KEY=VALUE; nothing of the
	// worker's environment is passed except names in EnvAllow (and PWD,
	// which os/exec sets when Dir is set).
	Env []string
	// EnvAllow names variables copied from the worker's environment when set.
	EnvAllow []string
	// Stdin is streamed to the child (nil: /dev/null). An *os.File is passed
	// directly.
	Stdin io.Reader
	// Stdout receives the child's stdout as it is written (nil: discarded).
	Stdout io.Writer
	// Timeout bounds the run (0: none besides ctx).
	Timeout time.Duration
	// MemoryLimit is the child's memory budget in bytes (0: none).
	MemoryLimit int64
	// Node, when set, runs Path as a node.js script with heap flags derived
	// from MemoryLimit.
	Node *NodeOptions
	// Mode selects the enforcement (default ModeAuto).
	Mode Mode
	// CgroupParent overrides the cgroup directory children are created in
	// (default: the worker's own memory cgroup).
	CgroupParent string
	// SampleInterval is the memory sampling period of the watchdog
	// (default 50ms) and of the cross-check sampler in cgroup mode (default
	// 250ms there).
	SampleInterval time.Duration
	// StderrTailBytes bounds the stderr kept for errors (default 8 KiB).
	StderrTailBytes int
	// Reserve, when set, is called with MemoryLimit before the child starts
	// so the run's memory budget can hold the child's share; release is
	// called when the child and its cgroup are gone.
	Reserve func(ctx context.Context, bytes int64) (release func(), err error)
	// Logger receives start/finish/fallback records (default: discarded).
	Logger *slog.Logger
}

// Validate reports a Spec that cannot run.
func (s *Spec) Validate() error {
	var errs []error
	if s.Path == "" {
		errs = append(errs, errors.New("subproc: Spec.Path is empty"))
	}
	if s.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("subproc: Spec.MemoryLimit %d is negative", s.MemoryLimit))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("subproc: Spec.Timeout %s is negative", s.Timeout))
	}
	if s.Mode < ModeAuto || s.Mode > ModeNone || s.Mode == ModeCgroupV1 || s.Mode == ModeCgroupV2 {
		errs = append(errs, fmt.Errorf("subproc: Spec.Mode %s is not one of auto, cgroup, watchdog, none", s.Mode))
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("subproc: Spec.Env entry %q is not KEY=VALUE", kv))
		}
	}
	if s.Node != nil && s.Node.MaxOldSpaceMiB < 0 || s.Node != nil && s.Node.MaxSemiSpaceMiB < 0 {
		errs = append(errs, errors.New("subproc: Spec.Node heap sizes are negative"))
	}
	return errors.Join(errs...)
}

// Result is a child run's accounting, returned also when Run fails.
type Result struct {
	// PeakBytes is the child's peak memory: the cgroup's own peak in cgroup
	// modes, the highest sampled tree PSS in watchdog mode, the direct
	// child's max RSS in none mode.
	PeakBytes int64
	// SampledPeakBytes is the highest tree PSS the sampler saw (cgroup and
	// watchdog modes); a cross-check of PeakBytes.
	SampledPeakBytes int64
	// LimitBytes is the memory budget (0: none).
	LimitBytes int64
	// Mode is the enforcement actually used.
	Mode Mode
	// Precision says how exact PeakBytes and the enforcement are.
	Precision string
	// FallbackReason says why ModeAuto did not use a cgroup.
	FallbackReason string
	// Duration is the wall time from start to the end of the tree.
	Duration time.Duration
	// ExitCode is the exit status, or -1 when killed by a signal.
	ExitCode int
	// StderrTail is the end of the child's stderr.
	StderrTail string
	// Cgroup is the directory of the child cgroup used (already removed).
	Cgroup string
}

// NodeOptions makes Path a node.js script run with heap flags derived from
// Spec.MemoryLimit. The zero value is usable.
type NodeOptions struct {
	// Binary is the node executable (default: "node" looked up in PATH).
	Binary string
	// MaxOldSpaceMiB overrides --max-old-space-size (0: derived).
	MaxOldSpaceMiB int
	// MaxSemiSpaceMiB overrides --max-semi-space-size (0: derived).
	MaxSemiSpaceMiB int
	// Flags are extra node flags placed before the script.
	Flags []string
}

const mib = 1 << 20

// NodeArgs returns the V8 heap flags for a child with the given memory
// budget in bytes: the young generation gets budget/64 per semi-space
// (1 to 16 MiB; V8 reserves three semi-spaces), a quarter of the budget and
// at least 48 MiB stay outside the heap for Buffers, native code and the
// runtime itself (heap flags do not bound those), and the old space gets the
// rest (at least 16 MiB). A budget <= 0 returns nil (node's defaults).
func NodeArgs(budget int64) []string {
	return NodeOptions{}.args(budget)
}

func (o NodeOptions) args(budget int64) []string {
	if budget <= 0 && o.MaxOldSpaceMiB == 0 && o.MaxSemiSpaceMiB == 0 {
		return nil
	}
	semi := int64(o.MaxSemiSpaceMiB)
	if semi == 0 {
		semi = min(max(budget/64/mib, 1), 16)
	}
	old := int64(o.MaxOldSpaceMiB)
	if old == 0 {
		offHeap := max(budget/4, 48*mib)
		old = max((budget-offHeap)/mib-3*semi, 16)
	}
	return []string{fmt.Sprintf("--max-old-space-size=%d", old), fmt.Sprintf("--max-semi-space-size=%d", semi)}
}
