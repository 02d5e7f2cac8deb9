package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dagrun/dagrun"
	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/subproc"
)

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type runFlags struct {
	report         string
	noEvict        bool
	noPipe         bool
	wholeFile      bool
	store          string
	spillThreshold string
	runID          string
	resume         bool
	durable        bool
	parallel       int
	failFast       bool
	quiet          bool
	maxPrint       string
	format         string
	progress       string
	childMode      string
	timeout        time.Duration
	log            logFlags
}

func (f *runFlags) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fs.StringVar(&f.report, "report", "", "write the run report (statuses, attempts, timings, memory) as JSON to this file")
	fs.BoolVar(&f.noEvict, "no-evict", false, "hold every output until the run ends (the incident's executor; for measuring)")
	fs.BoolVar(&f.noPipe, "no-pipe", false, "materialise every table instead of streaming it to a single consumer")
	fs.BoolVar(&f.wholeFile, "whole-file", false, "read input files whole before parsing (the incident's parsers; for measuring)")
	fs.StringVar(&f.store, "store", "", "spill store: dir:///path, redis://[user:pass@]host:port/db, rediss://..., or none (default: a directory under the user cache dir)")
	fs.StringVar(&f.spillThreshold, "spill-threshold", "32MiB", "spill outputs larger than this")
	fs.StringVar(&f.runID, "run-id", "", "run id (default random); with --resume, the run to continue")
	fs.BoolVar(&f.resume, "resume", false, "continue the run --run-id from its completed nodes (after a crash or a suspension)")
	fs.BoolVar(&f.durable, "durable", false, "persist completed outputs so the run can be resumed (implied by --run-id)")
	fs.IntVar(&f.parallel, "parallel", 4, "node groups run at once")
	fs.BoolVar(&f.failFast, "fail-fast", false, "cancel the run at the first node failure")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print results")
	fs.StringVar(&f.maxPrint, "max-print", "1MiB", "print at most this much of each result (0: all)")
	fs.StringVar(&f.format, "format", "text", "result format: text or json")
	fs.StringVar(&f.progress, "progress", "auto", "live progress on stderr: auto (when a terminal), always, never")
	fs.StringVar(&f.childMode, "child-mode", "auto", "child process budgets: auto, cgroup, watchdog, none")
	fs.DurationVar(&f.timeout, "timeout", 0, "cancel the run after this long (0: never)")
}

func cmdRun(ctx context.Context, env *Env, args []string) error {
	var f runFlags
	fs := newFlags(env, "run", "run [flags] WORKFLOW.json")
	f.register(fs)
	f.log.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return invalid("run needs one workflow file, got %d", len(pos))
	}
	log, err := f.log.logger(env.Stderr)
	if err != nil {
		return err
	}
	threshold, err := dag.ParseByteSize(f.spillThreshold)
	if err != nil {
		return invalid("--spill-threshold: %v", err)
	}
	maxPrint, err := dag.ParseByteSize(f.maxPrint)
	if err != nil {
		return invalid("--max-print: %v", err)
	}
	if f.format != "text" && f.format != "json" {
		return invalid("--format must be text or json")
	}
	mode, err := childMode(f.childMode)
	if err != nil {
		return err
	}
	if f.resume && f.runID == "" {
		return invalid("--resume needs --run-id")
	}
	var store spill.StoreCloser
	if f.store != "none" {
		if store, err = spill.Open(ctx, f.store); err != nil {
			return withCode(ExitError, fmt.Errorf("open store: %w", err))
		} else {
			defer store.Close()
		}
	} else if f.resume || f.durable {
		return invalid("--resume and --durable need a store")
	}
	cfg := dagrun.Config{
		Nodes: nodes.Options{BaseDir: dagrun.BaseDir(pos[0]), WholeFile: f.wholeFile, Logger: log, ChildMode: mode},
		Exec: dag.Config{Parallelism: f.parallel, FailFast: f.failFast, NoEvict: f.noEvict, NoPipe: f.noPipe,
			SpillThreshold: int64(threshold), Logger: log},
	}
	if store != nil {
		cfg.Store = store
	}
	eng, err := dagrun.New(cfg)
	if err != nil {
		return invalid("%v", err)
	}
	plan, err := eng.LoadFile(pos[0])
	if err != nil {
		return err
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	prog := newProgress(env, f.progress, len(plan.Nodes()))
	res, runErr := eng.Run(ctx, plan, dagrun.RunOptions{RunID: f.runID, Resume: f.resume,
		Durable: store != nil && (f.durable || f.runID != ""), OnEvent: prog.event})
	prog.stop()
	if res == nil {
		return withCode(ExitError, runErr)
	}
	defer res.Close()
	if f.report != "" {
		if err := writeJSON(f.report, res.Report); err != nil {
			return withCode(ExitError, fmt.Errorf("write report: %w", err))
		}
	}
	if !f.quiet {
		if err := printResults(ctx, env.Stdout, res, f.format, int64(maxPrint)); err != nil {
			return withCode(ExitError, err)
		}
	}
	summary(env.Stderr, res.Report)
	if runErr != nil {
		if errors.Is(runErr, dag.ErrSuspended) {
			return withCode(ExitSuspended, fmt.Errorf("%w; resume with: dagrun run --run-id %s --resume %s", runErr, res.Report.RunID, pos[0]))
		}
		return withCode(ExitFailed, runErr)
	}
	return nil
}

func childMode(s string) (subproc.Mode, error) {
	switch s {
	case "auto", "":
		return subproc.ModeAuto, nil
	case "cgroup":
		return subproc.ModeCgroup, nil
	case "watchdog":
		return subproc.ModeWatchdog, nil
	case "none":
		return subproc.ModeNone, nil
	}
	return 0, invalid("--child-mode must be auto, cgroup, watchdog or none, got %q", s)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func summary(w io.Writer, r *dag.Report) {
	counts := map[dag.Status]int{}
	for _, n := range r.Nodes {
		counts[n.Status]++
	}
	var parts []string
	for _, s := range []dag.Status{dag.StatusSucceeded, dag.StatusResumed, dag.StatusFailed, dag.StatusSkipped, dag.StatusCancelled, dag.StatusSuspended, dag.StatusPending} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "run %s %s in %s: %s; peak live outputs %s, peak heap %s, peak RSS %s",
		r.RunID, r.Status, r.Duration.Round(time.Millisecond), strings.Join(parts, ", "),
		dag.FormatBytes(r.PeakLiveOutputBytes), dag.FormatBytes(r.PeakHeapBytes), dag.FormatBytes(r.PeakRSSBytes))
	if r.SpilledBytes > 0 {
		fmt.Fprintf(w, ", spilled %s (%s compressed)", dag.FormatBytes(r.SpilledBytes), dag.FormatBytes(r.SpilledCompressedBytes))
	}
	for _, n := range r.Nodes {
		if p, ok := n.Metrics["child_peak_bytes"]; ok {
			fmt.Fprintf(w, "; %s child peak %s of %s (%s)", n.ID, dag.FormatBytes(p), dag.FormatBytes(n.Metrics["child_limit_bytes"]), n.Mode)
		}
	}
	fmt.Fprintln(w)
}

// printResults writes each result output, bounded by max bytes each.
func printResults(ctx context.Context, w io.Writer, res *dag.Result, format string, max int64) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for _, o := range res.Outputs() {
		if format == "json" {
			if err := printJSON(ctx, bw, o, max); err != nil {
				return err
			}
			continue
		}
		size := ""
		if o.Size() >= 0 {
			size = ", " + dag.FormatBytes(o.Size())
		}
		fmt.Fprintf(bw, "== %s (%s%s) ==\n", o.NodeID(), o.Kind(), size)
		if o.Kind() == dag.KindTable {
			if err := printTable(ctx, bw, o, max); err != nil {
				return err
			}
			continue
		}
		rc, err := o.Open(ctx)
		if err != nil {
			return err
		}
		err = copyBounded(bw, rc, max)
		rc.Close()
		if err != nil {
			return err
		}
		fmt.Fprintln(bw)
	}
	return nil
}

func copyBounded(w io.Writer, r io.Reader, max int64) error {
	if max <= 0 {
		_, err := io.Copy(w, r)
		return err
	}
	if _, err := io.Copy(w, io.LimitReader(r, max)); err != nil {
		return err
	}
	rest, err := io.Copy(io.Discard, r)
	if rest > 0 {
		fmt.Fprintf(w, "\n... (%s more; raise --max-print)", dag.FormatBytes(rest))
	}
	return err
}

func printTable(ctx context.Context, w io.Writer, o *dag.Input, max int64) error {
	rr, err := o.Rows(ctx)
	if err != nil {
		return err
	}
	defer rr.Close()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(rr.Columns(), "\t"))
	var printed int64
	more := 0
	for {
		r, err := rr.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if max > 0 && printed > max {
			more++
			continue
		}
		cells := make([]string, len(r))
		for i, c := range r {
			s := strings.ReplaceAll(fmt.Sprint(cellText(c)), "\n", " ")
			if len(s) > 80 {
				s = s[:77] + "..."
			}
			cells[i] = s
			printed += int64(len(s)) + 1
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if more > 0 {
		fmt.Fprintf(w, "... (%d more rows; raise --max-print)\n", more)
	}
	return nil
}

func cellText(c any) any {
	switch v := c.(type) {
	case nil:
		return ""
	case time.Time:
		return v.Format(time.RFC3339)
	}
	return c
}

func printJSON(ctx context.Context, w io.Writer, o *dag.Input, max int64) error {
	enc := json.NewEncoder(w)
	head := map[string]any{"node": o.NodeID(), "kind": o.Kind().String(), "bytes": o.Size()}
	if o.Kind() == dag.KindTable {
		rr, err := o.Rows(ctx)
		if err != nil {
			return err
		}
		defer rr.Close()
		head["columns"] = rr.Columns()
		var rows [][]any
		for {
			r, err := rr.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			rows = append(rows, []any(r))
			if max > 0 && int64(len(rows)) > max/64 {
				head["truncated"] = true
				break
			}
		}
		head["rows"] = rows
		return enc.Encode(head)
	}
	rc, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	var b strings.Builder
	lim := max
	if lim <= 0 {
		lim = 1 << 62
	}
	if _, err := io.Copy(&b, io.LimitReader(rc, lim)); err != nil {
		return err
	}
	if o.Kind() == dag.KindJSON {
		head["value"] = json.RawMessage(b.String())
	} else {
		head["text"] = b.String()
	}
	return enc.Encode(head)
}

// progress shows a live status line on a terminal.
type progress struct {
	w        io.Writer
	total    int
	done     atomic.Int64
	running  atomic.Int64
	failed   atomic.Int64
	live     atomic.Int64
	stopc    chan struct{}
	wg       sync.WaitGroup
	start    time.Time
	disabled bool
}

func newProgress(env *Env, mode string, total int) *progress {
	p := &progress{w: env.Stderr, total: total, stopc: make(chan struct{}), start: time.Now()}
	switch mode {
	case "always":
	case "never":
		p.disabled = true
	default:
		p.disabled = !env.StderrIsTerminal
	}
	if p.disabled {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-p.stopc:
				fmt.Fprint(p.w, "\r\033[K")
				return
			}
		}
	}()
	return p
}

func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r\033[K%d/%d nodes done, %d running, %d failed · outputs held %s · RSS %s · %s",
		p.done.Load(), p.total, p.running.Load(), p.failed.Load(), dag.FormatBytes(p.live.Load()),
		dag.FormatBytes(dag.ProcessRSS()), time.Since(p.start).Round(100*time.Millisecond))
}

func (p *progress) event(e dag.Event) {
	p.live.Store(e.Live)
	switch e.Type {
	case dag.EventNodeStarted:
		p.running.Add(1)
	case dag.EventNodeFinished:
		p.running.Add(-1)
		if e.Err != nil {
			p.failed.Add(1)
		} else {
			p.done.Add(1)
		}
	case dag.EventNodeResumed:
		p.done.Add(1)
	}
}

func (p *progress) stop() {
	if p.disabled {
		return
	}
	close(p.stopc)
	p.wg.Wait()
}
