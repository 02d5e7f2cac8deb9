package ops

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

const queueUsage = `usage: dagrun queue stats
common flags: --redis URL --queue NAME --json`

// Queue implements `dagrun queue stats`: depths, counters and the figures
// every live worker publishes.
func Queue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "stats" {
		return usagef("%s", queueUsage)
	}
	fs, c := newFlags("queue stats", stderr)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("queue stats takes no arguments\n%s", queueUsage)
	}
	rdb, q, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := q.Stats(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "queue %s: pending %d, in flight %d, suspended %d, dead letters %d\n", q.Name(), st.Pending, st.Running, st.Suspended, st.Dead)
	keys := make([]string, 0, len(st.Counters))
	for k := range st.Counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprint(stdout, "counters:")
	for _, k := range keys {
		fmt.Fprintf(stdout, " %s=%d", k, st.Counters[k])
	}
	fmt.Fprintln(stdout)
	if len(st.Workers) == 0 {
		fmt.Fprintln(stdout, "no worker seen in the last minute")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tSEEN\tRUNNING\tWORKING SET\tLIMIT\tUSED\tPEAK\tBUDGET\tGATE\tSOURCE")
	for _, w := range st.Workers {
		gate := "open"
		if w.Paused {
			gate = "PAUSED"
		}
		if w.Draining {
			gate += ",draining"
		}
		used := "-"
		if w.Limit > 0 {
			used = fmt.Sprintf("%.0f%%", 100*float64(w.WorkingSet)/float64(w.Limit))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, ago(w.LastSeen), w.Running, bytesH(int64(w.WorkingSet)),
			bytesH(int64(w.Limit)), used, bytesH(int64(w.Peak)), bytesH(w.Capacity), gate, orDash(w.Source))
	}
	return tw.Flush()
}
