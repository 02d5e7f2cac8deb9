package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/spill"
)

// dagrunCmd returns the test binary set up to act as the dagrun command.
func dagrunCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DAGRUN_AS_CLI=1")
	return cmd
}

const fiveNodes = `{"name": "five", "nodes": [
  {"id": "n1", "type": "llm.mock", "params": {"reply_bytes": "300KiB", "seed": 1}},
  {"id": "n2", "type": "llm.mock", "inputs": ["n1"], "params": {"reply_bytes": "300KiB", "seed": 2}},
  {"id": "n3", "type": "llm.mock", "inputs": ["n2"], "params": {"reply_bytes": "300KiB", "seed": 3}},
  {"id": "n4", "type": "llm.mock", "inputs": ["n3"], "params": {"reply_bytes": "300KiB", "seed": 4, "latency": "3s"}},
  {"id": "n5", "type": "llm.mock", "inputs": ["n4"], "params": {"reply_bytes": 2000, "seed": 5}}
]}`

// A run SIGKILLed after 3 of 5 nodes resumes at node 4: the first three are
// not run again and the result equals an uninterrupted run's.
func TestCrashThenResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wf := filepath.Join(dir, "five.json")
	if err := os.WriteFile(wf, []byte(fiveNodes), 0o644); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(dir, "store")
	storeURL := "dir://" + storeDir

	// The uninterrupted run, for the expected result.
	var want bytes.Buffer
	ref := dagrunCmd("run", "--store", "none", "--max-print", "0", wf)
	var refErr bytes.Buffer
	ref.Stdout, ref.Stderr = &want, &refErr
	if err := ref.Run(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, refErr.String())
	}

	crash := dagrunCmd("run", "--store", storeURL, "--run-id", "crash1", "--max-print", "0", wf)
	var crashErr bytes.Buffer
	crash.Stderr = &crashErr
	if err := crash.Start(); err != nil {
		t.Fatal(err)
	}
	store, err := spill.NewDir(storeDir, spill.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rc, err := store.Get(ctx, "runs/crash1/nodes/n3")
		if err == nil {
			rc.Close()
			break
		}
		if time.Now().After(deadline) {
			crash.Process.Kill()
			t.Fatalf("node 3 never completed: %v\n%s", err, crashErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := crash.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = crash.Wait()
	if ws, ok := crash.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("crash run was not killed by SIGKILL: %v", err)
	}
	if _, err := store.Get(ctx, "runs/crash1/nodes/n4"); err == nil {
		t.Fatal("node 4 completed before the kill; the test needs it in flight")
	}

	report := filepath.Join(dir, "report.json")
	var got, stderr bytes.Buffer
	resume := dagrunCmd("run", "--store", storeURL, "--run-id", "crash1", "--resume", "--report", report, "--max-print", "0", wf)
	resume.Stdout, resume.Stderr = &got, &stderr
	if err := resume.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr.String())
	}
	var rep dag.Report
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for id, st := range map[string]dag.Status{"n1": dag.StatusResumed, "n2": dag.StatusResumed, "n3": dag.StatusResumed, "n4": dag.StatusSucceeded, "n5": dag.StatusSucceeded} {
		n := rep.Node(id)
		if n.Status != st {
			t.Errorf("%s: %s, want %s", id, n.Status, st)
		}
		if st == dag.StatusResumed && n.Attempts != 0 {
			t.Errorf("%s ran again (%d attempts)", id, n.Attempts)
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("resumed result differs from an uninterrupted run:\n%.300s\nvs\n%.300s", got.String(), want.String())
	}
	// A finished run leaves nothing behind in the store.
	var left []string
	filepath.Walk(storeDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, strings.TrimPrefix(p, storeDir))
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("store still holds %v", left)
	}
}

// A missing or corrupt blob makes only that node and its dependents run
// again on resume.
func TestResumeReRunsLostOutputOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wf := filepath.Join(dir, "five.json")
	os.WriteFile(wf, []byte(strings.Replace(fiveNodes, `"seed": 5}`, `"seed": 5, "latency": "60s"}`, 1)), 0o644)
	storeDir := filepath.Join(dir, "store")
	run := dagrunCmd("run", "--store", "dir://"+storeDir, "--run-id", "r2", "--timeout", "6s", wf)
	out, _ := run.CombinedOutput() // n5 times out: n1..n4 complete, the run fails
	if !strings.Contains(string(out), "cancelled") {
		t.Fatalf("first run: %s", out)
	}
	store, _ := spill.NewDir(storeDir, spill.Config{})
	// Corrupt n4's output blob on disk.
	path := store.Path("runs/r2/out/n4")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(path, b, 0o644)
	report := filepath.Join(dir, "report.json")
	fast := filepath.Join(dir, "fast.json")
	os.WriteFile(fast, []byte(fiveNodes), 0o644)
	res := dagrunCmd("run", "--store", "dir://"+storeDir, "--run-id", "r2", "--resume", "--report", report, fast)
	if out, err := res.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	var rep dag.Report
	b, _ = os.ReadFile(report)
	json.Unmarshal(b, &rep)
	var got []string
	for _, n := range rep.Nodes {
		got = append(got, fmt.Sprintf("%s=%s", n.ID, n.Status))
	}
	// n4's blob is corrupt, so n4 runs again from n3's intact output; n1
	// and n2 are not needed at all.
	want := "n1=resumed n2=resumed n3=resumed n4=succeeded n5=succeeded"
	if strings.Join(got, " ") != want {
		t.Fatalf("statuses %s, want %s", strings.Join(got, " "), want)
	}
}
