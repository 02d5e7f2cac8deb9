package cli

import (
	"context"

	"github.com/dagrun/dagrun/ops"
)

func cmdRuns(ctx context.Context, env *Env, args []string) error {
	return ops.Runs(ctx, args, env.Stdout, env.Stderr)
}

func cmdDLQ(ctx context.Context, env *Env, args []string) error {
	return ops.DLQ(ctx, args, env.Stdout, env.Stderr)
}

func cmdQueue(ctx context.Context, env *Env, args []string) error {
	return ops.Queue(ctx, args, env.Stdout, env.Stderr)
}

func cmdDoctor(ctx context.Context, env *Env, args []string) error {
	return ops.Doctor(ctx, args, env.Stdout, env.Stderr)
}
