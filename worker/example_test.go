package worker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dagrun/dagrun/internal/redistest"
	"github.com/dagrun/dagrun/worker"
)

// exampleT lets the Example start a real redis-server.
var exampleT = &testing.T{}

func ExampleQueue_Enqueue() {
	srv := redistest.Start(exampleT)
	defer srv.Kill()
	q := worker.NewQueue(srv.Client(), "example")
	ctx := context.Background()
	id, err := q.Enqueue(ctx, worker.EnqueueRequest{RunID: "run-1", Workflow: "report", Payload: []byte(`{}`), MemoryHint: 256 << 20})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := q.GetRun(ctx, id)
	st, _ := q.Stats(ctx)
	fmt.Println(r.ID, r.Status, r.MemoryHint, st.Pending)
	// Output: run-1 queued 268435456 1
}
