package worker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

// BenchmarkScrape measures one /metrics scrape of a worker (queue depths read
// from a real Redis, 20 workflows x 5 node types of histograms filled).
func BenchmarkScrape(b *testing.B) {
	srv := redistest.Start(b)
	reg := prometheus.NewRegistry()
	done := make(chan struct{})
	n := 0
	w, err := worker.New(worker.Config{Redis: srv.Client(), Queue: "bench", Registerer: reg, GoMemLimit: -1, PollInterval: time.Millisecond,
		Budget: budget.Config{Budget: 64 << 30},
		Executor: worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
			var ns []worker.NodeStat
			for t := 0; t < 5; t++ {
				ns = append(ns, worker.NodeStat{Node: fmt.Sprint(t), Type: fmt.Sprintf("type%d", t), PeakBytes: 1 << 26, SpilledBytes: 1 << 20, ChildPeakBytes: 1 << 25})
			}
			if n++; n == 20 {
				close(done)
			}
			return worker.Result{PeakBytes: 1 << 28, NodeStats: ns}, nil
		})})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	q := w.Queue()
	for i := 0; i < 20; i++ {
		_, _ = q.Enqueue(ctx, worker.EnqueueRequest{Workflow: fmt.Sprintf("wf%d", i)})
	}
	<-done
	hs := httptest.NewServer(w.Handler())
	defer hs.Close()
	b.ResetTimer()
	var size int64
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(hs.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(size), "bytes/scrape")
	cancel()
	<-ran
}

// BenchmarkLivezUnderCPULoad measures /livez round trips (client in the same
// process) while 4 goroutines per core spin, and reports the median and
// worst latency.
func BenchmarkLivezUnderCPULoad(b *testing.B) {
	srv := redistest.Start(b)
	w, err := worker.New(worker.Config{Redis: srv.Client(), Queue: "benchlive", GoMemLimit: -1,
		Executor: worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(w.Handler())
	defer hs.Close()
	stop := make(chan struct{})
	for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
		go func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for k := 0; k < 1e5; k++ {
					x += k
				}
			}
		}()
	}
	defer close(stop)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := http.Get(hs.URL + "/livez")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("/livez %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
