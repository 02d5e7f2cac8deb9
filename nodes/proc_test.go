package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/subproc"
)

// scriptsDir is the shared directory of test node scripts.
func scriptsDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../testdata/scripts")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func requireNode(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed: ", err)
	}
}

// requireCgroupMode skips when this kernel gives the process no writable
// memory cgroup (subproc.ModeCgroup would fail to start any child).
func requireCgroupMode(t testing.TB) {
	t.Helper()
	requireNode(t)
	_, err := subproc.Run(context.Background(), subproc.Spec{Path: "true", Mode: subproc.ModeCgroup, MemoryLimit: 64 << 20})
	if errors.Is(err, subproc.ErrCgroupUnavailable) {
		t.Skipf("no writable memory cgroup for children: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// docgen.js runs through a real executor over a table streamed to its stdin
// as JSON lines; its HTML report streams into the output and the report
// carries the child's peak, limit and mode.
func TestScriptDocgenThroughExecutor(t *testing.T) {
	requireNode(t)
	noLeaks(t)
	reg := setup(t, Options{BaseDir: scriptsDir(t)})
	res, err := runWF(t, reg, dag.Config{}, `{"name":"docgen","nodes":[
		{"id":"rows","type":"test.rows","params":{"n":500}},
		{"id":"report","type":"node.script","inputs":["rows"],"params":{"script":"docgen.js","args":["Q3 <sales>"]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	html := string(output(t, res, "report"))
	for _, s := range []string{"<title>Q3 &lt;sales&gt;</title>", "<th>amount</th><th>id</th><th>name</th>",
		"<td>748.5</td><td>499</td><td>row &lt;499&gt;</td>", "<p>rows: 500</p>"} {
		if !strings.Contains(html, s) {
			t.Fatalf("report lacks %q:\n%s", s, html[max(0, len(html)-600):])
		}
	}
	nr := res.Report.Node("report")
	if nr.Metrics["child_peak_bytes"] <= 0 || nr.Metrics["child_limit_bytes"] != 256<<20 || nr.Mode == "" {
		t.Fatalf("metrics %v mode %q", nr.Metrics, nr.Mode)
	}
	t.Logf("docgen child: peak %s, mode %s", dag.FormatBytes(nr.Metrics["child_peak_bytes"]), nr.Mode)
}

// A child that allocates 512 MiB of Buffers in a 256 MiB cgroup budget is
// OOM-killed: its node fails once (memory overruns are not retried), naming
// the outcome, peak and limit; its dependent is skipped; an independent
// node of the same run, run after it, succeeds.
func TestScriptOOMFailsNodeNextSucceeds(t *testing.T) {
	requireCgroupMode(t)
	noLeaks(t)
	reg := setup(t, Options{BaseDir: scriptsDir(t), ChildMode: subproc.ModeCgroup})
	var mu sync.Mutex // rows and next run together, joined by a pipe
	var order []string
	res, err := runWF(t, reg, dag.Config{Parallelism: 1, OnEvent: func(e dag.Event) {
		if e.Type == dag.EventNodeStarted {
			mu.Lock()
			order = append(order, e.Node)
			mu.Unlock()
		}
	}}, `{"name":"oom","nodes":[
		{"id":"hog","type":"node.script","retry":{"attempts":3,"backoff":"1ms"},"params":{"script":"alloc_buffers.js","args":["512"],"memory":"256MiB"}},
		{"id":"after_hog","type":"exec","inputs":["hog"],"params":{"command":"cat"}},
		{"id":"rows","type":"test.rows","inputs":[],"params":{"n":50}},
		{"id":"next","type":"node.script","inputs":["rows"],"params":{"script":"docgen.js","memory":"256MiB"}}]}`)
	ne := nodeErr(t, err, "hog")
	if !errors.Is(ne, subproc.ErrOOMKilled) || !errors.Is(ne, dag.ErrPermanent) || ne.Attempt != 1 {
		t.Fatalf("want a permanent OOM kill on attempt 1: %v", ne)
	}
	for _, s := range []string{"OOM-killed", "of limit 256.0 MiB", "peak", "alloc_buffers.js", "cgroup-v"} {
		if !strings.Contains(ne.Error(), s) {
			t.Errorf("error lacks %q: %v", s, ne)
		}
	}
	hog := res.Report.Node("hog")
	if hog.Metrics["child_limit_bytes"] != 256<<20 || hog.Metrics["child_peak_bytes"] < 200<<20 || !strings.HasPrefix(hog.Mode, "cgroup-v") {
		t.Errorf("hog metrics %v mode %q", hog.Metrics, hog.Mode)
	}
	if s := res.Report.Node("after_hog").Status; s != dag.StatusSkipped {
		t.Errorf("dependent of the OOM node: %s", s)
	}
	if s := res.Report.Node("next").Status; s != dag.StatusSucceeded {
		t.Fatalf("independent node after the OOM: %s", s)
	}
	if !strings.Contains(string(output(t, res, "next")), "<p>rows: 50</p>") {
		t.Fatal("next node's report incomplete")
	}
	if idx(order, "next") < idx(order, "hog") {
		t.Logf("order %v: next ran before hog", order)
	}
	t.Logf("hog: %v", ne)
}

func idx(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Each way a child can fail gives a node error naming the outcome; only
// memory overruns are permanent.
func TestProcFailures(t *testing.T) {
	requireNode(t)
	noLeaks(t)
	cases := []struct {
		name      string
		node      string
		attempts  int
		permanent bool
		is        error
		contains  []string
	}{
		{name: "exit code", node: `{"type":"exec","params":{"command":"sh","args":["-c","echo no such column: revenue >&2; exit 3"]}}`,
			attempts: 2, is: subproc.ErrExit, contains: []string{"exit 3", "no such column: revenue", "limit 256.0 MiB"}},
		{name: "heap exhausted", node: `{"type":"node.script","params":{"script":"heap_grow.js","memory":"128MiB"}}`,
			attempts: 1, permanent: true, is: subproc.ErrHeapExhausted, contains: []string{"heap_grow.js JavaScript heap exhausted", "of limit 128.0 MiB"}},
		{name: "timeout", node: `{"type":"node.script","params":{"code":"setInterval(() => {}, 1000)","timeout":"300ms"}}`,
			attempts: 2, is: subproc.ErrTimeout, contains: []string{"inline code timed out"}},
		{name: "missing script", node: `{"type":"node.script","params":{"script":"nope.js"}}`,
			attempts: 1, permanent: true, is: os.ErrNotExist, contains: []string{"nope.js"}},
		{name: "missing command", node: `{"type":"exec","params":{"command":"dagrun-no-such-program"}}`,
			attempts: 1, permanent: true, is: subproc.ErrStart, contains: []string{"dagrun-no-such-program failed to start"}},
	}
	reg := setup(t, Options{BaseDir: scriptsDir(t)})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var node map[string]any
			if err := json.Unmarshal([]byte(tc.node), &node); err != nil {
				t.Fatal(err)
			}
			node["id"] = "child"
			node["retry"] = map[string]any{"attempts": 2, "backoff": "1ms"}
			_, err := runWF(t, reg, dag.Config{}, fmt.Sprintf(`{"name":"f","nodes":[%s]}`, js(node)))
			ne := nodeErr(t, err, "child")
			if ne.Attempt != tc.attempts || errors.Is(ne, dag.ErrPermanent) != tc.permanent || !errors.Is(ne, tc.is) {
				t.Fatalf("attempt %d (want %d), permanent %v (want %v), is %v: %v", ne.Attempt, tc.attempts,
					errors.Is(ne, dag.ErrPermanent), tc.permanent, tc.is, ne)
			}
			for _, s := range tc.contains {
				if !strings.Contains(ne.Error(), s) {
					t.Errorf("error lacks %q: %v", s, ne)
				}
			}
		})
	}
}

// exec streams several inputs in order to stdin; only allow-listed
// variables reach the child, read through Options.Getenv; dir is resolved
// against BaseDir; inline code sees its args.
func TestExecAndScriptIO(t *testing.T) {
	requireNode(t)
	noLeaks(t)
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "env_dir.js"), mustRead(t, filepath.Join(scriptsDir(t), "env_dir.js")), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := setup(t, Options{BaseDir: base, Getenv: env(map[string]string{"DAGRUN_A": "alpha", "DAGRUN_B": "beta"})})
	res, err := runWF(t, reg, dag.Config{}, `{"name":"io","nodes":[
		{"id":"a","type":"test.text","params":{"text":"hello ","repeat":3}},
		{"id":"rows","type":"test.rows","params":{"n":2}},
		{"id":"upper","type":"exec","inputs":["a","rows"],"params":{"command":"tr","args":["a-z","A-Z"]}},
		{"id":"envdir","type":"node.script","params":{"script":"env_dir.js","env":["DAGRUN_A","DAGRUN_UNSET"],"dir":"work","memory":"128MiB"}},
		{"id":"inline","type":"node.script","inputs":["a"],"params":{"code":"let n=0; process.stdin.on('data', d => n += d.length); process.stdin.on('end', () => console.log(process.argv.slice(2).join(','), n));","args":["x","y"]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	wantUpper := `HELLO HELLO HELLO {"AMOUNT":0,"ID":0,"NAME":"ROW \U003C0\U003E"}` + "\n" + `{"AMOUNT":1.5,"ID":1,"NAME":"ROW \U003C1\U003E"}` + "\n"
	if got := string(output(t, res, "upper")); got != wantUpper {
		t.Fatalf("upper = %q, want %q", got, wantUpper)
	}
	var ed struct {
		Env  map[string]string `json:"env"`
		Cwd  string            `json:"cwd"`
		Argv []string          `json:"argv"`
	}
	if err := json.Unmarshal(output(t, res, "envdir"), &ed); err != nil {
		t.Fatal(err)
	}
	if ed.Env["DAGRUN_A"] != "alpha" || ed.Env["DAGRUN_B"] != "" || ed.Env["HOME"] != "" {
		t.Fatalf("child env %v", ed.Env)
	}
	if ed.Cwd != filepath.Join(base, "work") {
		t.Fatalf("cwd %q", ed.Cwd)
	}
	if want := subproc.NodeArgs(128 << 20); strings.Join(ed.Argv, " ") != strings.Join(want, " ") {
		t.Fatalf("node flags %v, want %v", ed.Argv, want)
	}
	if got := strings.TrimSpace(string(output(t, res, "inline"))); got != "x,y 18" {
		t.Fatalf("inline = %q", got)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProcParamErrors(t *testing.T) {
	t.Parallel()
	reg := setup(t, Options{})
	script, _ := reg.Lookup("node.script")
	execT, _ := reg.Lookup("exec")
	cases := []struct {
		typ    *dag.Type
		params string
		fields []string
	}{
		{script, `{}`, []string{"script"}},
		{script, `{"script":"a.js","code":"1","env":["OK","NOT-OK"]}`, []string{"code", "env[1]"}},
		{script, `{"script":"a.js","command":"x"}`, []string{"command"}},
		{execT, `{"args":["x"]}`, []string{"command"}},
		{execT, `{"command":"x","memory":"lots"}`, []string{"(params)"}},
	}
	for _, tc := range cases {
		_, err := tc.typ.New(&dag.NodeSpec{ID: "x", Params: json.RawMessage(tc.params)})
		assertParamFields(t, err, tc.fields...)
	}
}

// BenchmarkScriptDocgen runs docgen.js over a table through the executor;
// it reports the child's peak memory (from the cgroup or the watchdog).
func BenchmarkScriptDocgen(b *testing.B) {
	requireNode(b)
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			reg := setup(b, Options{BaseDir: scriptsDir(b)})
			var peak int64
			for b.Loop() {
				res, err := runWF(b, reg, dag.Config{}, fmt.Sprintf(`{"name":"b","nodes":[
					{"id":"rows","type":"test.rows","params":{"n":%d}},
					{"id":"report","type":"node.script","inputs":["rows"],"params":{"script":"docgen.js"}}]}`, n))
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, res.Report.Node("report").Metrics["child_peak_bytes"])
				res.Close()
			}
			b.ReportMetric(float64(peak)/(1<<20), "child-peak-MiB")
		})
	}
}
