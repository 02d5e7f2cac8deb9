package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dagrun/dagrun/dag"
)

// Decision is a human's answer to an approval node.
type Decision int

// Decisions.
const (
	Pending Decision = iota
	Approved
	Rejected
)

// String returns the decision's name.
func (d Decision) String() string {
	return [...]string{"pending", "approved", "rejected"}[d]
}

// Approver answers whether a suspended approval node of a run was approved.
// The worker implements it over Redis (`dagrun runs approve RUN NODE`).
type Approver interface {
	Decision(ctx context.Context, runID, nodeID string) (Decision, error)
}

// ErrRejected is returned by an approval node whose run was rejected.
var ErrRejected = errors.New("rejected by a human")

type approvalParams struct {
	Message     string `json:"message"`
	AutoApprove bool   `json:"auto_approve"`
}

func approvalType(opts *Options) dag.Type {
	return dag.Type{
		Name: "human.approval",
		Doc: "Waits for a human: suspends the run (its outputs stay in the spill store, its worker slot is freed) until " +
			"`dagrun runs approve RUN NODE`; then passes its first input through. auto_approve (or running without an approver) passes at once.",
		Output:    dag.KindAny,
		MinInputs: 1,
		MaxInputs: 1,
		Params: []dag.Param{
			{Name: "message", Type: "string", Doc: "what the approver is asked"},
			{Name: "auto_approve", Type: "boolean", Doc: "approve without waiting (benchmarks, tests)"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p approvalParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				if !p.AutoApprove && opts.Approver != nil {
					ni := dag.NodeInfoFrom(ctx)
					d, err := opts.Approver.Decision(ctx, ni.RunID, ni.NodeID)
					if err != nil {
						return fmt.Errorf("read approval: %w", err)
					}
					switch d {
					case Pending:
						return fmt.Errorf("waiting for approval of %q (%s): %w", ni.NodeID, p.Message, dag.ErrSuspended)
					case Rejected:
						return dag.Permanent(ErrRejected)
					}
				}
				return passThrough(ctx, in.At(0), out)
			}), nil
		},
	}
}

// passThrough copies an input to the output, keeping its kind.
func passThrough(ctx context.Context, src *dag.Input, out *dag.Output) error {
	if src.Kind() == dag.KindTable || src.Piped() {
		rr, err := src.Rows(ctx)
		if err != nil {
			return err
		}
		defer rr.Close()
		w, err := out.Table(rr.Columns())
		if err != nil {
			return err
		}
		for {
			r, err := rr.Next(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := w.Write(ctx, r); err != nil {
				return err
			}
		}
	}
	rc, err := src.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if src.Kind() == dag.KindJSON {
		var v any
		if err := src.Decode(ctx, &v); err != nil {
			return err
		}
		return out.WriteJSON(v)
	}
	w, err := out.Writer()
	if err != nil {
		return err
	}
	_, err = io.Copy(w, ctxReader{ctx, rc})
	return err
}
