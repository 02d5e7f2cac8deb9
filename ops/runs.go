package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/dagrun/dagrun/worker"
)

const runsUsage = `usage: dagrun runs list [--status S] [--limit N]
       dagrun runs show RUN
       dagrun runs approve RUN NODE [--by NAME]
       dagrun runs reject RUN NODE [--reason TEXT] [--by NAME]
common flags: --redis URL --queue NAME --json`

// Runs implements `dagrun runs list|show|approve|reject`.
func Runs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing subcommand\n%s", runsUsage)
	}
	sub := args[0]
	fs, c := newFlags("runs "+sub, stderr)
	status := fs.String("status", "", "list: only runs in this status (queued, running, retrying, suspended, succeeded, failed, dead)")
	limit := fs.Int("limit", 50, "list: newest runs examined")
	by := fs.String("by", operator(), "approve/reject: who decides (kept in the run's history)")
	reason := fs.String("reason", "", "reject: why")
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
		if len(pos) != 0 {
			return usagef("runs list takes no arguments\n%s", runsUsage)
		}
		runs, err := q.ListRuns(ctx, worker.ListOptions{Status: worker.Status(*status), Limit: *limit})
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(stdout, runsJSON(runs))
		}
		printRuns(stdout, runs)
		return nil
	case "show":
		if len(pos) != 1 {
			return usagef("runs show RUN\n%s", runsUsage)
		}
		return showRun(ctx, c, q, stdout, pos[0])
	case "approve", "reject":
		if len(pos) != 2 {
			return usagef("runs %s RUN NODE\n%s", sub, runsUsage)
		}
		if sub == "approve" {
			err = q.Approve(ctx, pos[0], pos[1], *by)
		} else {
			err = q.Reject(ctx, pos[0], pos[1], *by, *reason)
		}
		if err != nil {
			return notFound(err)
		}
		r, err := q.GetRun(ctx, pos[0])
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(stdout, map[string]any{"run": r.ID, "node": pos[1], "decision": sub + "d", "status": r.Status})
		}
		fmt.Fprintf(stdout, "%s %s node %s: run is now %s\n", sub+"d", r.ID, pos[1], r.Status)
		return nil
	}
	return usagef("unknown subcommand %q\n%s", sub, runsUsage)
}

// notFound gives ErrNotFound / ErrNotSuspended exit code 3.
func notFound(err error) error {
	if errors.Is(err, worker.ErrNotFound) || errors.Is(err, worker.ErrNotSuspended) {
		return &ExitError{Code: 3, Err: err}
	}
	return err
}

// runJSON is a run as printed by --json: the payload as JSON when it is.
type runJSON struct {
	*worker.Run
	Payload json.RawMessage `json:"Payload,omitempty"`
}

func toJSON(r *worker.Run, payload bool) runJSON {
	out := runJSON{Run: r}
	if payload && json.Valid(r.Payload) {
		out.Payload = r.Payload
	}
	return out
}

func runsJSON(rs []*worker.Run) []runJSON {
	out := make([]runJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, toJSON(r, false))
	}
	return out
}

func lastErr(r *worker.Run) string {
	if r.Status == worker.StatusSuspended {
		return r.SuspendReason
	}
	if r.LastError == nil {
		return ""
	}
	return fmt.Sprintf("[%s] %s", r.LastError.Kind, r.LastError.Message)
}

func printRuns(w io.Writer, runs []*worker.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tWORKFLOW\tSTATUS\tATTEMPTS\tCRASHES\tPEAK\tUPDATED\tLAST ERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Status, r.Attempts, r.Crashes,
			bytesH(r.PeakBytes), ago(r.UpdatedAt), trunc(lastErr(r), 70))
	}
	tw.Flush()
}

func showRun(ctx context.Context, c *common, q *worker.Queue, w io.Writer, id string) error {
	r, err := q.GetRun(ctx, id)
	if err != nil {
		return notFound(err)
	}
	if c.json {
		return writeJSON(w, toJSON(r, true))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	kv("Run", r.ID)
	kv("Workflow", r.Workflow)
	kv("Status", string(r.Status))
	max := "worker default"
	if r.MaxAttempts > 0 {
		max = fmt.Sprint(r.MaxAttempts)
	}
	kv("Attempts", fmt.Sprintf("%d (max %s), crashes %d", r.Attempts, max, r.Crashes))
	kv("Peak", bytesH(r.PeakBytes)+" (hint "+bytesH(r.MemoryHint)+")")
	kv("Worker", r.Worker)
	kv("Enqueued", ago(r.EnqueuedAt))
	kv("Started", ago(r.StartedAt))
	kv("Finished", ago(r.FinishedAt))
	if r.Status == worker.StatusRunning {
		kv("Lease until", r.LeaseUntil.Format("15:04:05.000"))
	}
	if r.Status == worker.StatusSuspended {
		kv("Suspended at", fmt.Sprintf("%v (%s)", r.Suspended, ago(r.SuspendedAt)))
		kv("Waiting for", r.SuspendReason)
	}
	if r.LastError != nil {
		kv("Last error", fmt.Sprintf("[%s] %s", r.LastError.Kind, r.LastError.Message))
	}
	tw.Flush()

	// Nodes: statuses merged with per-node figures.
	stats := map[string]worker.NodeStat{}
	for _, s := range r.NodeStats {
		stats[s.Node] = s
	}
	ids := map[string]bool{}
	for id := range r.Nodes {
		ids[id] = true
	}
	for id := range stats {
		ids[id] = true
	}
	if len(ids) > 0 {
		names := make([]string, 0, len(ids))
		for id := range ids {
			names = append(names, id)
		}
		sort.Strings(names)
		fmt.Fprintln(w, "\nNodes:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tTYPE\tSTATUS\tPEAK\tSPILLED\tCHILD PEAK\tDECISION")
		for _, id := range names {
			s := stats[id]
			st := r.Nodes[id]
			if st == "" {
				st = s.Status
			}
			dec := r.Decisions[id]
			if dec == "" {
				dec = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, orDash(s.Type), orDash(st), bytesH(s.PeakBytes), bytesH(s.SpilledBytes), bytesH(s.ChildPeakBytes), dec)
		}
		tw.Flush()
	}
	if len(r.History) > 0 {
		fmt.Fprintln(w, "\nHistory:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range r.History {
			fmt.Fprintf(tw, "  %s\t%s\tattempt %d\t%s\t%s\n", e.At.UTC().Format("2006-01-02T15:04:05.000Z"), e.Event, e.Attempt, orDash(e.Worker), trunc(e.Error, 90))
		}
		tw.Flush()
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
