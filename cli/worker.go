package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun"
	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/worker"
)

func defaultRedis(env *Env) string {
	if u := env.Getenv("DAGRUN_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

func redisClient(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, invalid("--redis: %v", err)
	}
	c := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, withCode(ExitError, fmt.Errorf("redis %s unreachable: %w", opts.Addr, err))
	}
	return c, nil
}

func cmdWorker(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "worker", "worker [flags]")
	var lf logFlags
	lf.register(fs)
	redisURL := fs.String("redis", defaultRedis(env), "Redis URL of the queue ($DAGRUN_REDIS)")
	queue := fs.String("queue", "dagrun", "queue name")
	conc := fs.Int("concurrency", 4, "jobs run at once at most (the memory gate may admit fewer)")
	pauseAt := fs.Float64("pause-at", 0.80, "stop claiming at this fraction of the memory limit (working set)")
	resumeAt := fs.Float64("resume-at", 0.70, "claim again below this fraction")
	budgetS := fs.String("budget", "", "memory budget when the container has no limit (default: host memory)")
	lease := fs.Duration("lease", 30*time.Second, "lease of a claimed job; a dead worker's job is recovered after lease + reap interval")
	heartbeat := fs.Duration("heartbeat", 0, "lease renewal interval (default lease/3)")
	reap := fs.Duration("reap-interval", 0, "how often expired leases are reaped (default lease/2)")
	maxCrashes := fs.Int("max-crashes", 3, "dead-letter a job after this many crashed attempts (SIGKILL, OOM kill)")
	maxAttempts := fs.Int("max-attempts", 5, "attempts per job in total")
	jobTimeout := fs.Duration("job-timeout", 0, "cancel a job after this long (0: never)")
	drain := fs.Duration("drain-grace", 25*time.Second, "on SIGTERM, let running jobs finish this long, then put them back")
	metrics := fs.String("metrics-addr", ":9090", "listen address for /metrics, /livez and /readyz (empty: off)")
	storeURL := fs.String("store", "", "spill store (default: the queue's Redis); dir:///path for a local directory")
	threshold := fs.String("spill-threshold", "32MiB", "spill outputs larger than this")
	child := fs.String("child-mode", "auto", "child process budgets: auto, cgroup, watchdog, none")
	baseDir := fs.String("base-dir", ".", "directory against which relative file paths in workflows resolve")
	countOnly := fs.Bool("count-only", false, "admit by concurrency alone, ignoring memory (the incident's worker; for measuring)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(env.Stderr)
	if err != nil {
		return err
	}
	th, err := dag.ParseByteSize(*threshold)
	if err != nil {
		return invalid("--spill-threshold: %v", err)
	}
	var bud uint64
	if *budgetS != "" {
		b, err := dag.ParseByteSize(*budgetS)
		if err != nil {
			return invalid("--budget: %v", err)
		}
		bud = uint64(b)
	}
	mode, err := childMode(*child)
	if err != nil {
		return err
	}
	rdb, err := redisClient(ctx, *redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var store spill.Store
	if *storeURL == "" {
		st, err := spill.NewRedis(rdb, spill.Config{Prefix: "dagrun-spill-" + *queue})
		if err != nil {
			return withCode(ExitError, err)
		}
		store = st
	} else {
		st, err := spill.Open(ctx, *storeURL)
		if err != nil {
			return withCode(ExitError, err)
		}
		defer st.Close()
		store = st
	}
	q := worker.NewQueue(rdb, *queue)
	eng, err := dagrun.New(dagrun.Config{
		Store: store,
		Nodes: nodes.Options{BaseDir: *baseDir, Logger: log, ChildMode: mode, Approver: worker.NewApprover(q)},
		Exec:  dag.Config{SpillThreshold: int64(th), Logger: log},
	})
	if err != nil {
		return invalid("%v", err)
	}
	w, err := worker.New(worker.Config{
		Redis: rdb, Executor: eng.WorkerExecutor(), Queue: *queue, Concurrency: *conc,
		LeaseTTL: *lease, HeartbeatInterval: *heartbeat, ReapInterval: *reap,
		MaxAttempts: *maxAttempts, MaxCrashes: *maxCrashes, JobTimeout: *jobTimeout, DrainGrace: *drain,
		Budget: budget.Config{Budget: bud}, Gate: budget.GateConfig{PauseAt: *pauseAt, ResumeAt: *resumeAt},
		CountOnly: *countOnly, MetricsAddr: *metrics, Logger: log,
		LiveOutputBytes: eng.LiveOutputBytes, OnPressure: eng.Relieve,
	})
	if err != nil {
		return invalid("%v", err)
	}
	fmt.Fprintf(env.Stderr, "dagrun worker on queue %q (%s), metrics on %s\n", *queue, *redisURL, *metrics)
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return withCode(ExitError, err)
	}
	return nil
}

func cmdEnqueue(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "enqueue", "enqueue [flags] WORKFLOW.json")
	redisURL := fs.String("redis", defaultRedis(env), "Redis URL of the queue ($DAGRUN_REDIS)")
	queue := fs.String("queue", "dagrun", "queue name")
	runID := fs.String("run-id", "", "run id (default random; reusing one is refused, so retries of enqueue are safe)")
	memory := fs.String("memory", "", "expected peak memory of the run (default: the workflow's history)")
	attempts := fs.Int("max-attempts", 0, "attempts for this job (default: the worker's)")
	class := fs.String("class", "", "resource class, kept on the run record")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return invalid("enqueue needs one workflow file")
	}
	payload, err := os.ReadFile(pos[0])
	if err != nil {
		return invalid("%v", err)
	}
	eng, _ := dagrun.New(dagrun.Config{})
	plan, err := eng.Parse(payload, pos[0])
	if err != nil {
		return err
	}
	var hint int64
	if *memory != "" {
		b, err := dag.ParseByteSize(*memory)
		if err != nil {
			return invalid("--memory: %v", err)
		}
		hint = int64(b)
	} else {
		for _, n := range plan.Nodes() {
			hint += int64(n.Memory)
		}
	}
	rdb, err := redisClient(ctx, *redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	id, err := worker.NewQueue(rdb, *queue).Enqueue(ctx, worker.EnqueueRequest{
		RunID: *runID, Workflow: plan.Workflow.Name, Payload: payload, MemoryHint: hint, MaxAttempts: *attempts, Class: *class})
	if err != nil {
		if errors.Is(err, worker.ErrDuplicate) {
			return invalid("%v", err)
		}
		return withCode(ExitError, err)
	}
	fmt.Fprintln(env.Stdout, id)
	return nil
}
