// Command testworker is a worker process for the worker package's tests. Its
// executor reads a JSON payload {"sleep_ms", "alloc_mib", "hang", "fail"}:
// it allocates and touches alloc_mib MiB outside the Go heap, sleeps (honouring
// cancellation), and appends "start", "end", "acked" and "fenced" lines to
// <events>/<id>.events. With -ballast-mib it only allocates and sleeps.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/worker"
)

type payload struct {
	SleepMS  int  `json:"sleep_ms"`
	AllocMiB int  `json:"alloc_mib"`
	Hang     bool `json:"hang"`
	Fail     bool `json:"fail"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(1)
	}
}

func alloc(mib int) ([]byte, error) {
	if mib <= 0 {
		return nil, nil
	}
	b, err := syscall.Mmap(-1, 0, mib<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b, nil
}

func run() error {
	addr := flag.String("redis", "", "redis address")
	queue := flag.String("queue", "", "queue name")
	id := flag.String("id", "", "worker id")
	conc := flag.Int("concurrency", 1, "concurrency")
	lease := flag.Duration("lease", time.Second, "lease TTL")
	hb := flag.Duration("heartbeat", 250*time.Millisecond, "heartbeat interval")
	reap := flag.Duration("reap", 500*time.Millisecond, "reap interval")
	poll := flag.Duration("poll", 50*time.Millisecond, "poll interval")
	drain := flag.Duration("drain", 10*time.Second, "drain grace")
	maxCrashes := flag.Int("max-crashes", 3, "max crashes")
	countOnly := flag.Bool("count-only", false, "count-only admission")
	cgroup := flag.String("cgroup", "", "cgroup v1 memory dir to join first")
	events := flag.String("events", "", "events directory")
	ballast := flag.Int("ballast-mib", 0, "only hold this much memory")
	verbose := flag.Bool("v", false, "log to stderr")
	flag.Parse()

	if *cgroup != "" {
		if err := os.WriteFile(filepath.Join(*cgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *ballast > 0 {
		b, err := alloc(*ballast)
		if err != nil {
			return err
		}
		fmt.Println("ballast ready")
		<-ctx.Done()
		_ = b[0]
		return nil
	}

	var mu sync.Mutex
	var ev *os.File
	if *events != "" {
		f, err := os.OpenFile(filepath.Join(*events, *id+".events"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		ev = f
	}
	record := func(kind string, j *worker.Job, extra string) {
		if ev == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(ev, "%s %s %d %s %s\n", kind, j.RunID, j.Attempt, *id, extra)
	}

	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		var p payload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return worker.Result{}, fmt.Errorf("%w: payload: %v", worker.ErrPermanent, err)
		}
		record("start", j, "")
		b, err := alloc(p.AllocMiB)
		if err != nil {
			return worker.Result{}, err
		}
		defer func() {
			if b != nil {
				_ = syscall.Munmap(b)
			}
		}()
		if p.Hang {
			select {}
		}
		t := time.NewTimer(time.Duration(p.SleepMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			record("cancelled", j, context.Cause(ctx).Error())
			return worker.Result{}, context.Cause(ctx)
		}
		record("end", j, "")
		if p.Fail {
			return worker.Result{}, errors.New("asked to fail")
		}
		return worker.Result{PeakBytes: int64(p.AllocMiB) << 20, Nodes: map[string]string{"main": "succeeded", "by": *id}}, nil
	})

	rdb := redis.NewClient(&redis.Options{Addr: *addr, MaxRetries: 1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	defer rdb.Close()
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	w, err := worker.New(worker.Config{
		Redis: rdb, Executor: exec, Queue: *queue, ID: *id, Concurrency: *conc,
		LeaseTTL: *lease, HeartbeatInterval: *hb, ReapInterval: *reap, PollInterval: *poll,
		DrainGrace: *drain, MaxCrashes: *maxCrashes, CountOnly: *countOnly,
		Budget: budget.Config{}, Logger: logger,
		OnFinish: func(j *worker.Job, outcome string, err error) {
			if errors.Is(err, worker.ErrLeaseLost) {
				record("fenced", j, outcome)
			} else if err == nil {
				record("acked", j, outcome)
			}
		},
	})
	if err != nil {
		return err
	}
	fmt.Println("worker ready")
	return w.Run(ctx)
}
