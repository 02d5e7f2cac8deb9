// Package cli implements the dagrun command. Main parses arguments and runs
// a subcommand; cmd/dagrun is a thin wrapper around it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dagrun/dagrun/dag"
)

// Exit codes of the dagrun command.
const (
	ExitOK        = 0 // success
	ExitFailed    = 1 // the workflow ran and a node failed (or a check failed)
	ExitInvalid   = 2 // invalid input: usage, an invalid workflow, a bad flag
	ExitSuspended = 3 // the run is suspended, waiting for a human approval
	ExitError     = 4 // the runtime itself failed: store, Redis, I/O
)

// exitError carries an exit code through a command's error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code, err}
}

func invalid(format string, args ...any) error {
	return &exitError{ExitInvalid, fmt.Errorf(format, args...)}
}

// Env is what a command sees of the process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// StderrIsTerminal turns on live progress.
	StderrIsTerminal bool
}

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"run", "run WORKFLOW.json: run a workflow and print its results", cmdRun},
		{"validate", "validate WORKFLOW.json...: check workflows without running them", cmdValidate},
		{"graph", "graph [--format mermaid|dot] WORKFLOW.json: print the DAG", cmdGraph},
		{"nodes", "nodes [--json]: list node types and their params", cmdNodes},
		{"schema", "schema: print the workflow JSON Schema", cmdSchema},
		{"worker", "worker --redis URL: run a memory-gated worker on a Redis queue", cmdWorker},
		{"enqueue", "enqueue --redis URL WORKFLOW.json: queue a workflow run", cmdEnqueue},
		{"runs", "runs list|show|approve|reject: inspect runs and answer approvals", cmdRuns},
		{"dlq", "dlq list|show|retry|drop: the dead-letter queue", cmdDLQ},
		{"queue", "queue stats: queue depth, in-flight, dead letters", cmdQueue},
		{"doctor", "doctor: check a deployment and print findings with fixes", cmdDoctor},
		{"bench", "bench [WORKFLOW]: per-workflow memory benchmark, side by side", cmdBench},
	}
}

// Main runs the dagrun command with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitInvalid
		}
		return ExitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			return report(env.Stderr, err)
		}
	}
	fmt.Fprintf(env.Stderr, "dagrun: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return ExitInvalid
}

func report(w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	code := ExitError
	var ee *exitError
	var coder interface{ ExitCode() int }
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &coder):
		code = coder.ExitCode()
	case errors.Is(err, dag.ErrInvalid):
		code = ExitInvalid
	case errors.Is(err, dag.ErrSuspended):
		code = ExitSuspended
	}
	fmt.Fprintf(w, "dagrun: %v\n", err)
	return code
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dagrun: run workflows (DAGs in JSON) without letting one take a worker down.")
	fmt.Fprintln(w, "\nUsage: dagrun COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 workflow failed, 2 invalid input, 3 run suspended, 4 runtime error.")
	fmt.Fprintln(w, "Run 'dagrun COMMAND -h' for a command's flags.")
}

// newFlags returns a FlagSet that reports errors as invalid input.
func newFlags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: dagrun %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, allowing flags after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{ExitInvalid, err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "warn", "log level: debug, info, warn, error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, invalid("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, invalid("--log-format must be text or json, got %q", l.format)
}

// Process runs the dagrun command for this process: arguments from os.Args,
// standard streams, and SIGINT/SIGTERM cancelling the command's context (a
// worker drains). It returns the exit code.
func Process() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Main(ctx, os.Args[1:], &Env{Stdout: os.Stdout, Stderr: os.Stderr, StderrIsTerminal: IsTerminal(os.Stderr)})
}
