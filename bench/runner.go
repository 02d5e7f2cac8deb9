package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Sample is one reading of a process's resident set.
type Sample struct {
	// T is the time since the process started, in seconds.
	T float64 `json:"t"`
	// RSS is VmRSS from /proc/<pid>/status, in bytes.
	RSS int64 `json:"rss"`
}

// procResult is what the OS tells about one finished child process.
type procResult struct {
	maxRSS   int64 // wait4 rusage ru_maxrss: the child or its largest waited-for descendant
	wall     time.Duration
	samples  []Sample
	stdout   []byte
	stderr   []byte
	exitCode int
}

// stderrTail bounds the stderr kept from a child.
const stderrTail = 8 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// runProcess runs argv as a child with env through the launcher (see
// bench/internal/launch), sampling its VmRSS every `every` (0: no
// sampling), and returns the OS's figures. A non-zero exit is an error
// carrying the stderr tail.
//
// The launcher matters: Go starts children with CLONE_VFORK|CLONE_VM, and
// at exec the kernel folds the parent's own RSS high-water mark into the
// child's ru_maxrss, so a child of this (large) harness would report at
// least the harness's peak. The launcher is a few MiB; its child's maxrss
// is the child's own.
func runProcess(ctx context.Context, launcher string, argv, env []string, dir string, every time.Duration) (*procResult, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.CommandContext(ctx, launcher, argv...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{pw}
	var out bytes.Buffer
	errb := &tailBuffer{max: stderrTail}
	cmd.Stdout, cmd.Stderr = &out, errb
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", launcher, err)
	}
	rep := bufio.NewReader(pr)
	pid := 0
	if line, err := rep.ReadString('\n'); err == nil {
		_, _ = fmt.Sscanf(line, "pid %d", &pid)
	}
	var samples []Sample
	var wg sync.WaitGroup
	stop := make(chan struct{})
	if every > 0 && pid > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples = sampleRSS(pid, start, every, stop)
		}()
	}
	err = cmd.Wait()
	wall := time.Since(start)
	close(stop)
	wg.Wait()
	res := &procResult{wall: wall, samples: samples, stdout: out.Bytes(), stderr: errb.b}
	var ru struct {
		MaxRSSKB int64 `json:"maxrss_kb"`
		Exit     int   `json:"exit"`
	}
	if derr := json.NewDecoder(rep).Decode(&ru); derr == nil {
		res.maxRSS, res.exitCode = ru.MaxRSSKB<<10, ru.Exit
	} else if err == nil {
		err = fmt.Errorf("no rusage from the launcher: %w", derr)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w: %s", argv[0], err, bytes.TrimSpace(errb.b))
	}
	return res, nil
}

// sampleRSS reads /proc/pid/status every `every` until stop is closed or
// the process is gone.
func sampleRSS(pid int, start time.Time, every time.Duration, stop <-chan struct{}) []Sample {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	t := time.NewTicker(every)
	defer t.Stop()
	var out []Sample
	buf := make([]byte, 4096)
	for {
		if rss, ok := readVmRSS(path, buf); ok {
			out = append(out, Sample{T: time.Since(start).Seconds(), RSS: rss})
		}
		select {
		case <-stop:
			return out
		case <-t.C:
		}
	}
}

// readVmRSS returns VmRSS from a /proc status file; ok is false when the
// process is gone or a zombie (no VmRSS line).
func readVmRSS(path string, buf []byte) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	n, _ := f.Read(buf)
	f.Close()
	b := buf[:n]
	i := bytes.Index(b, []byte("VmRSS:"))
	if i < 0 {
		return 0, false
	}
	line := b[i+6:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return 0, false
	}
	kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil {
		return 0, false
	}
	return kb << 10, true
}
