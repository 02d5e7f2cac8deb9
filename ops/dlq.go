package ops

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/dagrun/dagrun/worker"
)

const dlqUsage = `usage: dagrun dlq list [--limit N]
       dagrun dlq show RUN
       dagrun dlq retry RUN...|--all
       dagrun dlq drop RUN...|--all
common flags: --redis URL --queue NAME --json`

// DLQ implements `dagrun dlq list|show|retry|drop`: the dead-letter set, each
// job with the reason it was dead-lettered.
func DLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing subcommand\n%s", dlqUsage)
	}
	sub := args[0]
	fs, c := newFlags("dlq "+sub, stderr)
	limit := fs.Int("limit", 100, "list/--all: dead letters examined")
	all := fs.Bool("all", false, "retry/drop: every dead letter (up to --limit)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	rdb, q, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	switch sub {
	case "list":
		dead, err := q.DeadLetters(ctx, 0, *limit)
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(stdout, runsJSON(dead))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tWORKFLOW\tKIND\tATTEMPTS\tCRASHES\tDIED\tREASON")
		for _, r := range dead {
			kind, msg := "", ""
			if r.LastError != nil {
				kind, msg = string(r.LastError.Kind), r.LastError.Message
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.ID, r.Workflow, kind, r.Attempts, r.Crashes, ago(r.FinishedAt), trunc(msg, 90))
		}
		return tw.Flush()
	case "show":
		if len(pos) != 1 {
			return usagef("dlq show RUN\n%s", dlqUsage)
		}
		r, err := q.GetRun(ctx, pos[0])
		if err != nil {
			return notFound(err)
		}
		if r.Status != worker.StatusDead {
			return &ExitError{Code: 3, Err: fmt.Errorf("run %s is %s, not in the dead-letter set: %w", r.ID, r.Status, worker.ErrNotFound)}
		}
		return showRun(ctx, c, q, stdout, pos[0])
	case "retry", "drop":
		ids := pos
		if *all {
			dead, err := q.DeadLetters(ctx, 0, *limit)
			if err != nil {
				return err
			}
			for _, r := range dead {
				ids = append(ids, r.ID)
			}
		}
		if len(ids) == 0 {
			return usagef("dlq %s needs run ids or --all\n%s", sub, dlqUsage)
		}
		var done []string
		var failed error
		for _, id := range ids {
			var err error
			if sub == "retry" {
				err = q.RetryDead(ctx, id)
			} else {
				err = q.DropDead(ctx, id)
			}
			if err != nil {
				failed = notFound(err)
				fmt.Fprintf(stderr, "%s %s: %v\n", sub, id, err)
				continue
			}
			done = append(done, id)
		}
		if c.json {
			if err := writeJSON(stdout, map[string]any{sub: done}); err != nil {
				return err
			}
		} else {
			verb := map[string]string{"retry": "requeued", "drop": "dropped"}[sub]
			for _, id := range done {
				fmt.Fprintf(stdout, "%s %s\n", verb, id)
			}
		}
		return failed
	}
	return usagef("unknown subcommand %q\n%s", sub, dlqUsage)
}
