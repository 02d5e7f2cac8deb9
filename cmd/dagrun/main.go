// Command dagrun runs workflows, workers and benchmarks; see package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dagrun/dagrun/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, StderrIsTerminal: cli.IsTerminal(os.Stderr)})
	stop()
	os.Exit(code)
}
