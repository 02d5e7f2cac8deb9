package subproc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagrun/dagrun/subproc"
)

// table generates rows JSON lines on the fly (the input is never in memory).
type table struct {
	n, i int
	buf  []byte
	read int64
}

func (r *table) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.buf = fmt.Appendf(r.buf[:0], `{"id":%d,"customer":"customer <%d>","amount":%d.25,"region":"eu-west-%d","product":"sku-%05d","note":"%s"}`+"\n",
			r.i, r.i, r.i%10000, r.i%3, r.i%20000, strings.Repeat("lorem ipsum ", 6))
		r.i++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.read += int64(n)
	return n, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkDocgen runs testdata/scripts/docgen.js over a generated table of
// 100k and 1M rows in cgroup, watchdog and none mode, and reports the child's
// peak memory as the mode measures it (peak-MiB), the tree PSS the sampler saw
// (sampled-MiB), input rows/s and output MB.
func BenchmarkDocgen(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip("node not installed")
	}
	script, _ := filepath.Abs("../../testdata/scripts/docgen.js")
	sizes := []int{100_000, 1_000_000}
	if s := os.Getenv("DAGRUN_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("DAGRUN_BENCH_ROWS=%q: %v", s, err)
		}
		sizes = []int{n}
	}
	for _, mode := range []subproc.Mode{subproc.ModeCgroup, subproc.ModeWatchdog, subproc.ModeNone} {
		for _, rows := range sizes {
			b.Run(fmt.Sprintf("mode=%s/rows=%d", mode, rows), func(b *testing.B) {
				var peak, sampled, outBytes int64
				var elapsed time.Duration
				for i := 0; i < b.N; i++ {
					out := &counter{}
					res, err := subproc.Run(context.Background(), subproc.Spec{
						Path: script, Args: []string{"bench"}, Node: &subproc.NodeOptions{},
						Stdin: &table{n: rows}, Stdout: out,
						MemoryLimit: 256 << 20, Mode: mode, Timeout: 10 * time.Minute,
					})
					if err != nil {
						b.Fatal(err)
					}
					peak, sampled = max(peak, res.PeakBytes), max(sampled, res.SampledPeakBytes)
					outBytes += out.n
					elapsed += res.Duration
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
				b.ReportMetric(float64(sampled)/(1<<20), "sampled-MiB")
				b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
				b.ReportMetric(float64(outBytes)/float64(b.N)/1e6, "out-MB")
			})
		}
	}
}
