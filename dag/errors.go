package dag

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUpstreamFailed is wrapped by the error of a node skipped because a node
// it depends on failed.
var ErrUpstreamFailed = errors.New("upstream failed")

// ErrTimeout is the cause of a node attempt's context when its timeout fires.
var ErrTimeout = errors.New("node timed out")

// ErrSuspended is returned (wrapped) by a node that waits for something
// outside the run, such as a human approval. The node is reported as
// suspended, its dependents stay pending, and the run ends with a *RunError
// that matches ErrSuspended. With a durable run, running the same RunID with
// Resume later continues from the completed nodes.
var ErrSuspended = errors.New("run suspended")

// ErrPermanent marks an error that retrying cannot fix; wrap it with
// Permanent.
var ErrPermanent = errors.New("permanent error")

// Permanent wraps err so the executor does not retry it.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// ErrorKind classifies a node failure.
type ErrorKind string

// Node failure kinds.
const (
	KindError     ErrorKind = "error"
	KindTimeout   ErrorKind = "timeout"
	KindPanic     ErrorKind = "panic"
	KindCancelled ErrorKind = "cancelled"
	KindUpstream  ErrorKind = "upstream_failed"
)

// NodeError is the failure of one node: its id, type, kind, the attempt that
// failed last and the cause.
type NodeError struct {
	Node    string
	Type    string
	Kind    ErrorKind
	Attempt int
	Err     error
}

// Error implements error.
func (e *NodeError) Error() string {
	return fmt.Sprintf("node %q (%s) %s on attempt %d: %v", e.Node, e.Type, e.Kind, e.Attempt, e.Err)
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// RunError reports a run that did not succeed: the root-cause failures, apart
// from the nodes skipped because of them.
type RunError struct {
	Failed    []*NodeError
	Skipped   []string
	Cancelled []string
	// Suspended lists nodes that suspended the run; Pending the nodes that
	// wait behind them.
	Suspended []string
	Pending   []string
	Cause     error // set when the whole run was cancelled
}

// Error lists the root causes, then the skipped and cancelled nodes.
func (e *RunError) Error() string {
	var b strings.Builder
	if e.Cause != nil {
		fmt.Fprintf(&b, "run cancelled: %v", e.Cause)
	} else if len(e.Failed) == 0 && len(e.Suspended) > 0 {
		b.WriteString("run suspended")
	} else {
		fmt.Fprintf(&b, "%d node(s) failed", len(e.Failed))
	}
	for _, f := range e.Failed {
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, "\n  skipped (upstream failed): %s", strings.Join(e.Skipped, ", "))
	}
	if len(e.Cancelled) > 0 {
		fmt.Fprintf(&b, "\n  cancelled: %s", strings.Join(e.Cancelled, ", "))
	}
	if len(e.Suspended) > 0 {
		fmt.Fprintf(&b, "\n  suspended at: %s (pending: %s)", strings.Join(e.Suspended, ", "), strings.Join(e.Pending, ", "))
	}
	return b.String()
}

// Unwrap returns the node errors and the cancel cause.
func (e *RunError) Unwrap() []error {
	var out []error
	for _, f := range e.Failed {
		out = append(out, f)
	}
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	if len(e.Suspended) > 0 {
		out = append(out, ErrSuspended)
	}
	return out
}
