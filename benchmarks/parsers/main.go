// Command parsers benchmarks dagrun's streaming parsers against peers on
// generated fixtures. Every (method, file) case runs in its own child
// process (this program re-executed with -child); peak RSS comes from the
// OS (wait4 rusage of the child), wall time and peak heap (runtime/metrics,
// sampled every 5 ms) from the child. Each case runs -runs times and the
// median is reported.
//
//	go run ./benchmarks/parsers -runs 3            # everything
//	go run ./benchmarks/parsers -cases 'rows-500k' # a subset (regexp on "method file")
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dagrun/dagrun/internal/fixture"
)

type benchCase struct {
	method string
	file   string
}

var cases = []benchCase{
	{"noop", "small.csv"}, // process baseline: the same binary doing nothing
	{"dagrun-xlsx", "Ofsted report 200 entries.xlsx"},
	{"excelize-getrows", "Ofsted report 200 entries.xlsx"},
	{"excelize-rows", "Ofsted report 200 entries.xlsx"},
	{"xlsxreader", "Ofsted report 200 entries.xlsx"},
	{"dagrun-xlsx", "rows-500k.xlsx"},
	{"excelize-getrows", "rows-500k.xlsx"},
	{"excelize-rows", "rows-500k.xlsx"},
	{"xlsxreader", "rows-500k.xlsx"},
	{"dagrun-xlsx", "rows-100k.xlsx"},
	{"dagrun-xlsx", "rows-1m.xlsx"},
	{"excelize-rows", "rows-100k.xlsx"},
	{"excelize-rows", "rows-1m.xlsx"},
	{"xlsxreader", "rows-100k.xlsx"},
	{"xlsxreader", "rows-1m.xlsx"},
	{"dagrun-pdf", "text-6MB.pdf"},
	{"whole-pdf", "text-6MB.pdf"},
	{"dagrun-pptx", "slides-6MB.pptx"},
	{"whole-pptx", "slides-6MB.pptx"},
	{"dagrun-pptx", "proposal-6.4MB.pptx"},
	{"whole-pptx", "proposal-6.4MB.pptx"},
	{"dagrun-docx", "doc-6MB.docx"},
	{"whole-docx", "doc-6MB.docx"},
}

// result is what a child reports.
type result struct {
	Items    int64   `json:"items"` // rows, pages, slides or blocks
	Units    string  `json:"units"`
	Cells    int64   `json:"cells"` // cells or text bytes touched
	Seconds  float64 `json:"seconds"`
	PeakHeap uint64  `json:"peak_heap"` // max sampled heap objects, garbage included
	PeakLive uint64  `json:"peak_live"` // max live heap after a GC
}

func main() {
	child := flag.String("child", "", "internal: run one method")
	file := flag.String("file", "", "internal: input file")
	runs := flag.Int("runs", 3, "runs per case")
	filter := flag.String("cases", "", "regexp selecting cases by \"method file\"")
	cpuprofile := flag.String("cpuprofile", "", "with -child: write a CPU profile")
	flag.Parse()
	ctx := context.Background()
	if *child != "" {
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		res, err := runChild(ctx, *child, *file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return // deferred StopCPUProfile runs
	}
	if err := runParent(ctx, *runs, *filter); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func runParent(ctx context.Context, runs int, filter string) error {
	re, err := regexp.Compile(filter)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("go %s, GOMAXPROCS %d, %d runs per case, medians; RSS = peak RSS of the child process (wait4 rusage)\n\n", runtime.Version(), runtime.GOMAXPROCS(0), runs)
	fmt.Println("| method | file | size MB | items | peak RSS MB | peak heap MB | peak live heap MB | seconds | items/s | all runs RSS MB | all runs heap MB | all runs s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range cases {
		if !re.MatchString(c.method + " " + c.file) {
			continue
		}
		path, err := fixture.Path(ctx, c.file)
		if err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		var rss, secs, heaps, lives []float64
		var last result
		for i := 0; i < runs; i++ {
			cmd := exec.CommandContext(ctx, self, "-child", c.method, "-file", path)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s %s: %w: %s", c.method, c.file, err, errb.String())
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if err := json.Unmarshal(out.Bytes(), &last); err != nil {
				return fmt.Errorf("%s %s: %w", c.method, c.file, err)
			}
			rss = append(rss, float64(ru.Maxrss)/1024) // KiB -> MiB
			secs = append(secs, last.Seconds)
			heaps = append(heaps, float64(last.PeakHeap)/(1<<20))
			lives = append(lives, float64(last.PeakLive)/(1<<20))
		}
		ms, mr := median(secs), median(rss)
		fmt.Printf("| %s | %s | %.1f | %d %s | %.1f | %.1f | %.1f | %.2f | %.0f | %s | %s | %s |\n", c.method, c.file, float64(st.Size())/1e6, last.Items, last.Units, mr, median(heaps), median(lives), ms, float64(last.Items)/ms, join(rss, "%.1f"), join(heaps, "%.1f"), join(secs, "%.2f"))
	}
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func join(v []float64, f string) string {
	var p []string
	for _, x := range v {
		p = append(p, fmt.Sprintf(f, x))
	}
	return strings.Join(p, " ")
}

// runChild runs one method on one file, sampling the heap.
func runChild(ctx context.Context, method, path string) (result, error) {
	var peak, live atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			if v := s[1].Value.Uint64(); v > live.Load() {
				live.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	fn, ok := methods[method]
	if !ok {
		return result{}, fmt.Errorf("unknown method %q", method)
	}
	res, err := fn(ctx, path)
	res.Seconds = time.Since(start).Seconds()
	close(stop)
	<-done
	res.PeakHeap = peak.Load()
	res.PeakLive = live.Load()
	return res, err
}

var methods = map[string]func(ctx context.Context, path string) (result, error){}
