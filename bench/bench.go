// Package bench is the harness behind `dagrun bench`: it runs the five
// workflows of the incident (benchmarks/workflows) under the incident's way
// of executing and under dagrun's, each run in its own `dagrun run` child
// process, and measures what the operating system says each one needed:
// peak RSS (wait4 rusage), the worker's own high-water mark (VmHWM), RSS
// over time (/proc/<pid>/status every ~10 ms), plus the run report's peak
// Go heap, child-process peaks and spilled bytes. It also runs the xlsx
// parser peers (excelize, xlsxreader, openpyxl, pandas) on the same files.
// Results are written as a Markdown table, a JSON file and SVG charts.
//
// Nothing in the package is safe for concurrent use; Run is meant to be
// called once per process.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dagrun/dagrun/internal/fixture"
)

// ErrNoRepo is returned when the dagrun source tree (needed to build the
// binaries and to find the workflows) cannot be found.
var ErrNoRepo = errors.New("bench: dagrun source tree not found (run from the repository or pass --repo)")

// Config configures a benchmark run. The zero value runs every workflow in
// every mode, 5 runs each, with parser peers, from the repository found
// above the current directory, writing into benchmarks/results.
type Config struct {
	// Repo is the root of the dagrun source tree (default: found by walking
	// up from the current directory to the go.mod of github.com/dagrun/dagrun).
	Repo string
	// Workflows selects workflows by name (file name without .json);
	// empty means all of benchmarks/workflows.
	Workflows []string
	// Modes selects modes by name; empty means all.
	Modes []string
	// Runs is the number of runs per case (default 5).
	Runs int
	// PeerRuns is the number of runs per parser-peer case on the 1,000,000
	// row file (default 1: one openpyxl run there takes minutes).
	PeerRuns int
	// NoPeers skips the parser peers; NoBigPeers skips only the 1M-row file.
	NoPeers, NoBigPeers bool
	// OutDir receives summary.md, results.json and the SVG charts
	// (default Repo/benchmarks/results).
	OutDir string
	// Dagrun is a dagrun binary to use instead of building one.
	Dagrun string
	// RedisURL is a Redis to spill to; empty starts a redis-server from
	// PATH when there is one, else the Redis mode is skipped.
	RedisURL string
	// ChildEnv is added to the environment of every `dagrun run` child
	// (for example GOMEMLIMIT=48MiB), and recorded in the results.
	ChildEnv []string
	// SampleEvery is the RSS sampling period (default 10ms).
	SampleEvery time.Duration
	// Progress receives one event per finished child process.
	Progress func(Progress)
	// Logger receives debug logs (default: discard).
	Logger *slog.Logger
}

// Progress reports one finished step.
type Progress struct {
	Done, Total int
	// Step names the step, for example "nursery-ai-agent evict+stream 3/5".
	Step string
	// Err is the step's error, if any (the benchmark continues).
	Err error
}

func (c *Config) defaults() error {
	if c.Runs <= 0 {
		c.Runs = 5
	}
	if c.PeerRuns <= 0 {
		c.PeerRuns = 1
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 10 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Repo == "" {
		r, err := findRepo()
		if err != nil {
			return err
		}
		c.Repo = r
	}
	if c.OutDir == "" {
		c.OutDir = filepath.Join(c.Repo, "benchmarks", "results")
	}
	return nil
}

// findRepo walks up from the working directory to the dagrun module root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoRepo, err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/dagrun/dagrun\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepo
		}
		dir = parent
	}
}

// Results is everything one benchmark run measured; it is written as
// results.json.
type Results struct {
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`
	Host     Host      `json:"host"`
	Runs     int       `json:"runs"`
	Modes    []Mode    `json:"modes"`
	Cases    []*Case   `json:"cases"`
	Checks   []Check   `json:"checks"`
	Peers    []*Peer   `json:"peers,omitempty"`
	// Floor is a one-node workflow (a 100-byte mock reply) in
	// evict+stream mode: the RSS of `dagrun run` doing almost nothing,
	// below which no workflow can go.
	Floor *Case `json:"floor,omitempty"`
	// Skipped lists what did not run and why.
	Skipped []string `json:"skipped,omitempty"`
	// OutDir is where the files were written.
	OutDir string `json:"-"`
}

// Host describes the machine and its load while the benchmark ran.
type Host struct {
	GoVersion   string            `json:"go_version"`
	OS          string            `json:"os"`
	CPUs        int               `json:"cpus"`
	LoadBefore  string            `json:"loadavg_before"`
	LoadAfter   string            `json:"loadavg_after"`
	Environment map[string]string `json:"environment,omitempty"`
}

// Figures are one run's measurements (or the median, min or max of them).
type Figures struct {
	// RusageMaxRSS is ru_maxrss from wait4: the peak RSS of the worker or
	// of its largest child process (node.js), whichever is larger. (The
	// worker is started through a small launcher so that the harness's
	// own RSS is not folded in; see bench/internal/launch.)
	RusageMaxRSS int64 `json:"rusage_maxrss_bytes"`
	// WorkerHWM is the kernel's VmHWM of the worker process alone (child
	// processes excluded), read by the worker at the end of the run.
	WorkerHWM int64 `json:"worker_hwm_bytes"`
	// SampledRSS is the highest VmRSS seen by the ~10 ms sampler.
	SampledRSS int64 `json:"sampled_rss_bytes"`
	// PeakHeap is the peak of Go heap objects (run report).
	PeakHeap int64 `json:"peak_heap_bytes"`
	// PeakLiveOutputs is the most output bytes held in memory at once.
	PeakLiveOutputs int64 `json:"peak_live_output_bytes"`
	// ChildPeak is the largest child_peak_bytes of any node (node.js).
	ChildPeak int64 `json:"child_peak_bytes"`
	// Spilled is the bytes spilled to the store.
	Spilled int64 `json:"spilled_bytes"`
	// Wall is the child process's wall time in seconds.
	Wall float64 `json:"wall_seconds"`
}

// Case is one workflow in one mode.
type Case struct {
	Workflow string `json:"workflow"`
	Mode     string `json:"mode"`
	Nodes    int    `json:"nodes"`
	// Skipped is why the case did not run ("" when it ran).
	Skipped string `json:"skipped,omitempty"`
	// Error is the first failure, when a run failed.
	Error  string    `json:"error,omitempty"`
	Runs   []Figures `json:"runs,omitempty"`
	Median Figures   `json:"median"`
	Min    Figures   `json:"min"`
	Max    Figures   `json:"max"`
	// MaxSampleGap is the longest time between two RSS samples in any
	// run, in seconds: above ~0.05 the sampler was starved by load and
	// the timeline may miss short peaks (the rusage and VmHWM figures
	// do not depend on sampling).
	MaxSampleGap float64 `json:"max_sample_gap_seconds"`
	// Timeline is the RSS over time of the run with the median worker HWM.
	Timeline []Sample `json:"timeline,omitempty"`
}

// Check is one of the targets, checked against the medians.
type Check struct {
	Workflow string  `json:"workflow"`
	Target   string  `json:"target"`
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit"`
	Pass     bool    `json:"pass"`
}

type workflow struct {
	name  string
	path  string // substituted copy
	nodes int
}

// Run runs the benchmark and writes its outputs into cfg.OutDir.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	modes, err := selectModes(cfg.Modes)
	if err != nil {
		return nil, err
	}
	if err := checkWorkflows(cfg); err != nil {
		return nil, err
	}
	res := &Results{Started: time.Now(), Runs: cfg.Runs, Host: host(cfg.ChildEnv), OutDir: cfg.OutDir}
	tmp, err := os.MkdirTemp("", "dagrun-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := cfg.Dagrun
	if bin == "" {
		bin = filepath.Join(tmp, "dagrun")
		if err := goBuild(ctx, cfg.Repo, bin, "./cmd/dagrun"); err != nil {
			return nil, err
		}
	}
	launcher := filepath.Join(tmp, "launch")
	if err := goBuild(ctx, cfg.Repo, launcher, "./bench/internal/launch"); err != nil {
		return nil, err
	}
	tools, err := StartToolServer()
	if err != nil {
		return nil, err
	}
	defer tools.Close()
	wfs, err := prepareWorkflows(ctx, cfg, tmp, tools.URL)
	if err != nil {
		return nil, err
	}
	res.Modes = modes
	redisURL, stopRedis, why := redisFor(ctx, cfg, modes, tmp)
	defer stopRedis()
	if why != "" {
		res.Skipped = append(res.Skipped, ModeSpillRedis+": "+why)
	}
	var peers []peerCase
	if !cfg.NoPeers {
		var skipped []string
		peers, skipped = peerCases(cfg)
		res.Skipped = append(res.Skipped, skipped...)
	}
	p := &stepper{total: (len(wfs)*len(modes)+1)*cfg.Runs + peerSteps(peers, cfg), fn: cfg.Progress}
	floorPath := filepath.Join(tmp, "floor.json")
	if err := os.WriteFile(floorPath, []byte(floorWorkflow), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	res.Floor = &Case{Workflow: "floor", Mode: ModeStream, Nodes: 1}
	runCase(ctx, cfg, launcher, bin, tmp, "", workflow{name: "floor", path: floorPath, nodes: 1}, Modes()[2], res.Floor, p)
	for _, wf := range wfs {
		for _, m := range modes {
			c := &Case{Workflow: wf.name, Mode: m.Name, Nodes: wf.nodes}
			res.Cases = append(res.Cases, c)
			if m.Store == "redis" && redisURL == "" {
				c.Skipped = why
				p.skip(cfg.Runs)
				continue
			}
			runCase(ctx, cfg, launcher, bin, tmp, redisURL, wf, m, c, p)
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	if len(peers) > 0 {
		driver := filepath.Join(tmp, "parsers-driver")
		if err := goBuild(ctx, cfg.Repo, driver, "./benchmarks/parsers"); err != nil {
			res.Skipped = append(res.Skipped, "parser peers: "+err.Error())
		} else {
			res.Peers = runPeers(ctx, cfg, launcher, driver, tmp, peers, p)
		}
	}
	res.Checks = append(checks(res.Cases), peerChecks(res.Peers)...)
	res.Host.LoadAfter = loadavg()
	res.Duration = time.Since(res.Started).Seconds()
	if err := write(cfg.OutDir, res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// runCase runs one workflow in one mode cfg.Runs times.
func runCase(ctx context.Context, cfg Config, launcher, bin, tmp, redisURL string, wf workflow, m Mode, c *Case, p *stepper) {
	var timelines [][]Sample
	for i := 0; i < cfg.Runs; i++ {
		step := fmt.Sprintf("%s %s %d/%d", wf.name, m.Name, i+1, cfg.Runs)
		f, tl, err := runOnce(ctx, cfg, launcher, bin, tmp, redisURL, wf, m, i)
		if err != nil {
			if c.Error == "" {
				c.Error = err.Error()
			}
			p.done(step, err)
			continue
		}
		c.Runs = append(c.Runs, f)
		timelines = append(timelines, tl)
		for j := 1; j < len(tl); j++ {
			c.MaxSampleGap = max(c.MaxSampleGap, tl[j].T-tl[j-1].T)
		}
		p.done(step, nil)
	}
	if len(c.Runs) == 0 {
		return
	}
	c.Median, c.Min, c.Max = summarise(c.Runs)
	// The timeline shown is the run whose worker HWM is the median.
	idx := make([]int, len(c.Runs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return c.Runs[idx[a]].WorkerHWM < c.Runs[idx[b]].WorkerHWM })
	c.Timeline = timelines[idx[(len(idx)-1)/2]]
}

// runReport is the part of the dagrun run report the harness reads.
type runReport struct {
	Status              string `json:"status"`
	PeakHeapBytes       int64  `json:"peak_heap_bytes"`
	PeakLiveOutputBytes int64  `json:"peak_live_output_bytes"`
	ProcessHWMBytes     int64  `json:"process_hwm_bytes"`
	SpilledBytes        int64  `json:"spilled_bytes"`
	Nodes               []struct {
		Metrics map[string]int64 `json:"metrics"`
	} `json:"nodes"`
}

func runOnce(ctx context.Context, cfg Config, launcher, bin, tmp, redisURL string, wf workflow, m Mode, i int) (Figures, []Sample, error) {
	report := filepath.Join(tmp, "report.json")
	_ = os.Remove(report)
	args := []string{bin, "run", "--quiet", "--progress", "never", "--report", report}
	args = append(args, m.Flags...)
	switch m.Store {
	case "dir":
		dir := filepath.Join(tmp, "spill", fmt.Sprintf("%s-%d", wf.name, i))
		defer os.RemoveAll(dir)
		args = append(args, "--store", "dir://"+dir)
	case "redis":
		args = append(args, "--store", redisURL)
	}
	args = append(args, wf.path)
	cfg.Logger.Debug("bench run", "argv", strings.Join(args, " "))
	pr, err := runProcess(ctx, launcher, args, append(os.Environ(), cfg.ChildEnv...), tmp, cfg.SampleEvery)
	if err != nil {
		return Figures{}, nil, fmt.Errorf("%s %s: %w", wf.name, m.Name, err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		return Figures{}, nil, fmt.Errorf("%s %s: report: %w", wf.name, m.Name, err)
	}
	var rep runReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return Figures{}, nil, fmt.Errorf("%s %s: report: %w", wf.name, m.Name, err)
	}
	if rep.Status != "succeeded" {
		return Figures{}, nil, fmt.Errorf("%s %s: run %s", wf.name, m.Name, rep.Status)
	}
	f := Figures{RusageMaxRSS: pr.maxRSS, WorkerHWM: rep.ProcessHWMBytes, PeakHeap: rep.PeakHeapBytes,
		PeakLiveOutputs: rep.PeakLiveOutputBytes, Spilled: rep.SpilledBytes, Wall: pr.wall.Seconds()}
	for _, s := range pr.samples {
		f.SampledRSS = max(f.SampledRSS, s.RSS)
	}
	for _, n := range rep.Nodes {
		f.ChildPeak = max(f.ChildPeak, n.Metrics["child_peak_bytes"])
	}
	return f, pr.samples, nil
}

// summarise returns the per-field median, min and max of runs.
func summarise(runs []Figures) (med, lo, hi Figures) {
	ints := []func(*Figures) *int64{
		func(f *Figures) *int64 { return &f.RusageMaxRSS }, func(f *Figures) *int64 { return &f.WorkerHWM },
		func(f *Figures) *int64 { return &f.SampledRSS }, func(f *Figures) *int64 { return &f.PeakHeap },
		func(f *Figures) *int64 { return &f.PeakLiveOutputs }, func(f *Figures) *int64 { return &f.ChildPeak },
		func(f *Figures) *int64 { return &f.Spilled },
	}
	for _, get := range ints {
		v := make([]float64, len(runs))
		for i := range runs {
			v[i] = float64(*get(&runs[i]))
		}
		m, l, h := stats(v)
		*get(&med), *get(&lo), *get(&hi) = int64(m), int64(l), int64(h)
	}
	v := make([]float64, len(runs))
	for i := range runs {
		v[i] = runs[i].Wall
	}
	med.Wall, lo.Wall, hi.Wall = stats(v)
	return med, lo, hi
}

// stats returns the median (mean of the middle two for an even count),
// min and max.
func stats(v []float64) (med, lo, hi float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// checks evaluates the targets on the medians.
func checks(cases []*Case) []Check {
	by := map[string]map[string]*Case{}
	var names []string
	for _, c := range cases {
		if by[c.Workflow] == nil {
			by[c.Workflow] = map[string]*Case{}
			names = append(names, c.Workflow)
		}
		if len(c.Runs) > 0 {
			by[c.Workflow][c.Mode] = c
		}
	}
	var out []Check
	for _, w := range names {
		inc, st := by[w][ModeIncident], by[w][ModeStream]
		if st == nil {
			continue
		}
		if fileHeavy[w] && inc != nil {
			lim := float64(inc.Median.WorkerHWM) / 4
			out = append(out, Check{Workflow: w, Target: "evict+stream worker peak RSS <= 1/4 of incident",
				Value: float64(st.Median.WorkerHWM), Limit: lim, Pass: float64(st.Median.WorkerHWM) <= lim})
		}
		out = append(out, Check{Workflow: w, Target: "evict+stream worker peak RSS < 64 MiB (child processes excluded)",
			Value: float64(st.Median.WorkerHWM), Limit: 64 << 20, Pass: st.Median.WorkerHWM < 64<<20})
	}
	return out
}

func selectModes(names []string) ([]Mode, error) {
	all := Modes()
	if len(names) == 0 {
		return all, nil
	}
	var out []Mode
	for _, m := range all {
		if slices.Contains(names, m.Name) {
			out = append(out, m)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(m Mode) bool { return m.Name == n }) {
			var valid []string
			for _, m := range all {
				valid = append(valid, m.Name)
			}
			return nil, fmt.Errorf("bench: unknown mode %q (modes: %s)", n, strings.Join(valid, ", "))
		}
	}
	return out, nil
}

// redisFor returns the Redis URL of the Redis mode, a stop function, and
// why the mode is skipped ("" when it runs).
func redisFor(ctx context.Context, cfg Config, modes []Mode, tmp string) (string, func(), string) {
	if !slices.ContainsFunc(modes, func(m Mode) bool { return m.Store == "redis" }) {
		return "", func() {}, ""
	}
	if cfg.RedisURL != "" {
		return cfg.RedisURL, func() {}, ""
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", func() {}, "no --redis URL given and no redis-server in PATH"
	}
	dir := filepath.Join(tmp, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", func() {}, err.Error()
	}
	rs, err := startRedis(ctx, bin, dir)
	if err != nil {
		return "", func() {}, err.Error()
	}
	return rs.url(), rs.stop, ""
}

// floorWorkflow measures the RSS of a run that does almost nothing.
const floorWorkflow = `{"name": "floor", "version": "1", "nodes": [{"id": "reply", "type": "llm.mock", "params": {"reply_bytes": 100}}]}`

// checkWorkflows fails when a selected workflow has no file.
func checkWorkflows(cfg Config) error {
	dir := filepath.Join(cfg.Repo, "benchmarks", "workflows")
	for _, w := range cfg.Workflows {
		if _, err := os.Stat(filepath.Join(dir, w+".json")); err != nil {
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			var names []string
			for _, f := range files {
				names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
			}
			return fmt.Errorf("bench: no workflow %q in %s (workflows: %s)", w, dir, strings.Join(names, ", "))
		}
	}
	return nil
}

var placeholder = regexp.MustCompile(`\$\{FIXTURES\}/([^"]+)"`)

// prepareWorkflows generates the fixtures the workflows reference and
// writes substituted copies of the workflow files into tmp.
func prepareWorkflows(ctx context.Context, cfg Config, tmp, toolURL string) ([]workflow, error) {
	dir := filepath.Join(cfg.Repo, "benchmarks", "workflows")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("bench: no workflows in %s", dir)
	}
	sort.Strings(files)
	var out []workflow
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if len(cfg.Workflows) > 0 && !slices.Contains(cfg.Workflows, name) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		fixDir := ""
		for _, m := range placeholder.FindAllSubmatch(b, -1) {
			p, err := fixture.Path(ctx, string(m[1]))
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %w", f, err)
			}
			fixDir = filepath.Dir(p)
		}
		repl := strings.NewReplacer("${FIXTURES}", jsonEscape(fixDir), "${TOOL_URL}", jsonEscape(toolURL),
			"${SCRIPTS}", jsonEscape(filepath.Join(cfg.Repo, "testdata", "scripts")))
		sub := repl.Replace(string(b))
		var doc struct {
			Nodes []json.RawMessage `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(sub), &doc); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", f, err)
		}
		path := filepath.Join(tmp, filepath.Base(f))
		if err := os.WriteFile(path, []byte(sub), 0o644); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		out = append(out, workflow{name: name, path: path, nodes: len(doc.Nodes)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no workflow named %s in %s", strings.Join(cfg.Workflows, ", "), dir)
	}
	return out, nil
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// goBuild builds pkg of the repo into out.
func goBuild(ctx context.Context, repo, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: go build %s: %w: %s", pkg, err, bytes.TrimSpace(errb.Bytes()))
	}
	return nil
}

func host(childEnv []string) Host {
	h := Host{GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), LoadBefore: loadavg()}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS"} {
		if v := os.Getenv(k); v != "" {
			if h.Environment == nil {
				h.Environment = map[string]string{}
			}
			h.Environment[k] = v
		}
	}
	for _, kv := range childEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if h.Environment == nil {
				h.Environment = map[string]string{}
			}
			h.Environment[k] = v + " (workflow runs only)"
		}
	}
	return h
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// stepper counts finished steps and reports them.
type stepper struct {
	n, total int
	fn       func(Progress)
}

func (s *stepper) done(step string, err error) {
	s.n++
	if s.fn != nil {
		s.fn(Progress{Done: s.n, Total: s.total, Step: step, Err: err})
	}
}

func (s *stepper) skip(k int) {
	s.n += k
	if s.fn != nil {
		s.fn(Progress{Done: s.n, Total: s.total, Step: "skipped"})
	}
}
