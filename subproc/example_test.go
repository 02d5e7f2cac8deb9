package subproc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dagrun/dagrun/subproc"
)

// Run the document-generation script over a two-row table streamed on stdin,
// with a 256 MiB budget (a cgroup where writable, else the watchdog) and V8
// heap flags derived from it.
func ExampleRun() {
	var report strings.Builder
	res, err := subproc.Run(context.Background(), subproc.Spec{
		Path:        "../testdata/scripts/docgen.js",
		Args:        []string{"Q3 sales"},
		Node:        &subproc.NodeOptions{},
		Stdin:       strings.NewReader(`{"region":"eu","amount":10}` + "\n" + `{"region":"us","amount":32}` + "\n"),
		Stdout:      &report,
		MemoryLimit: 256 << 20,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(strings.TrimSpace(report.String()), "\n")
	fmt.Println(lines[len(lines)-2])
	fmt.Println(res.ExitCode, res.PeakBytes > 0)
	// Output:
	// <p>rows: 2</p>
	// 0 true
}

// Branch on the outcome of a child run.
func ExampleError() {
	_, err := subproc.Run(context.Background(), subproc.Spec{
		Path: "../testdata/scripts/exit_with.js", Args: []string{"3", "no such column: revenue"},
		Node: &subproc.NodeOptions{}, MemoryLimit: 256 << 20,
	})
	var e *subproc.Error
	switch {
	case errors.Is(err, subproc.ErrMemoryExceeded):
		fmt.Println("over budget: fail the node, do not retry with the same budget")
	case errors.As(err, &e) && e.Kind == subproc.KindExit:
		fmt.Println(e.ExitCode, strings.TrimSpace(e.StderrTail))
	}
	// Output:
	// 3 no such column: revenue
}

func ExampleNodeArgs() {
	fmt.Println(subproc.NodeArgs(512 << 20))
	// Output:
	// [--max-old-space-size=360 --max-semi-space-size=8]
}
