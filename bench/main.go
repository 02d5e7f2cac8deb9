package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Main is `dagrun bench [flags] [WORKFLOW...]`: it parses args (without
// the command name), runs the benchmark and prints where the results went.
// A progress bar is drawn on stderr when stderrIsTerminal, else one line
// per finished step.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, stderrIsTerminal bool) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var quick, verbose bool
	var replot string
	var modes string
	fs.IntVar(&cfg.Runs, "runs", 5, "runs per workflow and mode (medians, min and max are reported)")
	fs.BoolVar(&quick, "quick", false, "smoke test: 1 run, parser peers only on the 6.2 MB file")
	fs.StringVar(&modes, "modes", "", "comma-separated modes (default all: "+strings.Join(modeNames(), ", ")+")")
	fs.StringVar(&cfg.OutDir, "out", "", "output directory (default REPO/benchmarks/results)")
	fs.StringVar(&cfg.Repo, "repo", "", "dagrun source tree (default: found above the current directory)")
	fs.StringVar(&cfg.Dagrun, "dagrun", "", "dagrun binary to measure (default: go build ./cmd/dagrun)")
	fs.StringVar(&cfg.RedisURL, "redis", "", "Redis URL for the Redis spill mode (default: start redis-server from PATH, else skip)")
	fs.BoolVar(&cfg.NoPeers, "no-peers", false, "skip the xlsx parser peers")
	fs.BoolVar(&cfg.NoBigPeers, "no-big-peers", false, "skip the parser peers on the 1,000,000-row file")
	fs.IntVar(&cfg.PeerRuns, "big-peer-runs", 1, "runs per parser peer on the 1,000,000-row file")
	fs.DurationVar(&cfg.SampleEvery, "sample", 0, "RSS sampling period (default 10ms)")
	fs.Func("child-env", "KEY=VALUE added to the environment of every workflow run (repeatable; for example GOMEMLIMIT=48MiB)", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", s)
		}
		cfg.ChildEnv = append(cfg.ChildEnv, s)
		return nil
	})
	fs.StringVar(&replot, "replot", "", "only rewrite summary.md and the charts from this results.json (into --out, default its directory)")
	fs.BoolVar(&verbose, "v", false, "debug logs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: dagrun bench [flags] [WORKFLOW...]\n\nRuns the incident's workflows (benchmarks/workflows) in each mode, each run in its own process, and writes summary.md, results.json and SVG charts.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Workflows = fs.Args()
	if replot != "" {
		return Replot(replot, cfg.OutDir)
	}
	if modes != "" {
		cfg.Modes = strings.Split(modes, ",")
	}
	if quick {
		cfg.Runs, cfg.NoBigPeers = 1, true
	}
	if cfg.Runs < 1 {
		return fmt.Errorf("bench: --runs must be at least 1, got %d", cfg.Runs)
	}
	if verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var lineOpen bool
	cfg.Progress = func(p Progress) {
		if p.Err != nil {
			if lineOpen {
				fmt.Fprint(stderr, "\n")
				lineOpen = false
			}
			fmt.Fprintf(stderr, "bench: %s: %v\n", p.Step, p.Err)
		}
		if !stderrIsTerminal {
			fmt.Fprintf(stderr, "[%d/%d] %s\n", p.Done, p.Total, p.Step)
			return
		}
		fmt.Fprintf(stderr, "\r\033[K%s %s", bar(p.Done, p.Total, 30), p.Step)
		lineOpen = true
	}
	res, err := Run(ctx, cfg)
	if lineOpen {
		fmt.Fprint(stderr, "\n")
	}
	if res == nil {
		return err
	}
	out := res.OutDir
	failed := 0
	for _, c := range res.Cases {
		if c.Error != "" {
			failed++
		}
	}
	fmt.Fprintf(stdout, "wrote %s/summary.md, results.json and %d charts (%d cases, %d with failed runs, %.0f s)\n",
		out, len(workflowNames(res.Cases)), len(res.Cases), failed, res.Duration)
	for _, c := range res.Checks {
		if !c.Pass {
			fmt.Fprintf(stdout, "target missed: %s: %s (%s MiB, limit %s MiB)\n", c.Workflow, c.Target, mib(c.Value), mib(c.Limit))
		}
	}
	if err == nil && failed > 0 {
		err = errors.New("bench: some runs failed (see summary.md)")
	}
	return err
}

// bar draws a progress bar of width cells: "[#####.....] 12/40".
func bar(done, total, width int) string {
	n := 0
	if total > 0 {
		n = min(width, done*width/total)
	}
	return fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
}

func modeNames() []string {
	var out []string
	for _, m := range Modes() {
		out = append(out, m.Name)
	}
	return out
}

// Replot reads a results.json written by Run and rewrites summary.md,
// results.json and the charts into dir (default: the file's directory).
func Replot(path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	if dir == "" {
		dir = filepath.Dir(path)
	}
	return write(dir, &res)
}
