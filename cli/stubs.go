package cli

import "context"

func cmdWorker(ctx context.Context, env *Env, args []string) error {
	return invalid("worker: not wired yet")
}
func cmdEnqueue(ctx context.Context, env *Env, args []string) error {
	return invalid("enqueue: not wired yet")
}
func cmdRuns(ctx context.Context, env *Env, args []string) error {
	return invalid("runs: not wired yet")
}
func cmdDLQ(ctx context.Context, env *Env, args []string) error { return invalid("dlq: not wired yet") }
func cmdQueue(ctx context.Context, env *Env, args []string) error {
	return invalid("queue: not wired yet")
}
func cmdDoctor(ctx context.Context, env *Env, args []string) error {
	return invalid("doctor: not wired yet")
}
func cmdBench(ctx context.Context, env *Env, args []string) error {
	return invalid("bench: not wired yet")
}
