// Command dagbench measures the executor's memory behaviour, each case in
// its own process with peak RSS from the OS (wait4 rusage), and writes a
// Markdown table:
//
//   - a 10-node chain where every node emits 64 MiB, with eviction (each
//     reply materialised), with --no-evict, with eviction plus spilling to
//     the directory store, and with the default pipes (each reply streams
//     into the next node);
//   - a streaming chain csv.read -> table.filter -> table.aggregate over
//     generated CSVs of 100 MB and 1 GB.
//
// Usage: go run ./benchmarks/dag [-runs 5] [-out benchmarks/dag/RESULTS.md]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

type sample struct {
	rss, heap, live, spilled int64
	wall                     time.Duration
}

type report struct {
	PeakLiveOutputBytes int64 `json:"peak_live_output_bytes"`
	PeakHeapBytes       int64 `json:"peak_heap_bytes"`
	SpilledBytes        int64 `json:"spilled_bytes"`
	Status              string
}

func main() {
	runs := flag.Int("runs", 5, "runs per case (medians are reported)")
	out := flag.String("out", "", "write the Markdown table here (default stdout)")
	csvGB := flag.Float64("csv-large-gb", 1, "size of the large CSV in GB")
	skipCSV := flag.Bool("skip-csv", false, "skip the CSV streaming cases")
	skipChain := flag.Bool("skip-chain", false, "skip the chain cases")
	flag.Parse()
	dir, err := os.MkdirTemp("", "dagbench")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "dagrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dagrun")
	build.Stderr = os.Stderr
	check(build.Run())

	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, Go %s, %d runs per case (median, [min-max]); every run in its own process; peak RSS from wait4 rusage.\n\n",
		time.Now().UTC().Format("2006-01-02"), hostCPU(), goVersion(), *runs)

	if !*skipChain {
		chainCases(&b, bin, dir, *runs)
	}
	if !*skipCSV {
		csvCases(&b, bin, dir, *runs, *csvGB)
	}
	if *out == "" {
		fmt.Print(b.String())
		return
	}
	check(os.WriteFile(*out, []byte(b.String()), 0o644))
	fmt.Print(b.String())
}

func chainCases(b *strings.Builder, bin, dir string, runs int) {
	chain := filepath.Join(dir, "chain.json")
	writeChain(chain, 10, "64MiB")
	spillDir := filepath.Join(dir, "spill")
	fmt.Fprintf(b, "### 10-node chain, 64 MiB per node\n\n| mode | peak live outputs | peak Go heap | peak RSS | spilled | wall |\n|---|---|---|---|---|---|\n")
	var rssEvict, rssNoEvict float64
	for _, m := range []struct{ name, flags string }{
		{"evict", "--store none --no-pipe"},
		{"no-evict", "--store none --no-evict"},
		{"evict + spill (dir)", "--store dir://" + spillDir + " --no-pipe"},
		{"evict + pipes (default)", "--store none"},
	} {
		ss := measure(bin, chain, strings.Fields(m.flags), runs)
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", m.name, col(ss, func(s sample) float64 { return mib(s.live) }, "%.1f MiB"),
			col(ss, func(s sample) float64 { return mib(s.heap) }, "%.1f MiB"), col(ss, func(s sample) float64 { return mib(s.rss) }, "%.1f MiB"),
			col(ss, func(s sample) float64 { return mib(s.spilled) }, "%.0f MiB"), col(ss, func(s sample) float64 { return s.wall.Seconds() }, "%.2f s"))
		switch m.name {
		case "evict":
			rssEvict = median(ss, func(s sample) float64 { return float64(s.rss) })
		case "no-evict":
			rssNoEvict = median(ss, func(s sample) float64 { return float64(s.rss) })
		}
	}
	fmt.Fprintf(b, "\nPeak RSS with eviction is %.2f of --no-evict (target: at most 1/3).\n\n", rssEvict/rssNoEvict)
}

func csvCases(b *strings.Builder, bin, dir string, runs int, csvGB float64) {
	{
		fmt.Fprintf(b, "### Streaming chain csv.read -> table.filter -> table.aggregate\n\n| CSV | peak live outputs | peak Go heap | peak RSS | wall | MB/s |\n|---|---|---|---|---|---|\n")
		var heaps []float64
		for _, size := range []int64{100e6, int64(csvGB * 1e9)} {
			csvPath := filepath.Join(dir, fmt.Sprintf("orders-%d.csv", size))
			writeCSV(csvPath, size)
			wf := filepath.Join(dir, fmt.Sprintf("stream-%d.json", size))
			writeStream(wf, csvPath)
			ss := measure(bin, wf, []string{"--store", "none"}, runs)
			fmt.Fprintf(b, "| %d MB | %s | %s | %s | %s | %s |\n", size/1e6, col(ss, func(s sample) float64 { return mib(s.live) }, "%.2f MiB"),
				col(ss, func(s sample) float64 { return mib(s.heap) }, "%.1f MiB"), col(ss, func(s sample) float64 { return mib(s.rss) }, "%.1f MiB"),
				col(ss, func(s sample) float64 { return s.wall.Seconds() }, "%.1f s"), col(ss, func(s sample) float64 { return float64(size) / 1e6 / s.wall.Seconds() }, "%.0f"))
			heaps = append(heaps, median(ss, func(s sample) float64 { return float64(s.heap) }))
			os.Remove(csvPath)
		}
		fmt.Fprintf(b, "\nPeak Go heap for the large CSV is %.2fx that for 100 MB (target: at most 1.25x).\n", heaps[1]/heaps[0])
	}
}

func measure(bin, wf string, flags []string, runs int) []sample {
	var ss []sample
	for i := 0; i < runs; i++ {
		rep := wf + ".report.json"
		args := append([]string{"run", "--quiet", "--progress", "never", "--report", rep}, flags...)
		args = append(args, wf)
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s %v: %v\n", bin, args, err)
			os.Exit(1)
		}
		wall := time.Since(start)
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		var r report
		b, err := os.ReadFile(rep)
		check(err)
		check(json.Unmarshal(b, &r))
		ss = append(ss, sample{rss: ru.Maxrss << 10, heap: r.PeakHeapBytes, live: r.PeakLiveOutputBytes, spilled: r.SpilledBytes, wall: wall})
		fmt.Fprintf(os.Stderr, "%s %v: rss %.1f MiB heap %.1f MiB live %.1f MiB %.2fs\n", filepath.Base(wf), flags, mib(ru.Maxrss<<10), mib(r.PeakHeapBytes), mib(r.PeakLiveOutputBytes), wall.Seconds())
	}
	return ss
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func col(ss []sample, f func(sample) float64, format string) string {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	sort.Float64s(v)
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", median(ss, f), v[0], v[len(v)-1])
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func writeChain(path string, n int, size string) {
	var nodes []map[string]any
	for i := 0; i < n; i++ {
		nd := map[string]any{"id": fmt.Sprintf("n%02d", i), "type": "llm.mock", "params": map[string]any{"reply_bytes": size, "seed": i}}
		if i > 0 {
			nd["inputs"] = []string{fmt.Sprintf("n%02d", i-1)}
		}
		nodes = append(nodes, nd)
	}
	b, _ := json.Marshal(map[string]any{"name": "chain-64mib", "nodes": nodes})
	check(os.WriteFile(path, b, 0o644))
}

func writeStream(path, csvPath string) {
	wf := map[string]any{"name": "csv-stream", "nodes": []any{
		map[string]any{"id": "orders", "type": "csv.read", "params": map[string]any{"path": csvPath, "max_rows": 1 << 40}},
		map[string]any{"id": "large", "type": "table.filter", "inputs": []string{"orders"},
			"params": map[string]any{"where": []any{map[string]any{"column": "quantity", "op": "ge", "value": 10}}}},
		map[string]any{"id": "totals", "type": "table.aggregate", "inputs": []string{"large"},
			"params": map[string]any{"group_by": []string{"region", "product"}, "aggregates": []any{
				map[string]any{"op": "count", "as": "orders"}, map[string]any{"op": "sum", "column": "quantity"},
				map[string]any{"op": "mean", "column": "unit_price"}}}},
	}}
	b, _ := json.Marshal(wf)
	check(os.WriteFile(path, b, 0o644))
}

// writeCSV writes a deterministic orders CSV of about size bytes.
func writeCSV(path string, size int64) {
	f, err := os.Create(path)
	check(err)
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	regions := []string{"North", "South", "East", "West", "Central"}
	products := []string{"widget", "gadget", "gizmo", "doohickey", "sprocket", "flange", "bracket"}
	words := strings.Fields("call customer before delivery rush order gift wrap repeat buyer fragile handle with care leave at door backorder expected next week")
	fmt.Fprintln(w, "order_id,region,product,quantity,unit_price,note")
	var n int64
	for id := 1; n < size; id++ {
		note := make([]string, 2+rng.IntN(8))
		for i := range note {
			note[i] = words[rng.IntN(len(words))]
		}
		line := fmt.Sprintf("%d,%s,%s,%d,%.2f,\"%s\"\n", id, regions[rng.IntN(len(regions))], products[rng.IntN(len(products))],
			1+rng.IntN(40), 2+rng.Float64()*118, strings.Join(note, " "))
		k, err := w.WriteString(line)
		check(err)
		n += int64(k)
	}
	check(w.Flush())
	check(f.Close())
}

func hostCPU() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.Index(l, ":"); i > 0 {
				return fmt.Sprintf("%s x%d", strings.TrimSpace(l[i+1:]), countCPU(string(b)))
			}
		}
	}
	return "unknown CPU"
}

func countCPU(s string) int { return strings.Count(s, "processor\t:") }

func goVersion() string {
	out, _ := exec.Command("go", "env", "GOVERSION").Output()
	return strings.TrimSpace(string(out))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
