package ops_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/ops"
	"github.com/dagrun/dagrun/worker"
)

var exampleT = &testing.T{}

func ExampleQueue() {
	srv := redistest.Start(exampleT)
	defer srv.Kill()
	q := worker.NewQueue(srv.Client(), "reports")
	_, _ = q.Enqueue(context.Background(), worker.EnqueueRequest{RunID: "r1", Workflow: "quarterly"})
	err := ops.Queue(context.Background(), []string{"stats", "--redis", srv.URL(), "--queue", "reports"}, os.Stdout, os.Stderr)
	fmt.Println("err:", err)
	// Output:
	// queue reports: pending 1, in flight 0, suspended 0, dead letters 0
	// counters: enqueued=1
	// no worker seen in the last minute
	// err: <nil>
}

func ExampleDoctor() {
	srv := redistest.Start(exampleT, "--maxmemory-policy", "volatile-lru")
	defer srv.Kill()
	err := ops.Doctor(context.Background(), []string{"--redis", srv.URL(), "--queue", "reports", "--skip-local"}, os.Stdout, os.Stderr)
	fmt.Println("exit code:", err.(*ops.ExitError).ExitCode())
	// Output:
	// PROBLEM  redis          maxmemory-policy is volatile-lru: Redis may evict leases, job records and spilled outputs under memory pressure, losing work silently
	//                         fix: CONFIG SET maxmemory-policy noeviction (and set it in redis.conf or the provider's parameter group)
	// WARN     redis-persist  no persistence: a Redis restart loses every queued job, lease and result
	//                         fix: appendonly yes with appendfsync everysec (always for no loss)
	// WARN     workers        no worker heartbeat in the last minute; 0 job(s) pending
	//                         fix: kubectl get pods -l app.kubernetes.io/name=dagrun-worker; kubectl describe pod (Last State: OOMKilled?); dagrun queue stats
	// ok       poison         no run is near the poison-pill threshold (MaxCrashes 3)
	// ok       stuck          no run is stuck running without a lease
	// ok       dead-letters   dead-letter set is empty
	//
	// 1 problem(s)
	// exit code: 1
}
