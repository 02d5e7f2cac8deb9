package subproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dagrun/dagrun/subproc/internal/cgroup"
)

const (
	defaultTailBytes = 8 << 10
	defaultInterval  = 50 * time.Millisecond
	// defaultCrossCheckInterval is the sampling period in cgroup mode, where
	// the kernel enforces the limit and the sampler only cross-checks.
	defaultCrossCheckInterval = 250 * time.Millisecond
	// drainDelay bounds how long output copying may go on after the tree was
	// killed (a process that escaped every kill could hold the pipes open).
	drainDelay = 2 * time.Second
	// cgroupPrefix names child cgroups "dagrun-sp-<worker pid>-<random>".
	cgroupPrefix = "dagrun-sp-"
	// gateScript is the v1 start gate: it waits until the worker has moved
	// it into the cgroup and written "go", then execs the real program.
	gateScript = `read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$0" "$@"`
	gateFailed = 125
)

var (
	errTimeout  = errors.New("timeout")
	errWatchdog = errors.New("watchdog: over budget")
)

// Run starts the child described by s, streams its stdin and stdout, waits
// for it and its whole process tree to end, and returns its accounting. A
// failed run returns the same Result and an *Error. Run never returns before
// every process of the child tree is gone (or was sent SIGKILL and escaped
// every enforcement, possible only in watchdog/none mode) and its cgroup is
// removed. When Stdin is not an *os.File, Run also waits for a Read of Stdin
// already in progress to return.
func Run(ctx context.Context, s Spec) (res Result, err error) {
	if err := s.Validate(); err != nil {
		return Result{}, err
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	iv := s.SampleInterval
	if iv <= 0 {
		iv = defaultInterval
	}
	crossIv := s.SampleInterval // cgroup mode: the sampler is only a cross-check
	if crossIv <= 0 {
		crossIv = defaultCrossCheckInterval
	}
	tailMax := s.StderrTailBytes
	if tailMax <= 0 {
		tailMax = defaultTailBytes
	}
	res.LimitBytes = s.MemoryLimit
	fail := func(kind Kind, cause error) *Error {
		return &Error{Kind: kind, Path: s.Path, ExitCode: res.ExitCode, PeakBytes: res.PeakBytes,
			LimitBytes: s.MemoryLimit, Mode: res.Mode, StderrTail: res.StderrTail, Err: cause}
	}

	if s.Reserve != nil && s.MemoryLimit > 0 {
		release, err := s.Reserve(ctx, s.MemoryLimit)
		if err != nil {
			return res, fail(KindStart, fmt.Errorf("reserve %d bytes: %w", s.MemoryLimit, err))
		}
		defer release()
	}

	bin, argv, err := command(s)
	if err != nil {
		return res, fail(KindStart, err)
	}

	// Choose the enforcement and create the cgroup.
	var grp *cgroup.Group
	switch s.Mode {
	case ModeAuto, ModeCgroup:
		grp, err = newGroup(s, log)
		if err == nil {
			res.Mode, res.Cgroup = ModeCgroupV1, grp.Dir
			res.Precision = PrecisionCgroupV1
			if grp.Version == cgroup.V2 {
				res.Mode, res.Precision = ModeCgroupV2, PrecisionCgroupV2
			}
			defer func() {
				if rerr := grp.Remove(5 * time.Second); rerr != nil {
					log.Error("subproc: cgroup not removed", "cgroup", grp.Dir, "err", rerr)
					err = errors.Join(err, rerr)
				}
			}()
		} else if s.Mode == ModeCgroup {
			return res, fail(KindStart, fmt.Errorf("%w: %w", ErrCgroupUnavailable, err))
		} else {
			res.Mode, res.Precision, res.FallbackReason = ModeWatchdog, watchdogPrecision(iv), err.Error()
			log.Warn("subproc: cgroup unavailable, using watchdog", "path", s.Path, "reason", err)
		}
	case ModeWatchdog:
		res.Mode, res.Precision = ModeWatchdog, watchdogPrecision(iv)
	case ModeNone:
		res.Mode, res.Precision = ModeNone, PrecisionNone
	}

	cmd := exec.Command(bin, argv...)
	cmd.Dir = s.Dir
	cmd.Env = environ(s)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// Pipes are ours, not exec's, so that Wait returns when the direct child
	// exits and we can kill the rest of the tree before draining output.
	var closeAfterStart, closeAfterWait []*os.File
	defer func() {
		for _, f := range append(closeAfterStart, closeAfterWait...) {
			f.Close()
		}
	}()
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fail(KindStart, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return res, fail(KindStart, err)
	}
	closeAfterStart = append(closeAfterStart, outW, errW)
	closeAfterWait = append(closeAfterWait, outR, errR)
	cmd.Stdout, cmd.Stderr = outW, errW
	var inW *os.File
	switch in := s.Stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		var inR *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return res, fail(KindStart, err)
		}
		cmd.Stdin = inR
		closeAfterStart = append(closeAfterStart, inR)
	}

	var gateW *os.File
	if grp != nil {
		switch grp.Version {
		case cgroup.V2:
			fd, err := grp.Open()
			if err != nil {
				return res, fail(KindStart, err)
			}
			closeAfterStart = append(closeAfterStart, fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(fd.Fd())
		case cgroup.V1:
			gateR, w, err := os.Pipe()
			if err != nil {
				return res, fail(KindStart, err)
			}
			gateW = w
			closeAfterStart = append(closeAfterStart, gateR)
			closeAfterWait = append(closeAfterWait, gateW)
			cmd.ExtraFiles = []*os.File{gateR}
			cmd.Args = append([]string{"/bin/sh", "-c", gateScript, bin}, argv...)
			cmd.Path = "/bin/sh"
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if s.Timeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeoutCause(ctx, s.Timeout, errTimeout)
		defer cancelT()
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		if inW != nil {
			inW.Close()
		}
		return res, fail(KindStart, fmt.Errorf("start %s: %w", bin, err))
	}
	for _, f := range closeAfterStart {
		f.Close()
	}
	closeAfterStart = nil
	pid := cmd.Process.Pid
	tr := newTree(pid)
	log.Info("subproc: started", "path", s.Path, "pid", pid, "mode", res.Mode.String(),
		"precision", res.Precision, "limit_bytes", s.MemoryLimit, "cgroup", res.Cgroup)

	var mu sync.Mutex // guards tr and killedBy between the watcher and us
	var killedBy error
	killTree := func(why error) {
		mu.Lock()
		defer mu.Unlock()
		if killedBy == nil && why != nil {
			killedBy = why
		}
		tr.killAll()
		if grp != nil {
			_ = grp.Kill(time.Second)
		}
	}

	if gateW != nil {
		// v1: place the gate in the cgroup, then let it exec the program.
		if err := grp.AddProc(pid); err != nil {
			gateW.Close()
			killTree(nil)
			_ = cmd.Wait()
			return res, fail(KindStart, err)
		}
		if _, err := gateW.WriteString("go\n"); err != nil {
			killTree(nil)
			_ = cmd.Wait()
			return res, fail(KindStart, fmt.Errorf("release start gate: %w", err))
		}
		gateW.Close()
	}

	// Helper goroutines; each reports on a buffered channel and is waited for.
	var wg sync.WaitGroup
	var outErr, inErr error
	tail := newTailWriter(tailMax)
	stdout := s.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if _, err := copyOut(stdout, outR); err != nil {
			outErr = err
			killTree(fmt.Errorf("write stdout: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(tail, errR)
	}()
	if inW != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inW.Close()
			_, err := copyIn(inW, s.Stdin)
			if err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, os.ErrClosed) {
				inErr = err
				killTree(fmt.Errorf("read stdin: %w", err))
			}
		}()
	}

	// Watcher: cancellation, timeout and memory sampling.
	done := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() {
		var peak int64
		defer func() { sampled <- peak }()
		period := iv
		if grp != nil {
			period = crossIv
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				killTree(context.Cause(ctx))
				return
			case <-tick.C:
			}
			if res.Mode == ModeNone {
				continue
			}
			mu.Lock()
			m := memory(tr.members())
			mu.Unlock()
			peak = max(peak, m)
			if res.Mode == ModeWatchdog && s.MemoryLimit > 0 && m > s.MemoryLimit {
				log.Warn("subproc: watchdog kill", "path", s.Path, "pid", pid, "pss_bytes", m, "limit_bytes", s.MemoryLimit)
				killTree(fmt.Errorf("%w: tree PSS %d bytes > limit %d bytes", errWatchdog, m, s.MemoryLimit))
				return
			}
		}
	}()

	waitErr := cmd.Wait()
	close(done)
	res.SampledPeakBytes = <-sampled
	// The direct child is gone: end whatever it left behind, and stop
	// feeding stdin (a Write in progress fails; a Read of Stdin in progress
	// is waited for).
	killTree(nil)
	if inW != nil {
		inW.Close()
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainDelay):
		log.Error("subproc: output still open after tree kill; closing", "path", s.Path, "pid", pid)
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		<-drained
	}
	res.Duration = time.Since(start)
	res.StderrTail = tail.String()

	// Accounting.
	st := cmd.ProcessState
	var ws syscall.WaitStatus
	if st != nil {
		ws, _ = st.Sys().(syscall.WaitStatus)
		res.ExitCode = st.ExitCode()
	}
	var ev cgroup.Events
	switch {
	case grp != nil:
		peak, ok, perr := grp.Peak()
		if perr != nil {
			log.Warn("subproc: reading cgroup peak", "err", perr)
		}
		if !ok {
			peak = res.SampledPeakBytes
		}
		res.PeakBytes = peak
		if ev, err = grp.Events(); err != nil {
			log.Warn("subproc: reading cgroup events", "err", err)
		}
	case res.Mode == ModeWatchdog:
		res.PeakBytes = res.SampledPeakBytes
	default:
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru != nil {
			res.PeakBytes = ru.Maxrss * 1024
		}
	}

	mu.Lock()
	why := killedBy
	mu.Unlock()
	var kind Kind
	var cause error
	switch {
	case why != nil && errors.Is(why, errTimeout):
		kind, cause = KindTimeout, fmt.Errorf("after %s", s.Timeout)
	case why != nil && errors.Is(why, errWatchdog):
		kind, cause = KindWatchdogKilled, why
	case why != nil && (outErr != nil || inErr != nil):
		kind, cause = KindIO, errors.Join(outErr, inErr)
	case why != nil:
		kind, cause = KindCanceled, why
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && ev.OOMKills > 0:
		kind = KindOOMKilled
		cause = fmt.Errorf("%d OOM kills in %s", ev.OOMKills, res.Cgroup)
	case tail.sawHeap:
		kind = KindHeapExhausted
	case ws.Signaled():
		kind = KindSignaled
	case res.ExitCode == gateFailed && gateW != nil && waitErr != nil:
		kind, cause = KindStart, errors.New("start gate exited before exec")
	case waitErr != nil:
		kind = KindExit
	}
	attrs := []any{"path", s.Path, "pid", pid, "mode", res.Mode.String(), "peak_bytes", res.PeakBytes,
		"sampled_peak_bytes", res.SampledPeakBytes, "limit_bytes", s.MemoryLimit,
		"exit_code", res.ExitCode, "duration", res.Duration}
	if kind == 0 {
		log.Info("subproc: finished", attrs...)
		return res, nil
	}
	e := fail(kind, cause)
	if ws.Signaled() {
		e.Signal = ws.Signal()
	}
	log.Info("subproc: failed", append(attrs, "kind", kind.String())...)
	return res, e
}

// copyOut copies the child's stdout to w, recovering a panicking writer as an
// error so the child is still killed and its cgroup removed.
func copyOut(w io.Writer, r io.Reader) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stdout writer panicked: %v", p)
		}
	}()
	return io.Copy(w, r)
}

// copyIn copies Stdin to the child, recovering a panicking reader as an
// error.
func copyIn(w io.Writer, r io.Reader) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stdin reader panicked: %v", p)
		}
	}()
	return io.Copy(w, r)
}

// command returns the executable and its arguments.
func command(s Spec) (string, []string, error) {
	if s.Node == nil {
		bin, err := exec.LookPath(s.Path)
		if err != nil {
			return "", nil, fmt.Errorf("look up %s: %w", s.Path, err)
		}
		return bin, s.Args, nil
	}
	name := s.Node.Binary
	if name == "" {
		name = "node"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", nil, fmt.Errorf("look up node binary %s: %w", name, err)
	}
	argv := append(s.Node.args(s.MemoryLimit), s.Node.Flags...)
	argv = append(argv, s.Path)
	return bin, append(argv, s.Args...), nil
}

// environ builds the child's environment from Env and the allow-list.
func environ(s Spec) []string {
	env := append([]string{}, s.Env...)
	for _, k := range s.EnvAllow {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// newGroup finds the parent cgroup, removes stale children of dead workers
// and creates this child's cgroup.
func newGroup(s Spec, log *slog.Logger) (*cgroup.Group, error) {
	var h cgroup.Hierarchy
	if s.CgroupParent != "" {
		h = cgroup.Hierarchy{Version: cgroup.V1, Parent: s.CgroupParent}
		if _, err := os.Stat(s.CgroupParent + "/cgroup.controllers"); err == nil {
			h.Version = cgroup.V2
		}
	} else {
		var err error
		if h, err = cgroup.Detect(); err != nil {
			return nil, err
		}
	}
	moved, err := h.Prepare()
	if err != nil {
		return nil, err
	}
	if len(moved) > 0 {
		log.Info("subproc: moved worker processes into leaf cgroup to enable the memory controller",
			"parent", h.Parent, "leaf", cgroup.LeafName, "pids", moved)
	}
	if stale, err := h.Stale(cgroupPrefix); err == nil {
		for _, g := range stale {
			if err := g.Remove(time.Second); err != nil {
				log.Warn("subproc: stale cgroup not removed", "cgroup", g.Dir, "err", err)
			} else {
				log.Info("subproc: removed stale cgroup of a dead worker", "cgroup", g.Dir)
			}
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := cgroupPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
	return h.Create(name, s.MemoryLimit)
}
