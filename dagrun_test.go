package dagrun_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagrun/dagrun"
	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/nodes"
	"github.com/dagrun/dagrun/spill"
	"github.com/dagrun/dagrun/worker"
)

const approvalWF = `{"name": "approval-e2e", "nodes": [
  {"id": "draft", "type": "llm.mock", "params": {"reply_bytes": "200KiB", "seed": 7}},
  {"id": "review", "type": "human.approval", "inputs": ["draft"], "params": {"message": "ship it?"}},
  {"id": "final", "type": "llm.mock", "inputs": ["review"], "params": {"reply_bytes": 1000, "seed": 8}},
  {"id": "save", "type": "file.write", "inputs": ["final"], "params": {"path": "%s"}}
]}`

// A run suspended at a human.approval node holds no worker slot (another
// job runs in the only one), and after approval any worker resumes it from
// its spilled outputs with the same result as an uninterrupted run.
func TestSuspendApproveResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := redistest.Start(t)
	rdb := srv.Client()
	store, err := spill.NewRedis(rdb, spill.Config{Prefix: "spill"})
	if err != nil {
		t.Fatal(err)
	}
	q := worker.NewQueue(rdb, "e2e")

	// The uninterrupted run, with no approver: approval passes at once.
	want := filepath.Join(dir, "want.txt")
	eng0, _ := dagrun.New(dagrun.Config{})
	p0, err := eng0.Parse([]byte(fmt.Sprintf(approvalWF, want)), "want")
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng0.Run(ctx, p0, dagrun.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Close()

	eng, err := dagrun.New(dagrun.Config{Store: store, Nodes: nodes.Options{Approver: worker.NewApprover(q)}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Redis: rdb, Executor: eng.WorkerExecutor(), Queue: "e2e", Concurrency: 1,
		LeaseTTL: 3 * time.Second, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()

	got := filepath.Join(dir, "got.txt")
	if _, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "A", Workflow: "approval-e2e", Payload: []byte(fmt.Sprintf(approvalWF, got))}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, q, "A", worker.StatusSuspended)
	if _, err := os.Stat(got); err == nil {
		t.Fatal("the run went past the approval before it was approved")
	}
	// The only slot is free: an ordinary job completes while A waits.
	other := filepath.Join(dir, "other.txt")
	q.Enqueue(ctx, worker.EnqueueRequest{RunID: "B", Workflow: "other", Payload: []byte(
		`{"name":"other","nodes":[{"id":"m","type":"llm.mock"},{"id":"s","type":"file.write","inputs":["m"],"params":{"path":"` + other + `"}}]}`)})
	waitStatus(t, ctx, q, "B", worker.StatusSucceeded)
	if r, _ := q.GetRun(ctx, "A"); r.Status != worker.StatusSuspended {
		t.Fatalf("A is %s while B ran", r.Status)
	}

	if err := q.Approve(ctx, "A", "review", "test"); err != nil {
		t.Fatal(err)
	}
	r := waitStatus(t, ctx, q, "A", worker.StatusSucceeded)
	if r.Nodes["draft"] != string(dag.StatusResumed) || r.Nodes["review"] != string(dag.StatusSucceeded) {
		t.Fatalf("after approval: nodes %v (draft must resume from its spilled output, not run again)", r.Nodes)
	}
	a, _ := os.ReadFile(got)
	b, _ := os.ReadFile(want)
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("approved run wrote %d bytes, uninterrupted run %d; equal: %v", len(a), len(b), string(a) == string(b))
	}
}

func waitStatus(t *testing.T, ctx context.Context, q *worker.Queue, id string, want worker.Status) *worker.Run {
	t.Helper()
	for {
		r, err := q.GetRun(ctx, id)
		if err == nil && r.Status == want {
			return r
		}
		if err == nil && r.Status.Terminal() && r.Status != want {
			t.Fatalf("run %s ended %s, want %s: %+v", id, r.Status, want, r.LastError)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s never became %s (last: %+v, %v)", id, want, r, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ExampleEngine() {
	eng, err := dagrun.New(dagrun.Config{})
	if err != nil {
		panic(err)
	}
	plan, err := eng.Parse([]byte(`{"name": "hello", "nodes": [
		{"id": "rows", "type": "csv.read", "params": {"path": "testdata/data/orders.csv"}},
		{"id": "north", "type": "table.filter", "inputs": ["rows"], "params": {"where": [{"column": "region", "op": "eq", "value": "North"}]}},
		{"id": "count", "type": "table.aggregate", "inputs": ["north"], "params": {"aggregates": [{"op": "count", "as": "orders"}]}}
	]}`), "hello")
	if err != nil {
		panic(err)
	}
	res, err := eng.Run(context.Background(), plan, dagrun.RunOptions{})
	if err != nil {
		panic(err)
	}
	defer res.Close()
	out, _ := res.Output("count")
	rc, _ := out.Open(context.Background()) // a table reads as JSON lines
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Print(strings.TrimSpace(string(b)), "; streamed: ", res.Report.Node("rows").Piped)
	// Output: {"orders":68}; streamed: true
}

// Relieve reaches a running run: its largest in-memory output moves to the
// store while the run goes on, and the consumer reads it back from there.
func TestRelieveSpillsRunningRun(t *testing.T) {
	store, err := spill.NewDir(t.TempDir(), spill.Config{})
	if err != nil {
		t.Fatal(err)
	}
	spilled := make(chan struct{})
	reg := nodes.NewRegistry(nodes.Options{})
	// waitspill reads its input only once the test saw the spill, so that
	// no reader holds the in-memory copy while the spill runs.
	reg.MustRegister(dag.Type{Name: "waitspill", Output: dag.KindJSON, MinInputs: 1, MaxInputs: 1,
		New: func(*dag.NodeSpec) (dag.Node, error) {
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				select {
				case <-spilled:
				case <-time.After(30 * time.Second):
					return fmt.Errorf("no spill within 30s")
				}
				rc, err := in.At(0).Open(ctx)
				if err != nil {
					return err
				}
				defer rc.Close()
				n, err := io.Copy(io.Discard, rc)
				if err != nil {
					return err
				}
				return out.WriteJSON(n)
			}), nil
		}})
	eng, _ := dagrun.New(dagrun.Config{Store: store, Registry: reg})
	plan, err := eng.Parse([]byte(`{"name":"p","nodes":[
		{"id":"big","type":"llm.mock","params":{"reply_bytes":"8MiB"}},
		{"id":"use","type":"waitspill","inputs":["big"]}]}`), "p")
	if err != nil {
		t.Fatal(err)
	}
	// Once big is done, the worker's memory monitor calls Relieve on every
	// sample over the gate.
	stop := make(chan struct{})
	defer close(stop)
	var once sync.Once
	onEvent := func(e dag.Event) {
		switch {
		case e.Type == dag.EventNodeFinished && e.Node == "big":
			go func() {
				for {
					eng.Relieve(0)
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		case e.Type == dag.EventSpilled && e.Node == "big":
			once.Do(func() { close(spilled) })
		}
	}
	res, err := eng.Run(context.Background(), plan, dagrun.RunOptions{OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if got := res.Report.Node("big").SpilledBytes; got != 8<<20 {
		t.Fatalf("big spilled %d bytes under pressure, want 8 MiB", got)
	}
	var n int64
	o, _ := res.Output("use")
	if err := o.Decode(context.Background(), &n); err != nil || n != 8<<20 {
		t.Fatalf("consumer read %d bytes back (%v)", n, err)
	}
	if live := eng.LiveOutputBytes(); live <= 0 {
		t.Fatalf("live output bytes %d while a result is held", live)
	}
	res.Close()
	if live := eng.LiveOutputBytes(); live != 0 {
		t.Fatalf("live output bytes %d after the run was closed", live)
	}
}
