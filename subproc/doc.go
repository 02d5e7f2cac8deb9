// Package subproc runs one child process (typically a node.js script) for a
// workflow node so that the child can never take the worker down.
//
// A child gets streamed stdin and stdout (an io.Reader in, an io.Writer out,
// neither held whole), a bounded stderr tail, only an allow-listed
// environment, a working directory, a timeout and a memory budget. The budget
// is enforced, in order of preference, by:
//
//   - cgroup-v2: a child cgroup below the worker's own with memory.max,
//     memory.swap.max=0 and memory.oom.group=1; the child is cloned straight
//     into it (SysProcAttr.UseCgroupFD). The peak is memory.peak.
//   - cgroup-v1: a child cgroup in the memory hierarchy with
//     memory.limit_in_bytes (and memsw where present). The child starts as a
//     tiny /bin/sh gate that blocks on a pipe until the worker has moved it
//     into the cgroup, then execs the real program, so no user code runs
//     outside the budget. The peak is memory.max_usage_in_bytes.
//   - watchdog: where cgroups are not writable, a sampler sums the PSS of the
//     child's process tree every interval and kills the tree over budget.
//     Spikes shorter than the interval are not seen.
//   - none: no enforcement; the peak is the direct child's max RSS.
//
// An overrun therefore kills only the child and becomes an *Error with a
// Kind (ErrOOMKilled, ErrWatchdogKilled, ErrHeapExhausted, ErrTimeout,
// ErrExit, ErrSignaled, ...). Every outcome carries the child's peak memory.
//
// Cancellation, a timeout or the end of the direct child kill the child's
// whole tree: its process group, every process in its cgroup and, in watchdog
// mode, every descendant seen. The child cgroup is always removed, also when
// Run panics; cgroups left by a worker that was SIGKILLed are removed by the
// next Run in the same parent cgroup.
//
// Run is safe for concurrent use; each call owns its child and cgroup.
package subproc
