package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickDealIntelligence runs the harness as `dagrun bench --quick`
// does, on the smallest workflow with the incident mode and evict+stream,
// and checks the files and the figures.
func TestQuickDealIntelligence(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := Main(context.Background(), []string{"--quick", "--no-peers", "--out", out,
		"--modes", ModeIncident + "," + ModeStream, "deal-intelligence"}, &stdout, &stderr, false)
	if err != nil {
		t.Fatalf("Main: %v\nstderr: %s", err, stderr.String())
	}
	for _, f := range []string{"summary.md", "results.json", "deal-intelligence.svg"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Cases) != 2 {
		t.Fatalf("cases = %d, want 2", len(res.Cases))
	}
	by := map[string]*Case{}
	for _, c := range res.Cases {
		if c.Error != "" || len(c.Runs) != 1 {
			t.Fatalf("%s: runs %d, error %q", c.Mode, len(c.Runs), c.Error)
		}
		if c.Nodes != 10 {
			t.Errorf("%s: nodes = %d, want 10", c.Mode, c.Nodes)
		}
		m := c.Median
		if m.RusageMaxRSS < 4<<20 || m.WorkerHWM < 4<<20 || m.SampledRSS <= 0 || m.PeakHeap <= 0 || m.Wall <= 0 {
			t.Errorf("%s: implausible figures %+v", c.Mode, m)
		}
		if m.RusageMaxRSS > 2<<30 {
			t.Errorf("%s: rusage maxrss %d bytes for a 22 KB workflow", c.Mode, m.RusageMaxRSS)
		}
		if len(c.Timeline) == 0 {
			t.Errorf("%s: no RSS timeline", c.Mode)
		}
		by[c.Mode] = c
	}
	inc, st := by[ModeIncident].Median, by[ModeStream].Median
	// The incident holds a superset of evict+stream's outputs at every
	// moment (exact accounting), so its peak is at least as high. Here the
	// model node reads all nine inputs at once, so the peaks are close
	// (about 2.5 MiB of tool responses either way) and the RSS of two
	// single runs differs by GC timing: allow 2 MiB of noise.
	if inc.PeakLiveOutputs < st.PeakLiveOutputs {
		t.Errorf("live outputs: incident %d < evict+stream %d", inc.PeakLiveOutputs, st.PeakLiveOutputs)
	}
	if inc.WorkerHWM+2<<20 < st.WorkerHWM || inc.RusageMaxRSS+2<<20 < st.RusageMaxRSS {
		t.Errorf("RSS: incident worker %d rusage %d < evict+stream worker %d rusage %d", inc.WorkerHWM, inc.RusageMaxRSS, st.WorkerHWM, st.RusageMaxRSS)
	}
	// Started through the launcher, the worker's rusage maxrss is its own
	// VmHWM (no node.js child here), not the test process's peak.
	if d := inc.RusageMaxRSS - inc.WorkerHWM; d < -1<<20 || d > 1<<20 {
		t.Errorf("incident: rusage maxrss %d differs from the worker's VmHWM %d", inc.RusageMaxRSS, inc.WorkerHWM)
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	if !strings.Contains(string(md), "| deal-intelligence | 10 | incident |") {
		t.Errorf("summary.md lacks the incident row:\n%s", md)
	}
	t.Logf("incident worker %d MiB, evict+stream %d MiB\n%s", inc.WorkerHWM>>20, st.WorkerHWM>>20, stdout.String())
}

// TestToolResponse checks the fake tool APIs: valid JSON of about the
// requested size, deterministic, and an error for an unknown API.
func TestToolResponse(t *testing.T) {
	t.Parallel()
	for _, api := range []string{"/serpapi/search", "/exa/search", "/elasticsearch/_search", "/composio/actions/execute"} {
		b, err := ToolResponse(api, "q", 7, 200000)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || len(b) < 200000 || len(b) > 260000 {
			t.Errorf("%s: %d bytes, valid %v", api, len(b), json.Valid(b))
		}
		b2, _ := ToolResponse(api, "q", 7, 200000)
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: not deterministic", api)
		}
	}
	if _, err := ToolResponse("/nope", "", 0, 10); err == nil || !strings.Contains(err.Error(), "/nope") {
		t.Errorf("unknown API: err = %v", err)
	}
}

// TestStats checks medians of odd and even counts.
func TestStats(t *testing.T) {
	t.Parallel()
	if m, lo, hi := stats([]float64{5, 1, 3}); m != 3 || lo != 1 || hi != 5 {
		t.Errorf("odd: %v %v %v", m, lo, hi)
	}
	if m, _, _ := stats([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even: %v", m)
	}
}

// TestBenchMain runs `dagrun bench` with the arguments in
// DAGRUN_BENCH_ARGS (a full run takes tens of minutes); it is skipped
// unless that variable is set.
func TestBenchMain(t *testing.T) {
	args := os.Getenv("DAGRUN_BENCH_ARGS")
	if args == "" {
		t.Skip("set DAGRUN_BENCH_ARGS (for example \"--runs 5\") to run the full benchmark")
	}
	if err := Main(context.Background(), strings.Fields(args), os.Stdout, os.Stderr, false); err != nil {
		t.Fatal(err)
	}
}

// TestBadArgs checks that bad arguments fail at once with an error naming
// the bad value and the valid ones.
func TestBadArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--modes", "turbo"}, `unknown mode "turbo" (modes: incident, evict`},
		{[]string{"nope"}, `no workflow "nope"`},
		{[]string{"--runs", "0"}, "--runs must be at least 1"},
		{[]string{"--child-env", "GOGC"}, "want KEY=VALUE"},
		{[]string{"--replot", "/nonexistent/results.json"}, "/nonexistent/results.json"},
	} {
		var out, errb bytes.Buffer
		err := Main(context.Background(), tc.args, &out, &errb, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestNiceTicks checks the axis labels: round steps, no float noise.
func TestNiceTicks(t *testing.T) {
	t.Parallel()
	var labels []string
	for _, tk := range (niceTicks{steps: []float64{0.05, 0.1, 1}}).Ticks(0, 0.3) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "0 0.05 0.1 0.15 0.2 0.25 0.3" {
		t.Errorf("labels = %q", got)
	}
}

// TestBar checks the terminal progress bar.
func TestBar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		done, total int
		want        string
	}{
		{0, 4, "[..........] 0/4"},
		{1, 4, "[##........] 1/4"},
		{4, 4, "[##########] 4/4"},
		{5, 4, "[##########] 5/4"},
		{0, 0, "[..........] 0/0"},
	} {
		if got := bar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}
