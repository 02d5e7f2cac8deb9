// Package worker runs workflow jobs from a Redis queue without letting one
// job take the worker down.
//
// A Worker claims a job only while a concurrency slot is free, the
// container's working set (see package budget) is below the pause threshold
// (0.80 of the limit, resuming below 0.70), and the job's expected peak fits
// under that threshold. The expected peak is the job's MemoryHint, else the
// 0.95 quantile of its workflow's observed peaks (kept in Redis), else
// Config.DefaultPeak. A job whose expected peak exceeds the whole budget is
// dead-lettered with kind KindExceedsMemory instead of being run.
//
// # Queue layout
//
// Every key of queue Q starts with the hash tag "{Q}:", so a queue lives in
// one Redis Cluster slot: pending (list; new and recovered jobs at the back),
// job:<id> (hash: the run record), log:<id> (list: the last 64 events),
// leases (sorted set: id by lease deadline), running (set), dead (sorted set),
// runs (sorted set by enqueue time), suspended (sorted set by suspension
// time), approval:<id> (hash: node id to approved/rejected), peaks:<workflow>
// (list), stats (hash), token (fencing counter), workers and worker:<id>
// (liveness and the figures each worker publishes: working set, limit, peak,
// gate state, capacity).
//
// # Suspended runs
//
// An Executor that returns an error wrapping ErrSuspended (with
// Result.Suspended naming the nodes) parks the run: status suspended, no
// lease, not pending, the attempt refunded, the slot and memory reservation
// released, not counted as a failure, never touched by the reaper.
// Queue.Approve stores the decision (read by Approver, a nodes.Approver) and
// puts the run at the back of the pending list; Queue.Reject fails it with
// kind rejected.
//
// # Metrics and health
//
// With Config.Registerer the worker exports its metrics (ops/METRICS.md lists
// them); Handler serves /metrics, /livez and /readyz, and Config.MetricsAddr
// makes Run serve it. A job's peak is measured by the worker (the executor's
// report, else the rise of the working set sampled every SampleInterval),
// so a spike cannot fall between two scrapes.
//
// Claiming is one Lua script: it pops the oldest job, counts the attempt at
// pickup (so a SIGKILL still counts), takes a lease with a fresh fencing
// token, and dead-letters a job that exhausted its attempts or crashed
// MaxCrashes times instead of starting it. A heartbeat extends leases; a
// reaper in every worker (safe to run at once) takes expired leases, counts a
// crash and pushes the job to the BACK of the queue, or to the dead-letter
// set after MaxCrashes (default 3). Results are fenced: a worker whose lease
// expired cannot overwrite the result of the worker that re-ran the job
// (Stats.Counters["fenced"] counts refusals). A reconciler repairs runs left
// "running" without a lease. On context cancellation (SIGTERM) Run stops
// claiming, lets running jobs finish within DrainGrace, then puts the rest
// back at the front with their attempt refunded.
//
// # Redis requirements
//
// maxmemory-policy must be noeviction: an evicted lease or job hash loses
// work silently. For acknowledged results to survive a Redis crash, enable
// persistence (appendonly yes; appendfsync always for no loss, everysec to
// lose at most about a second). Scripts use TIME and need Redis 7 (effect
// replication). The Worker and Queue do not close the client they are given.
//
// # Records
//
// Every run has a record (Queue.GetRun): status (queued, running, retrying,
// succeeded, failed, dead, suspended), attempts, crashes, the
// worker of the last attempt and the one that acked, per-node statuses from
// the Executor, peak bytes, the last error with its kind (killed, timeout,
// error, exceeds_memory, exhausted, rejected), per-node figures
// (Result.NodeStats) and a bounded event history.
package worker
