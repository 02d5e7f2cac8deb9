package subproc

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Kind classifies how a child run failed.
type Kind int

const (
	// KindOOMKilled: the kernel OOM killer killed the child inside its own
	// cgroup because the cgroup reached its memory limit.
	KindOOMKilled Kind = iota + 1
	// KindWatchdogKilled: the fallback watchdog saw the child tree over its
	// budget and killed it.
	KindWatchdogKilled
	// KindHeapExhausted: V8 aborted with "JavaScript heap out of memory"
	// (the heap flag, not the cgroup, was the limit).
	KindHeapExhausted
	// KindTimeout: Spec.Timeout passed; the tree was killed.
	KindTimeout
	// KindCanceled: the caller's context was canceled; the tree was killed.
	KindCanceled
	// KindExit: the child exited with a non-zero status.
	KindExit
	// KindSignaled: the child was killed by a signal not sent by subproc.
	KindSignaled
	// KindStart: the child could not be started or placed in its cgroup.
	KindStart
	// KindIO: reading Stdin or writing Stdout failed; the tree was killed.
	KindIO
)

var kindNames = map[Kind]string{
	KindOOMKilled:      "killed by the kernel OOM killer in its own cgroup (memory limit reached)",
	KindWatchdogKilled: "killed by the memory watchdog (over budget)",
	KindHeapExhausted:  "V8 JavaScript heap out of memory",
	KindTimeout:        "timed out",
	KindCanceled:       "canceled",
	KindExit:           "exited with non-zero status",
	KindSignaled:       "killed by signal",
	KindStart:          "failed to start",
	KindIO:             "stdin/stdout streaming failed",
}

// String describes the kind.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Sentinels for errors.Is on an *Error. ErrMemoryExceeded matches all three
// memory kinds.
var (
	ErrOOMKilled      = errors.New("subproc: child OOM-killed in its cgroup")
	ErrWatchdogKilled = errors.New("subproc: child killed by memory watchdog")
	ErrHeapExhausted  = errors.New("subproc: V8 heap exhausted")
	ErrMemoryExceeded = errors.New("subproc: child exceeded its memory budget")
	ErrTimeout        = errors.New("subproc: child timed out")
	ErrCanceled       = errors.New("subproc: child canceled")
	ErrExit           = errors.New("subproc: child exited with non-zero status")
	ErrSignaled       = errors.New("subproc: child killed by signal")
	ErrStart          = errors.New("subproc: child failed to start")
	ErrIO             = errors.New("subproc: child stdin/stdout failed")
	// ErrCgroupUnavailable: Mode was ModeCgroup but no writable memory
	// cgroup exists (returned wrapped in a KindStart *Error).
	ErrCgroupUnavailable = errors.New("subproc: no writable memory cgroup")
)

var kindSentinel = map[Kind]error{
	KindOOMKilled:      ErrOOMKilled,
	KindWatchdogKilled: ErrWatchdogKilled,
	KindHeapExhausted:  ErrHeapExhausted,
	KindTimeout:        ErrTimeout,
	KindCanceled:       ErrCanceled,
	KindExit:           ErrExit,
	KindSignaled:       ErrSignaled,
	KindStart:          ErrStart,
	KindIO:             ErrIO,
}

// Error is a failed child run. It carries what the run report needs.
type Error struct {
	// Kind is how the run failed.
	Kind Kind
	// Path is the program or script that ran.
	Path string
	// ExitCode is the exit status, or -1 when the child died by a signal.
	ExitCode int
	// Signal is the signal that ended the child, if any.
	Signal syscall.Signal
	// PeakBytes is the child's peak memory (see Result.PeakBytes).
	PeakBytes int64
	// LimitBytes is the memory budget (0: none).
	LimitBytes int64
	// Mode is how the budget was enforced.
	Mode Mode
	// StderrTail is the end of the child's stderr.
	StderrTail string
	// Err is the underlying cause, if any (context cause, I/O error, ...).
	Err error
}

// Error formats the failure with its memory figures and stderr tail.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "subproc: %s: %s", e.Path, e.Kind)
	switch {
	case e.Kind == KindExit:
		fmt.Fprintf(&b, " %d", e.ExitCode)
	case e.Signal != 0:
		fmt.Fprintf(&b, " (%s)", e.Signal)
	}
	fmt.Fprintf(&b, "; mode %s, peak %d bytes", e.Mode, e.PeakBytes)
	if e.LimitBytes > 0 {
		fmt.Fprintf(&b, " of limit %d bytes", e.LimitBytes)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if t := strings.TrimSpace(e.StderrTail); t != "" {
		if len(t) > 512 {
			t = "..." + t[len(t)-512:]
		}
		fmt.Fprintf(&b, "; stderr tail: %s", t)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's Kind, and ErrMemoryExceeded for the memory
// kinds.
func (e *Error) Is(target error) bool {
	if target == ErrMemoryExceeded {
		return e.Kind == KindOOMKilled || e.Kind == KindWatchdogKilled || e.Kind == KindHeapExhausted
	}
	return kindSentinel[e.Kind] == target
}
