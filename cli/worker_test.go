package cli

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

// `dagrun enqueue` and `dagrun worker` as real processes: the example
// workflow runs on the worker, its run record ends succeeded with per-node
// statuses, the metrics endpoint counts it, and SIGTERM drains the worker.
func TestWorkerCommandEndToEnd(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	port := redistest.FreePort(t)
	w := dagrunCmd("worker", "--redis", srv.URL(), "--queue", "e2e", "--lease", "3s",
		"--metrics-addr", "127.0.0.1:"+strconv.Itoa(port), "--store", "dir://"+t.TempDir(), "--base-dir", "../testdata/workflows")
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Process.Kill()

	var out, errb bytes.Buffer
	enq := dagrunCmd("enqueue", "--redis", srv.URL(), "--queue", "e2e", "--run-id", "sales-1", "../testdata/workflows/sales-summary.json")
	enq.Stdout, enq.Stderr = &out, &errb
	if err := enq.Run(); err != nil || strings.TrimSpace(out.String()) != "sales-1" {
		t.Fatalf("enqueue: %v %q %s", err, out.String(), errb.String())
	}
	dup := dagrunCmd("enqueue", "--redis", srv.URL(), "--queue", "e2e", "--run-id", "sales-1", "../testdata/workflows/sales-summary.json")
	if err := dup.Run(); err == nil || dup.ProcessState.ExitCode() != ExitInvalid {
		t.Fatalf("duplicate enqueue: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := worker.NewQueue(srv.Client(), "e2e")
	for {
		r, err := q.GetRun(ctx, "sales-1")
		if err == nil && r.Status == worker.StatusSucceeded {
			if r.Nodes["summary"] != "succeeded" || r.Nodes["orders"] != "succeeded" {
				t.Fatalf("node statuses %v", r.Nodes)
			}
			break
		}
		if err == nil && r.Status.Terminal() {
			t.Fatalf("run ended %s: %+v\n%s", r.Status, r.LastError, werr.String())
		}
		if ctx.Err() != nil {
			t.Fatalf("run not done: %+v %v\n%s", r, err, werr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), `outcome="succeeded"} 1`) {
		t.Errorf("metrics do not count the succeeded job:\n%.2000s", body.String())
	}
	w.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker exit after SIGTERM: %v\n%s", err, werr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not drain and exit within 30s of SIGTERM")
	}
}
