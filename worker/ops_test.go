package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/worker"
)

// inproc starts an in-process worker on rdb and queue with cfg's executor and
// returns it with a function that stops it and waits for Run to return.
func inproc(t *testing.T, cfg worker.Config) (*worker.Worker, func()) {
	t.Helper()
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = time.Second
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = 200 * time.Millisecond
	}
	cfg.PollInterval = 20 * time.Millisecond
	cfg.SampleInterval = 20 * time.Millisecond
	cfg.GoMemLimit = -1
	if cfg.Budget.Budget == 0 {
		cfg.Budget = quietBudget(t, 4<<30)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return w, stop
}

// scrape fetches url and returns the samples of the text exposition format
// as "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// jobPayload is what the in-process executors of these tests read.
type jobPayload struct {
	Peak  int64 `json:"peak"`
	Block bool  `json:"block"`
	Burn  bool  `json:"burn"`
	Gate  bool  `json:"gate"`
}

// TestMetricsScrapedWhileJobsRun: a worker process is SIGKILLed mid-job; two
// in-process workers serving /metrics on real listeners recover it (counted
// once across both), run it and more jobs; scrapes while a job blocks show the
// queue depth and in-flight count, and after the jobs the peak histogram
// holds exactly the peaks recorded on the runs.
func TestMetricsScrapedWhileJobsRun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()

	// A job whose worker is SIGKILLed mid-job, like an OOM kill.
	p := e.start("victim-worker")
	victim := e.enqueue("victim", `{"sleep_ms":30000,"peak":111000000}`, 0)
	eventually(t, 10*time.Second, "victim running", func() bool { return e.status(victim) == worker.StatusRunning })
	p.signal(syscall.SIGKILL)
	p.wait(t, 5*time.Second)

	release := make(chan struct{})
	var blocked atomic.Int32
	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		var pl jobPayload
		if err := json.Unmarshal(j.Payload, &pl); err != nil {
			return worker.Result{}, fmt.Errorf("%w: %v", worker.ErrPermanent, err)
		}
		if pl.Block {
			blocked.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return worker.Result{}, context.Cause(ctx)
			}
		}
		return worker.Result{PeakBytes: pl.Peak, NodeStats: []worker.NodeStat{
			{Node: "read", Type: "xlsx.read", Status: "succeeded", PeakBytes: pl.Peak / 2, SpilledBytes: 1000},
			{Node: "conv", Type: "subprocess", Status: "succeeded", PeakBytes: pl.Peak / 4, ChildPeakBytes: pl.Peak / 4},
		}}, nil
	})
	var addrs []string
	for i := 0; i < 2; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
		addrs = append(addrs, "http://"+addr+"/metrics")
		reg := prometheus.NewRegistry()
		inproc(t, worker.Config{Redis: e.srv.Client(), Queue: e.queue, ID: fmt.Sprintf("m%d", i), Executor: exec,
			Registerer: reg, MetricsAddr: addr, LiveOutputBytes: func() int64 { return 4096 }})
	}
	eventually(t, 15*time.Second, "victim recovered and rerun", func() bool { return e.status(victim) == worker.StatusSucceeded })
	if r := e.run(victim); r.Crashes != 1 || r.Attempts != 2 || r.PeakBytes != 111000000 {
		t.Fatalf("victim record: crashes %d attempts %d peak %d, want 1, 2, 111000000", r.Crashes, r.Attempts, r.PeakBytes)
	}

	// A blocking job and three behind it: 1 in flight on one worker... both
	// workers are free, so block two and queue three.
	e.enqueue("blk1", `{"block":true,"peak":50000000}`, 0)
	e.enqueue("blk2", `{"block":true,"peak":60000000}`, 0)
	eventually(t, 10*time.Second, "both blocking jobs started", func() bool { return blocked.Load() == 2 })
	for i := 1; i <= 3; i++ {
		e.enqueue(fmt.Sprintf("p%d", i), fmt.Sprintf(`{"peak":%d}`, i*100000000), 0)
	}
	sum := func(name string) float64 {
		var s float64
		for _, a := range addrs {
			s += scrape(t, a)[name]
		}
		return s
	}
	m0 := scrape(t, addrs[0])
	if got := m0[`dagrun_queue_pending{queue="`+e.queue+`"}`]; got != 3 {
		t.Errorf("dagrun_queue_pending = %v, want 3", got)
	}
	if got := m0[`dagrun_queue_inflight{queue="`+e.queue+`"}`]; got != 2 {
		t.Errorf("dagrun_queue_inflight = %v, want 2", got)
	}
	if got := sum("dagrun_worker_jobs_active"); got != 2 {
		t.Errorf("sum dagrun_worker_jobs_active = %v, want 2", got)
	}
	if got := m0["dagrun_executor_output_bytes_live"]; got != 4096 {
		t.Errorf("dagrun_executor_output_bytes_live = %v", got)
	}
	if m0["dagrun_memory_limit_bytes"] != 4<<30 || m0["dagrun_memory_working_set_bytes"] <= 0 {
		t.Errorf("memory gauges: limit %v working set %v", m0["dagrun_memory_limit_bytes"], m0["dagrun_memory_working_set_bytes"])
	}
	close(release)
	ids := []string{"victim", "blk1", "blk2", "p1", "p2", "p3"}
	eventually(t, 10*time.Second, "all jobs done", func() bool { return e.allSucceeded(ids) })

	var wantSum float64
	for _, id := range ids {
		wantSum += float64(e.run(id).PeakBytes)
	}
	if got := sum(`dagrun_worker_jobs_total{outcome="killed"}`); got != 1 {
		t.Errorf("killed jobs counted %v times across workers, want 1", got)
	}
	if got := sum(`dagrun_worker_recovered_jobs_total{reason="lease_expired"}`); got != 1 {
		t.Errorf("recovered lease_expired = %v, want 1", got)
	}
	if got := sum(`dagrun_worker_jobs_total{outcome="succeeded"}`); got != 6 {
		t.Errorf("succeeded = %v, want 6", got)
	}
	if got := sum("dagrun_worker_claims_total"); got != 6 {
		t.Errorf("claims = %v, want 6", got)
	}
	if got := sum(`dagrun_job_peak_bytes_count{workflow="wf"}`); got != 6 {
		t.Errorf("job peak count = %v, want 6", got)
	}
	if got := sum(`dagrun_job_peak_bytes_sum{workflow="wf"}`); got != wantSum {
		t.Errorf("job peak sum = %v, want %v (sum of recorded run peaks)", got, wantSum)
	}
	// p3's 300 MB peak falls in the (256 MiB, 512 MiB] bucket.
	le256 := sum(`dagrun_job_peak_bytes_bucket{workflow="wf",le="2.68435456e+08"}`)
	le512 := sum(`dagrun_job_peak_bytes_bucket{workflow="wf",le="5.36870912e+08"}`)
	if le512-le256 != 1 {
		t.Errorf("jobs in (256MiB,512MiB] = %v, want 1 (p3)", le512-le256)
	}
	if got := sum(`dagrun_node_spilled_bytes_total{node_type="xlsx.read",workflow="wf"}`); got != 6000 {
		t.Errorf("spilled bytes = %v, want 6000", got)
	}
	if got := sum(`dagrun_node_child_peak_bytes_count{node_type="subprocess",workflow="wf"}`); got != 6 {
		t.Errorf("child peak count = %v, want 6", got)
	}
	if r := e.run("p2"); len(r.NodeStats) != 2 || r.NodeStats[0].PeakBytes != 100000000 {
		t.Errorf("p2 node stats on record = %+v", r.NodeStats)
	}
	if st, _ := e.q.Stats(ctx); len(st.Workers) < 2 || st.Workers[0].Capacity == 0 || st.Workers[0].Source == "" || st.Workers[0].Peak == 0 {
		t.Errorf("published worker stats = %+v", st.Workers)
	}
}

// TestLivezUnderLoadReadyzFollowsRedis: with every core busy in jobs, /livez
// keeps answering; /readyz fails while Redis is killed and recovers when it
// restarts.
func TestLivezUnderLoadReadyzFollowsRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	q := worker.NewQueue(srv.Client(), "health")
	var burning atomic.Int32
	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		burning.Add(1)
		defer burning.Add(-1)
		done := make(chan struct{})
		n := runtime.NumCPU() // two jobs: twice as many spinning goroutines as cores
		for i := 0; i < n; i++ {
			go func() {
				x := 0
				for {
					select {
					case <-done:
						return
					default:
					}
					for k := 0; k < 1e5; k++ {
						x += k
					}
				}
			}()
		}
		<-ctx.Done()
		close(done)
		return worker.Result{}, context.Cause(ctx)
	})
	addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	defer rdb.Close()
	_, stop := inproc(t, worker.Config{Redis: rdb, Queue: "health", Executor: exec, Concurrency: 2, MetricsAddr: addr,
		DrainGrace: 100 * time.Millisecond})
	for i := 0; i < 2; i++ {
		if _, err := q.Enqueue(context.Background(), worker.EnqueueRequest{Workflow: "burn", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// The deployment's probes time out after 5s (deploy/worker.yaml). This
	// client runs in the saturated process too, so it is slower than a
	// kubelet's: in-process round trips with 8 busy goroutines on 2 cores
	// took 0.23-1.3s here, from a separate process 0.17-0.42s.
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 10*time.Second, "both jobs burning CPU", func() bool { return burning.Load() == 2 })
	for i := 0; i < 6; i++ {
		if c := get("/livez"); c != 200 {
			t.Fatalf("/livez #%d under load = %d, want 200 within the probe timeout", i, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := get("/readyz"); c != 200 {
		t.Fatalf("/readyz with Redis up = %d", c)
	}
	srv.Kill()
	eventually(t, 10*time.Second, "/readyz 503 with Redis killed", func() bool { return get("/readyz") == 503 })
	if c := get("/livez"); c != 200 {
		t.Fatalf("/livez with Redis down = %d", c)
	}
	srv.Restart()
	eventually(t, 10*time.Second, "/readyz 200 after Redis restart", func() bool { return get("/readyz") == 200 })
	stop()
}

// TestSuspendFreesSlotApproveResumes: with Concurrency 1, a run that suspends
// at an approval node frees the worker's only slot (another job runs in it),
// is not reaped, costs no attempt, and after Approve is re-run by the worker
// and finishes; a rejected run fails with the reason.
func TestSuspendFreesSlotApproveResumes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	q := worker.NewQueue(srv.Client(), "susp")
	approver := worker.NewApprover(q)
	calls := map[string]*atomic.Int32{"s1": {}, "s2": {}, "s3": {}, "other": {}}
	readS3, approvedS3 := make(chan struct{}), make(chan struct{})
	exec := worker.ExecutorFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
		n := calls[j.RunID].Add(1)
		var pl jobPayload
		_ = json.Unmarshal(j.Payload, &pl)
		if pl.Gate {
			d, err := approver.Decision(ctx, j.RunID, "gate")
			if err != nil {
				return worker.Result{}, err
			}
			if j.RunID == "s3" && n == 1 {
				// The approval lands between reading the decision and
				// reporting the suspension.
				close(readS3)
				<-approvedS3
			}
			switch d {
			case nodes.Pending:
				return worker.Result{Nodes: map[string]string{"src": "succeeded", "gate": "suspended"}, Suspended: []string{"gate"}},
					fmt.Errorf("waiting for approval of \"gate\": %w", worker.ErrSuspended)
			case nodes.Rejected:
				return worker.Result{}, fmt.Errorf("%w: %w", worker.ErrPermanent, nodes.ErrRejected)
			}
		}
		return worker.Result{Nodes: map[string]string{"src": "succeeded", "gate": "succeeded"}}, nil
	})
	reg := prometheus.NewRegistry()
	addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	_, stop := inproc(t, worker.Config{Redis: srv.Client(), Queue: "susp", Executor: exec, Concurrency: 1, Registerer: reg, MetricsAddr: addr,
		LeaseTTL: 300 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond, ReapInterval: 50 * time.Millisecond})
	for _, id := range []string{"s1", "s2"} {
		if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: id, Workflow: "approve", Payload: []byte(`{"gate":true}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "other", Workflow: "plain", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	get := func(id string) *worker.Run {
		r, err := q.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	eventually(t, 10*time.Second, "s1, s2 suspended and other succeeded in the only slot", func() bool {
		return get("s1").Status == worker.StatusSuspended && get("s2").Status == worker.StatusSuspended && get("other").Status == worker.StatusSucceeded
	})
	// Several reap/reconcile rounds (LeaseTTL 300ms, ReapInterval 50ms) must
	// leave the suspended runs alone.
	time.Sleep(time.Second)
	r := get("s1")
	if r.Status != worker.StatusSuspended || r.Attempts != 0 || r.Crashes != 0 || len(r.Suspended) != 1 || r.Suspended[0] != "gate" ||
		!strings.Contains(r.SuspendReason, "waiting for approval") || r.Nodes["gate"] != "suspended" {
		t.Fatalf("s1 = %s attempts %d crashes %d suspended %v reason %q nodes %v", r.Status, r.Attempts, r.Crashes, r.Suspended, r.SuspendReason, r.Nodes)
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Suspended != 2 || st.Running != 0 || st.Pending != 0 || st.Counters["failed"] != 0 || st.Counters["crashes"] != 0 {
		t.Fatalf("stats with two suspended runs: %+v", st)
	}
	if sus, err := q.SuspendedRuns(ctx, 0, 10); err != nil || len(sus) != 2 {
		t.Fatalf("SuspendedRuns = %d, %v", len(sus), err)
	}
	if err := q.Approve(ctx, "s1", "nope", "alice"); !errors.Is(err, worker.ErrNotSuspended) {
		t.Fatalf("approve at the wrong node: %v, want ErrNotSuspended", err)
	}
	if err := q.Approve(ctx, "missing", "gate", "alice"); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("approve unknown run: %v, want ErrNotFound", err)
	}
	if err := q.Approve(ctx, "s1", "gate", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := q.Reject(ctx, "s2", "gate", "bob", "numbers look wrong"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "s1 resumed and succeeded", func() bool { return get("s1").Status == worker.StatusSucceeded })
	r = get("s1")
	if r.Attempts != 1 || calls["s1"].Load() != 2 || r.Decisions["gate"] != "approved" || r.Nodes["gate"] != "succeeded" {
		t.Fatalf("s1 after approval: attempts %d executor calls %d decisions %v nodes %v", r.Attempts, calls["s1"].Load(), r.Decisions, r.Nodes)
	}
	r2 := get("s2")
	if r2.Status != worker.StatusFailed || r2.LastError == nil || r2.LastError.Kind != worker.KindRejected ||
		!strings.Contains(r2.LastError.Message, "numbers look wrong") || calls["s2"].Load() != 1 {
		t.Fatalf("s2 after reject: %s %+v calls %d", r2.Status, r2.LastError, calls["s2"].Load())
	}
	if err := q.Approve(ctx, "s2", "gate", "alice"); !errors.Is(err, worker.ErrNotSuspended) {
		t.Fatalf("approve a failed run: %v, want ErrNotSuspended", err)
	}
	// s3 is approved while its attempt runs: the suspension it then reports
	// must not park it forever.
	if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "s3", Workflow: "approve", Payload: []byte(`{"gate":true}`)}); err != nil {
		t.Fatal(err)
	}
	<-readS3
	if err := q.Approve(ctx, "s3", "gate", "alice"); err != nil {
		t.Fatal(err)
	}
	close(approvedS3)
	eventually(t, 10*time.Second, "s3 resumed at once and succeeded", func() bool { return get("s3").Status == worker.StatusSucceeded })
	if r := get("s3"); r.Attempts != 1 || calls["s3"].Load() != 2 {
		t.Fatalf("s3: attempts %d calls %d", r.Attempts, calls["s3"].Load())
	}
	m := scrape(t, "http://"+addr+"/metrics")
	if m[`dagrun_worker_jobs_total{outcome="suspended"}`] != 3 || m[`dagrun_worker_jobs_total{outcome="failed"}`] != 0 || m[`dagrun_worker_jobs_total{outcome="succeeded"}`] != 3 {
		t.Errorf("outcomes: suspended %v failed %v succeeded %v", m[`dagrun_worker_jobs_total{outcome="suspended"}`],
			m[`dagrun_worker_jobs_total{outcome="failed"}`], m[`dagrun_worker_jobs_total{outcome="succeeded"}`])
	}
	stop()
}
