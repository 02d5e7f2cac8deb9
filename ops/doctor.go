package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/budget"
	"github.com/dagrun/dagrun/worker"
)

// Severity grades a Finding.
type Severity string

// Severities; only SeverityProblem makes Doctor fail.
const (
	SeverityOK      Severity = "ok"
	SeverityInfo    Severity = "info"
	SeverityWarn    Severity = "warn"
	SeverityProblem Severity = "problem"
)

// Finding is one result of `dagrun doctor`.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// DoctorOptions selects what Diagnose checks.
type DoctorOptions struct {
	// MaxCrashes is the workers' Config.MaxCrashes (default 3): runs with
	// MaxCrashes-1 crashes are one crash from the dead-letter set.
	MaxCrashes int
	// Budget is passed to budget.Detect for the local cgroup checks.
	Budget budget.Config
	// SkipLocal skips the checks of the machine doctor runs on (cgroup,
	// child cgroups), for running it from outside a worker pod.
	SkipLocal bool
	// StuckAfter is how long a run may hold an expired lease before it is
	// reported stuck (default 1m).
	StuckAfter time.Duration
}

const doctorUsage = `usage: dagrun doctor [--max-crashes N] [--skip-local]
common flags: --redis URL --queue NAME --json`

// Doctor implements `dagrun doctor`: it checks the deployment from the inside
// and prints each finding with its fix. It returns an *ExitError wrapping
// ErrProblems (exit code 1) when any finding is a problem.
func Doctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("doctor", stderr)
	var opt DoctorOptions
	fs.IntVar(&opt.MaxCrashes, "max-crashes", 3, "the workers' MaxCrashes")
	fs.BoolVar(&opt.SkipLocal, "skip-local", false, "skip the cgroup checks of this machine (when not run inside a worker pod)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("doctor takes no arguments\n%s", doctorUsage)
	}
	rdb, q, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	fs2 := Diagnose(ctx, rdb, q, opt)
	problems := 0
	for _, f := range fs2 {
		if f.Severity == SeverityProblem {
			problems++
		}
	}
	if c.json {
		if err := writeJSON(stdout, map[string]any{"queue": q.Name(), "problems": problems, "findings": fs2}); err != nil {
			return err
		}
	} else {
		for _, f := range fs2 {
			label := map[Severity]string{SeverityOK: "ok", SeverityInfo: "info", SeverityWarn: "WARN", SeverityProblem: "PROBLEM"}[f.Severity]
			fmt.Fprintf(stdout, "%-8s %-14s %s\n", label, f.Check, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(stdout, "%-8s %-14s fix: %s\n", "", "", f.Fix)
			}
		}
		fmt.Fprintf(stdout, "\n%d problem(s)\n", problems)
	}
	if problems > 0 {
		return &ExitError{Code: 1, Err: fmt.Errorf("doctor: %d %w", problems, ErrProblems)}
	}
	return nil
}

// Diagnose runs every check and returns the findings in a fixed order.
func Diagnose(ctx context.Context, rdb redis.UniversalClient, q *worker.Queue, opt DoctorOptions) []Finding {
	if opt.MaxCrashes <= 0 {
		opt.MaxCrashes = 3
	}
	if opt.StuckAfter <= 0 {
		opt.StuckAfter = time.Minute
	}
	var out []Finding
	add := func(check string, sev Severity, fix, format string, a ...any) {
		out = append(out, Finding{Check: check, Severity: sev, Message: fmt.Sprintf(format, a...), Fix: fix})
	}
	var localCap int64
	if !opt.SkipLocal {
		localCap = checkCgroup(opt.Budget, add)
	}
	if !checkRedis(ctx, rdb, add) {
		return out
	}
	st, err := q.Stats(ctx)
	if err != nil {
		add("queue", SeverityProblem, "check the --queue name and Redis ACLs", "cannot read queue %s: %v", q.Name(), err)
		return out
	}
	capacity := checkWorkers(st, add)
	if capacity == 0 {
		capacity = localCap
	}
	checkRuns(ctx, rdb, q, opt, add)
	checkDead(ctx, q, st, add)
	checkPeaks(ctx, q, capacity, add)
	return out
}

type addFunc func(check string, sev Severity, fix, format string, a ...any)

// checkCgroup reports the memory cgroup and whether a child cgroup can be
// made; it returns the budget capacity seen locally (0.80 of the limit).
func checkCgroup(cfg budget.Config, add addFunc) int64 {
	m, err := budget.Detect(cfg)
	if err != nil {
		add("cgroup", SeverityProblem, "run dagrun on Linux with /proc mounted", "cannot read memory: %v", err)
		return 0
	}
	s, err := m.Read()
	if err != nil {
		add("cgroup", SeverityProblem, "check that the cgroup filesystem is mounted readable", "cannot read %s: %v", m.Dir(), err)
		return 0
	}
	switch {
	case s.Source == budget.SourceRSS:
		add("cgroup", SeverityWarn, "run workers in a container with a memory limit (resources.limits.memory); the gate then sees the whole container",
			"no memory cgroup readable: budgeting the process RSS against %s of host memory", bytesH(int64(s.Limit)))
	case !s.LimitFromCgroup:
		add("cgroup", SeverityWarn, "set resources.limits.memory on the worker container (deploy/worker.yaml)",
			"%s at %s has no memory limit: budgeting against %s", s.Source, m.Dir(), bytesH(int64(s.Limit)))
	default:
		add("cgroup", SeverityOK, "", "%s at %s: limit %s, working set %s (%.0f%%)", s.Source, m.Dir(), bytesH(int64(s.Limit)), bytesH(int64(s.WorkingSet)), 100*s.Fraction())
	}
	if m.Dir() != "" {
		checkChildCgroup(m.Dir(), s.Source, add)
	}
	return int64(float64(s.Limit) * budget.DefaultPauseAt)
}

func checkChildCgroup(dir string, src budget.Source, add addFunc) {
	child := filepath.Join(dir, fmt.Sprintf("dagrun-doctor-%d", os.Getpid()))
	fix := "give the pod a writable cgroup (deploy/cgroup-writable-patch.yaml) or accept the watchdog fallback"
	if err := os.Mkdir(child, 0o755); err != nil {
		add("child-cgroup", SeverityWarn, fix,
			"cannot create a child memory cgroup under %s (%v): child processes fall back to the RSS watchdog, which kills a tree over budget but can miss a spike shorter than its poll", dir, err)
		return
	}
	defer os.Remove(child)
	file := "memory.limit_in_bytes"
	if src == budget.SourceCgroupV2 {
		file = "memory.max"
	}
	if _, err := os.Stat(filepath.Join(child, file)); err != nil {
		add("child-cgroup", SeverityWarn, fix+"; on cgroup v2 enable the memory controller in "+filepath.Join(dir, "cgroup.subtree_control"),
			"child cgroup %s has no %s: memory controller not delegated; child processes fall back to the RSS watchdog", child, file)
		return
	}
	add("child-cgroup", SeverityOK, "", "child memory cgroups can be created under %s: child processes get their own kernel-enforced budget", dir)
}

// checkRedis reports reachability, eviction policy and persistence; it
// returns whether Redis answered.
func checkRedis(ctx context.Context, rdb redis.UniversalClient, add addFunc) bool {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		add("redis", SeverityProblem, "check --redis / $DAGRUN_REDIS, the Redis pod and network policies; workers report not ready (/readyz) meanwhile",
			"Redis unreachable: %v", err)
		return false
	}
	cfg := func(name string) (string, error) {
		v, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		return v[name], nil
	}
	policy, err := cfg("maxmemory-policy")
	switch {
	case err != nil:
		add("redis", SeverityWarn, "verify in the provider's console that maxmemory-policy is noeviction",
			"cannot read CONFIG (managed Redis?): %v", err)
		return true
	case policy != "noeviction":
		add("redis", SeverityProblem, "CONFIG SET maxmemory-policy noeviction (and set it in redis.conf or the provider's parameter group)",
			"maxmemory-policy is %s: Redis may evict leases, job records and spilled outputs under memory pressure, losing work silently", policy)
	default:
		add("redis", SeverityOK, "", "reachable, maxmemory-policy noeviction")
	}
	aof, _ := cfg("appendonly")
	save, _ := cfg("save")
	fsync, _ := cfg("appendfsync")
	switch {
	case aof == "yes":
		add("redis-persist", SeverityOK, "", "appendonly yes (appendfsync %s)", fsync)
	case save != "":
		add("redis-persist", SeverityWarn, "appendonly yes with appendfsync everysec (always for no loss)",
			"RDB snapshots only (save %q): a Redis crash loses the jobs and results since the last snapshot", save)
	default:
		add("redis-persist", SeverityWarn, "appendonly yes with appendfsync everysec (always for no loss)",
			"no persistence: a Redis restart loses every queued job, lease and result")
	}
	return true
}

// checkWorkers reports live workers and their gates; it returns the largest
// budget capacity they publish.
func checkWorkers(st *worker.Stats, add addFunc) int64 {
	if len(st.Workers) == 0 {
		sev := SeverityWarn
		if st.Pending > 0 {
			sev = SeverityProblem
		}
		add("workers", sev, "kubectl get pods -l app.kubernetes.io/name=dagrun-worker; kubectl describe pod (Last State: OOMKilled?); dagrun queue stats",
			"no worker heartbeat in the last minute; %d job(s) pending", st.Pending)
		return 0
	}
	var capacity int64
	paused := 0
	for _, w := range st.Workers {
		if w.Capacity > capacity {
			capacity = w.Capacity
		}
		frac := 0.0
		if w.Limit > 0 {
			frac = float64(w.WorkingSet) / float64(w.Limit)
		}
		switch {
		case w.Paused:
			paused++
			add("gate", SeverityWarn, "the gate resumes below 70% of the limit; if it stays paused, a running job holds the memory (dagrun runs list --status running) or the limit is too small",
				"worker %s gate PAUSED: working set %s of %s (%.0f%%), %d job(s) running", w.ID, bytesH(int64(w.WorkingSet)), bytesH(int64(w.Limit)), 100*frac, w.Running)
		default:
			add("gate", SeverityOK, "", "worker %s: working set %s of %s (%.0f%%), peak %s, %d job(s) running, source %s",
				w.ID, bytesH(int64(w.WorkingSet)), bytesH(int64(w.Limit)), 100*frac, bytesH(int64(w.Peak)), w.Running, orDash(w.Source))
		}
	}
	if paused == len(st.Workers) && st.Pending > 0 {
		add("workers", SeverityProblem, "scale out (the KEDA ScaledObject in deploy/ scales on dagrun_worker_gate_paused) or give workers more memory",
			"every live worker's gate is paused and %d job(s) are pending", st.Pending)
	}
	return capacity
}

// checkRuns finds runs one crash from the dead-letter set, runs stuck
// running without a live lease, and suspended runs.
func checkRuns(ctx context.Context, rdb redis.UniversalClient, q *worker.Queue, opt DoctorOptions, add addFunc) {
	runs, err := q.ListRuns(ctx, worker.ListOptions{Limit: 1000})
	if err != nil {
		add("runs", SeverityWarn, "", "cannot list runs: %v", err)
		return
	}
	prefix := "{" + q.Name() + "}:"
	members, _ := rdb.SMembers(ctx, prefix+"running").Result()
	seen := map[string]bool{}
	for _, r := range runs {
		seen[r.ID] = true
	}
	for _, id := range members {
		if !seen[id] {
			if r, err := q.GetRun(ctx, id); err == nil {
				runs = append(runs, r)
			}
		}
	}
	var poison, stuck []string
	var suspended []*worker.Run
	for _, r := range runs {
		if r.Status.Terminal() {
			continue
		}
		if r.Status != worker.StatusSuspended && r.Crashes >= opt.MaxCrashes-1 {
			poison = append(poison, fmt.Sprintf("%s (%s, %d crash(es), last: %s)", r.ID, r.Workflow, r.Crashes, trunc(lastErr(r), 60)))
		}
		if r.Status == worker.StatusRunning {
			_, err := rdb.ZScore(ctx, prefix+"leases", r.ID).Result()
			noLease := err == redis.Nil
			if noLease || (!r.LeaseUntil.IsZero() && time.Since(r.LeaseUntil) > opt.StuckAfter) {
				why := "no lease"
				if !noLease {
					why = "lease expired " + ago(r.LeaseUntil)
				}
				stuck = append(stuck, fmt.Sprintf("%s (%s, %s, worker %s, updated %s)", r.ID, r.Workflow, why, orDash(r.Worker), ago(r.UpdatedAt)))
			}
		}
		if r.Status == worker.StatusSuspended {
			suspended = append(suspended, r)
		}
	}
	if len(poison) > 0 {
		add("poison", SeverityWarn, "one more crash dead-letters them: dagrun runs show RUN; give the workflow a MemoryHint or more memory; or dagrun dlq drop after it lands",
			"%d run(s) at %d crash(es) of MaxCrashes %d: %s", len(poison), opt.MaxCrashes-1, opt.MaxCrashes, strings.Join(poison, "; "))
	} else {
		add("poison", SeverityOK, "", "no run is near the poison-pill threshold (MaxCrashes %d)", opt.MaxCrashes)
	}
	if len(stuck) > 0 {
		add("stuck", SeverityProblem, "a live worker's reconciler requeues such runs within its ReapInterval: start a worker (kubectl scale) and check its logs for reaper errors",
			"%d run(s) marked running without a live lease (their worker died): %s", len(stuck), strings.Join(stuck, "; "))
	} else {
		add("stuck", SeverityOK, "", "no run is stuck running without a lease")
	}
	if len(suspended) > 0 {
		var parts []string
		sev := SeverityInfo
		for _, r := range suspended {
			parts = append(parts, fmt.Sprintf("%s at %v (%s)", r.ID, r.Suspended, ago(r.SuspendedAt)))
			if time.Since(r.SuspendedAt) > 24*time.Hour {
				sev = SeverityWarn
			}
		}
		add("suspended", sev, "dagrun runs approve RUN NODE | dagrun runs reject RUN NODE --reason TEXT",
			"%d run(s) waiting for approval (they hold no worker): %s", len(suspended), strings.Join(parts, "; "))
	}
}

// checkDead groups the dead-letter set by reason and workflow.
func checkDead(ctx context.Context, q *worker.Queue, st *worker.Stats, add addFunc) {
	if st.Dead == 0 {
		add("dead-letters", SeverityOK, "", "dead-letter set is empty")
		return
	}
	dead, err := q.DeadLetters(ctx, 0, 1000)
	if err != nil {
		add("dead-letters", SeverityProblem, "", "%d dead letter(s), cannot read them: %v", st.Dead, err)
		return
	}
	groups := map[string]int{}
	example := map[string]string{}
	for _, r := range dead {
		kind := "unknown"
		if r.LastError != nil {
			kind = string(r.LastError.Kind)
		}
		k := kind + " / " + r.Workflow
		groups[k]++
		if example[k] == "" {
			example[k] = r.ID
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d (e.g. %s)", k, groups[k], example[k]))
	}
	add("dead-letters", SeverityProblem,
		"dagrun dlq show RUN for the reason; killed = the job crashed its worker MaxCrashes times (OOM kill): give it more memory or fix the workflow; exceeds_memory = its expected peak is above the worker budget; then dagrun dlq retry RUN or dagrun dlq drop RUN",
		"%d dead letter(s) by reason / workflow: %s", st.Dead, strings.Join(parts, "; "))
}

// checkPeaks lists the workflows with the highest observed peaks against the
// worker budget.
func checkPeaks(ctx context.Context, q *worker.Queue, capacity int64, add addFunc) {
	peaks, err := q.WorkflowPeaks(ctx)
	if err != nil || len(peaks) == 0 {
		return
	}
	type wf struct {
		name     string
		max, p95 int64
		n        int
	}
	var list []wf
	for name, ps := range peaks {
		s := append([]int64(nil), ps...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		i := int(0.95*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		list = append(list, wf{name: name, max: s[len(s)-1], p95: s[i], n: len(s)})
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].max > list[j].max || list[i].max == list[j].max && list[i].name < list[j].name
	})
	if len(list) > 5 {
		list = list[:5]
	}
	var parts []string
	sev := SeverityInfo
	for _, w := range list {
		note := ""
		if capacity > 0 && w.p95 > capacity {
			sev, note = SeverityProblem, " ABOVE BUDGET"
		} else if capacity > 0 && w.max > capacity && sev != SeverityProblem {
			sev, note = SeverityWarn, " max above budget"
		}
		parts = append(parts, fmt.Sprintf("%s p95 %s max %s over %d run(s)%s", w.name, bytesH(w.p95), bytesH(w.max), w.n, note))
	}
	fix := ""
	if sev != SeverityInfo {
		fix = "jobs whose expected peak (p95) exceeds the budget are dead-lettered exceeds_memory: raise the worker memory limit or reduce the workflow's memory (streaming readers, spill)"
	}
	budgetS := "unknown"
	if capacity > 0 {
		budgetS = bytesH(capacity)
	}
	add("peaks", sev, fix, "highest workflow peaks against the worker budget %s: %s", budgetS, strings.Join(parts, "; "))
}
