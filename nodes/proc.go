package nodes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/subproc"
)

const defaultChildMemory = 256 << 20

// procParams are the params shared by node.script and exec.
type procParams struct {
	Script  string       `json:"script,omitempty"`
	Code    string       `json:"code,omitempty"`
	Command string       `json:"command,omitempty"`
	Args    []string     `json:"args"`
	Memory  dag.ByteSize `json:"memory"`
	Timeout dag.Duration `json:"timeout"`
	Env     []string     `json:"env"`
	Dir     string       `json:"dir"`
}

// nodeScriptParams and execParams restrict decoding to each type's params.
type nodeScriptParams struct {
	Script  string       `json:"script"`
	Code    string       `json:"code"`
	Args    []string     `json:"args"`
	Memory  dag.ByteSize `json:"memory"`
	Timeout dag.Duration `json:"timeout"`
	Env     []string     `json:"env"`
	Dir     string       `json:"dir"`
}

type execParams struct {
	Command string       `json:"command"`
	Args    []string     `json:"args"`
	Memory  dag.ByteSize `json:"memory"`
	Timeout dag.Duration `json:"timeout"`
	Env     []string     `json:"env"`
	Dir     string       `json:"dir"`
}

func procCommonParams() []dag.Param {
	return []dag.Param{
		{Name: "args", Type: "array", Doc: "Arguments (strings)."},
		{Name: "memory", Type: "bytesize", Default: "256MiB", Doc: "Memory budget of the child and its descendants, enforced by a cgroup (or a watchdog where none is writable); an overrun fails only this node, without retries."},
		{Name: "timeout", Type: "duration", Doc: "Bound on the child's run; the whole process tree is killed when it passes (default: only the node's timeout)."},
		{Name: "env", Type: "array", Doc: "Names of environment variables passed to the child; nothing else of the worker's environment is (add PATH if the child needs it)."},
		{Name: "dir", Type: "string", Doc: "Working directory, relative to the workflow's directory (default: the worker's)."},
	}
}

func nodeScriptType(opts *Options) dag.Type {
	return dag.Type{
		Name: "node.script",
		Doc: "Runs a node.js script in its own memory budget (heap flags derived from it): the inputs are streamed to its stdin " +
			"(tables as JSON lines) and its stdout is streamed into the output.",
		Output:       dag.KindBytes,
		StreamsInput: true,
		MinInputs:    0,
		MaxInputs:    -1,
		Params: append([]dag.Param{
			{Name: "script", Type: "string", Doc: "Path of the .js file, relative to the workflow's directory (exclusive with code)."},
			{Name: "code", Type: "string", Doc: "Inline JavaScript (exclusive with script)."},
		}, procCommonParams()...),
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p nodeScriptParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			var errs []error
			switch {
			case p.Script == "" && p.Code == "":
				errs = append(errs, &dag.ParamError{Field: "script", Message: "one of script or code is required"})
			case p.Script != "" && p.Code != "":
				errs = append(errs, &dag.ParamError{Field: "code", Message: "script and code are exclusive"})
			}
			return newProc(opts, "node.script", procParams{Script: p.Script, Code: p.Code, Args: p.Args, Memory: p.Memory,
				Timeout: p.Timeout, Env: p.Env, Dir: p.Dir}, errs)
		},
	}
}

func execType(opts *Options) dag.Type {
	return dag.Type{
		Name: "exec",
		Doc: "Runs a program in its own memory budget: the inputs are streamed to its stdin (tables as JSON lines) " +
			"and its stdout is streamed into the output.",
		Output:       dag.KindBytes,
		StreamsInput: true,
		MinInputs:    0,
		MaxInputs:    -1,
		Params: append([]dag.Param{
			{Name: "command", Type: "string", Required: true, Doc: "Program: a name looked up in PATH, or a path (relative to the workflow's directory when it has a slash)."},
		}, procCommonParams()...),
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p execParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			var errs []error
			if err := dag.Require("command", p.Command); err != nil {
				errs = append(errs, err)
			}
			return newProc(opts, "exec", procParams{Command: p.Command, Args: p.Args, Memory: p.Memory,
				Timeout: p.Timeout, Env: p.Env, Dir: p.Dir}, errs)
		},
	}
}

type proc struct {
	opts *Options
	typ  string
	p    procParams
	mem  int64
}

func newProc(opts *Options, typ string, p procParams, errs []error) (dag.Node, error) {
	if p.Memory < 0 {
		errs = append(errs, &dag.ParamError{Field: "memory", Message: "must be positive"})
	}
	for i, name := range p.Env {
		if !envName.MatchString(name) {
			errs = append(errs, &dag.ParamError{Field: fmt.Sprintf("env[%d]", i), Message: fmt.Sprintf("%q is not an environment variable name", name)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pr := &proc{opts: opts, typ: typ, p: p, mem: int64(p.Memory)}
	if pr.mem == 0 {
		pr.mem = defaultChildMemory
	}
	return pr, nil
}

func (pr *proc) Run(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
	node := out.NodeID()
	spec := subproc.Spec{
		Args:         pr.p.Args,
		Timeout:      time.Duration(pr.p.Timeout),
		MemoryLimit:  pr.mem,
		Mode:         pr.opts.ChildMode,
		CgroupParent: pr.opts.CgroupParent,
		Reserve:      pr.opts.Reserve,
		Logger:       pr.opts.Logger.With("node_id", node, "node_type", pr.typ),
	}
	if pr.p.Dir != "" {
		spec.Dir = pr.opts.path(pr.p.Dir)
	}
	for _, name := range pr.p.Env {
		if v := pr.opts.Getenv(name); v != "" {
			spec.Env = append(spec.Env, name+"="+v)
		}
	}
	what := pr.p.Command
	switch {
	case pr.typ == "exec":
		spec.Path = pr.p.Command
		if strings.Contains(spec.Path, "/") {
			spec.Path = pr.opts.path(spec.Path)
		}
	case pr.p.Script != "":
		spec.Path = pr.opts.path(pr.p.Script)
		spec.Node = &subproc.NodeOptions{}
		what = pr.p.Script
		if _, err := os.Stat(spec.Path); err != nil {
			return dag.Permanent(fmt.Errorf("node.script %q: script: %w", node, err))
		}
	default:
		f, err := os.CreateTemp("", "dagrun-inline-*.js")
		if err != nil {
			return fmt.Errorf("node.script %q: write inline code: %w", node, err)
		}
		defer os.Remove(f.Name())
		_, werr := f.WriteString(pr.p.Code)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("node.script %q: write inline code: %w", node, werr)
		}
		spec.Path = f.Name()
		spec.Node = &subproc.NodeOptions{}
		what = "inline code"
	}
	if in.Len() > 0 {
		ir := newInputsReader(ctx, in, "")
		defer ir.Close() // Run returns only after any Read of Stdin in progress
		spec.Stdin = ir
	}
	w, err := out.Writer()
	if err != nil {
		return err
	}
	spec.Stdout = w
	res, err := subproc.Run(ctx, spec)
	if info := dag.NodeInfoFrom(ctx); info != nil {
		info.SetMetric("child_peak_bytes", res.PeakBytes)
		info.SetMetric("child_limit_bytes", res.LimitBytes)
		if res.Duration > 0 {
			info.SetMetric("child_duration_ms", res.Duration.Milliseconds())
		}
		info.SetMode(childMode(res))
	}
	if err == nil {
		return nil
	}
	return procError(pr.typ, node, what, err)
}

// childMode is the short report text for how the child was bounded.
func childMode(res subproc.Result) string {
	switch res.Mode {
	case subproc.ModeCgroupV1, subproc.ModeCgroupV2:
		return res.Mode.String() + " (exact)"
	case subproc.ModeWatchdog:
		if res.FallbackReason != "" {
			return "watchdog (sampled; no writable cgroup)"
		}
		return "watchdog (sampled)"
	case subproc.ModeNone:
		return "none (unbounded)"
	}
	return res.Mode.String()
}

// procError names the outcome of a failed child with its peak and limit.
// Memory overruns and missing programs are permanent: retrying cannot help.
func procError(typ, node, what string, err error) error {
	var se *subproc.Error
	if !errors.As(err, &se) {
		return dag.Permanent(fmt.Errorf("%s %q: %s: %w", typ, node, what, err))
	}
	var outcome string
	switch se.Kind {
	case subproc.KindOOMKilled:
		outcome = "OOM-killed (memory budget reached)"
	case subproc.KindWatchdogKilled:
		outcome = "killed by the memory watchdog (over budget)"
	case subproc.KindHeapExhausted:
		outcome = "JavaScript heap exhausted"
	case subproc.KindTimeout:
		outcome = "timed out"
	case subproc.KindCanceled:
		outcome = "canceled"
	case subproc.KindExit:
		outcome = fmt.Sprintf("exit %d", se.ExitCode)
	case subproc.KindSignaled:
		outcome = fmt.Sprintf("killed by signal %s", se.Signal)
	case subproc.KindStart:
		outcome = "failed to start"
	case subproc.KindIO:
		outcome = "stdin/stdout failed"
	default:
		outcome = se.Kind.String()
	}
	e := fmt.Errorf("%s %q: %s %s at peak %s of limit %s (%s): %w", typ, node, filepath.Base(what), outcome,
		dag.FormatBytes(se.PeakBytes), dag.FormatBytes(se.LimitBytes), se.Mode, err)
	if errors.Is(err, subproc.ErrMemoryExceeded) || errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return dag.Permanent(e) // the same budget or a missing program fails again
	}
	return e
}
