// Command launch runs one program and reports, on file descriptor 3, its
// pid once started ("pid N\n") and its wait4 rusage when it ends
// ({"maxrss_kb":...,"exit":...}). It exists because ru_maxrss of a child
// started by a large process is wrong: Go starts children with
// CLONE_VFORK|CLONE_VM, and at exec the kernel folds the parent's own
// high-water RSS into the child's maxrss. Started from this small process
// instead, a child's maxrss is its own (with a floor of this launcher's few
// MiB). The benchmark harness builds it and runs every measured process
// through it. Its exit code is the program's.
//
//	launch PROGRAM [ARGS...] 3>report
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: launch PROGRAM [ARGS...] 3>report")
		os.Exit(2)
	}
	report := os.NewFile(3, "report")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(127)
	}
	fmt.Fprintf(report, "pid %d\n", cmd.Process.Pid)
	err := cmd.Wait()
	out := map[string]int64{"exit": int64(cmd.ProcessState.ExitCode())}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out["maxrss_kb"] = ru.Maxrss
	}
	_ = json.NewEncoder(report).Encode(out)
	report.Close()
	if err != nil {
		if code := cmd.ProcessState.ExitCode(); code > 0 {
			os.Exit(code)
		}
		os.Exit(1)
	}
}
