package cli

import (
	"context"

	"github.com/dagrun/dagrun/bench"
)

func cmdBench(ctx context.Context, env *Env, args []string) error {
	return bench.Main(ctx, args, env.Stdout, env.Stderr, env.StderrIsTerminal)
}
