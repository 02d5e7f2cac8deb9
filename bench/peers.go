package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/dagrun/dagrun/internal/fixture"
)

// Peer is one xlsx parser on one file: peak RSS (wait4 rusage of its own
// process) and parse time, median, min and max over its runs, with ratios
// to dagrun's parser on the same file.
type Peer struct {
	File      string `json:"file"`
	FileBytes int64  `json:"file_bytes"`
	Method    string `json:"method"`
	Runs      int    `json:"runs"`
	Rows      int64  `json:"rows"`
	// RSS is peak RSS in bytes: median, min, max.
	RSS [3]float64 `json:"rss_bytes"`
	// Seconds is the parse time (the process's own clock around the parse,
	// excluding start-up and imports): median, min, max.
	Seconds [3]float64 `json:"seconds"`
	// RSSRatio and TimeRatio are this method's medians over dagrun-xlsx's.
	RSSRatio  float64 `json:"rss_ratio"`
	TimeRatio float64 `json:"time_ratio"`
	Error     string  `json:"error,omitempty"`
}

type peerCase struct {
	file, method string
	python       string // interpreter for Python peers
	runs         int
}

// Peer methods: the first four run in the Go driver of benchmarks/parsers,
// the rest in python3.
var goPeers = []string{"dagrun-xlsx", "excelize-rows", "excelize-getrows", "xlsxreader"}
var pyPeers = []string{"openpyxl", "openpyxl-readonly", "pandas"}

// peerFiles are the files of the parser comparison.
const (
	peerReport = "Ofsted report 200 entries.xlsx"
	peerBig    = "rows-1m.xlsx"
)

// peerCases returns the peer cases to run and what is skipped, with why.
func peerCases(cfg Config) ([]peerCase, []string) {
	var skipped []string
	py := pythonWithPeers()
	if py == "" {
		skipped = append(skipped, "openpyxl and pandas peers: no python3 (in PATH or /usr/bin) imports openpyxl and pandas; apt-get install -y python3-openpyxl python3-pandas")
	}
	files := []string{peerReport}
	if !cfg.NoBigPeers {
		files = append(files, peerBig)
	} else {
		skipped = append(skipped, "parser peers on "+peerBig+": skipped (--quick or --no-big-peers)")
	}
	var out []peerCase
	for _, f := range files {
		runs := cfg.Runs
		if f == peerBig {
			runs = cfg.PeerRuns
		}
		for _, m := range goPeers {
			out = append(out, peerCase{file: f, method: m, runs: runs})
		}
		if py != "" {
			for _, m := range pyPeers {
				out = append(out, peerCase{file: f, method: m, python: py, runs: runs})
			}
		}
	}
	return out, skipped
}

func peerSteps(ps []peerCase, cfg Config) int {
	n := 0
	for _, p := range ps {
		n += p.runs
	}
	return n
}

// pyScript parses every sheet of an xlsx the way the incident's workers
// did and prints {"rows": n, "seconds": s}.
const pyScript = `import sys, json, time
method, path = sys.argv[1], sys.argv[2]
if method == "pandas":
    import pandas as pd
else:
    import openpyxl
t = time.perf_counter()
rows = 0
if method == "pandas":
    for df in pd.read_excel(path, sheet_name=None, engine="openpyxl").values():
        rows += len(df) + 1
else:
    wb = openpyxl.load_workbook(path, read_only=(method == "openpyxl-readonly"), data_only=True)
    for ws in wb.worksheets:
        for r in ws.iter_rows(values_only=True):
            rows += 1
    if method == "openpyxl-readonly":
        wb.close()
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t}))
`

func runPeers(ctx context.Context, cfg Config, launcher, driver, tmp string, cases []peerCase, p *stepper) []*Peer {
	script := filepath.Join(tmp, "peer.py")
	if err := os.WriteFile(script, []byte(pyScript), 0o644); err != nil {
		cfg.Logger.Warn("bench: peer script", "err", err)
	}
	var out []*Peer
	base := map[string]*Peer{}
	for _, c := range cases {
		path, err := fixture.Path(ctx, c.file)
		pe := &Peer{File: c.file, Method: c.method, Runs: c.runs}
		out = append(out, pe)
		if err != nil {
			pe.Error = err.Error()
			p.skip(c.runs)
			continue
		}
		if st, err := os.Stat(path); err == nil {
			pe.FileBytes = st.Size()
		}
		var rss, secs []float64
		for i := 0; i < c.runs; i++ {
			argv := []string{driver, "-child", c.method, "-file", path}
			if c.python != "" {
				argv = []string{c.python, script, c.method, path}
			}
			step := fmt.Sprintf("peer %s %s %d/%d", c.method, c.file, i+1, c.runs)
			pr, err := runProcess(ctx, launcher, argv, os.Environ(), tmp, 0)
			var r struct {
				Items   int64   `json:"items"`
				Rows    int64   `json:"rows"`
				Seconds float64 `json:"seconds"`
			}
			if err == nil {
				err = json.Unmarshal(pr.stdout, &r)
			}
			p.done(step, err)
			if err != nil {
				if pe.Error == "" {
					pe.Error = err.Error()
				}
				continue
			}
			pe.Rows = r.Items + r.Rows
			rss = append(rss, float64(pr.maxRSS))
			secs = append(secs, r.Seconds)
			if ctx.Err() != nil {
				return out
			}
		}
		if len(rss) > 0 {
			pe.RSS[0], pe.RSS[1], pe.RSS[2] = stats(rss)
			pe.Seconds[0], pe.Seconds[1], pe.Seconds[2] = stats(secs)
		}
		if c.method == "dagrun-xlsx" {
			base[c.file] = pe
		}
	}
	for _, pe := range out {
		if b := base[pe.File]; b != nil && b.RSS[0] > 0 && b.Seconds[0] > 0 {
			pe.RSSRatio = pe.RSS[0] / b.RSS[0]
			pe.TimeRatio = pe.Seconds[0] / b.Seconds[0]
		}
	}
	return out
}

// peerChecks evaluates the parser targets: dagrun-xlsx uses less peak
// memory than every peer on each file, and is not slower than excelize's
// streaming reader (Rows).
func peerChecks(peers []*Peer) []Check {
	var out []Check
	base := map[string]*Peer{}
	for _, p := range peers {
		if p.Method == "dagrun-xlsx" && p.RSS[0] > 0 {
			base[p.File] = p
		}
	}
	for _, p := range peers {
		b := base[p.File]
		if b == nil || p == b || p.RSS[0] == 0 {
			continue
		}
		out = append(out, Check{Workflow: p.File, Target: "dagrun-xlsx peak RSS < " + p.Method,
			Value: b.RSS[0], Limit: p.RSS[0], Pass: b.RSS[0] < p.RSS[0]})
		if p.Method == "excelize-rows" {
			out = append(out, Check{Workflow: p.File, Target: "dagrun-xlsx seconds <= excelize-rows (seconds, not MiB)",
				Value: b.Seconds[0] * (1 << 20), Limit: p.Seconds[0] * (1 << 20), Pass: b.Seconds[0] <= p.Seconds[0]})
		}
	}
	return out
}

// pythonWithPeers returns a python3 that imports openpyxl and pandas
// (Debian's packages install into /usr/bin/python3, which a pyenv or venv
// python3 earlier in PATH does not see), or "".
func pythonWithPeers() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import openpyxl, pandas").Run() == nil {
			return py
		}
	}
	return ""
}
