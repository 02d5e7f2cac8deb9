// Package ops implements the operator commands of dagrun: `dagrun runs`,
// `dagrun dlq`, `dagrun queue` and `dagrun doctor`. Each is a function
// Runs/DLQ/Queue/Doctor(ctx, args, stdout, stderr) that parses its own flags
// with the flag package and returns an error; an error carrying an exit code
// implements ExitCode() int (ExitError). Text output is aligned for a
// terminal; --json prints one JSON document for scripts.
//
// Common flags: --redis URL (default $DAGRUN_REDIS, else
// redis://127.0.0.1:6379), --queue NAME (default "dagrun"), --json. Flags may
// come before or after the positional arguments.
//
// METRICS.md documents the worker's metrics and RUNBOOK.md maps the symptoms
// of the old runbook to the metric or command that shows each.
package ops
