package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dagrun/dagrun"
	"github.com/dagrun/dagrun/dag"
	"github.com/dagrun/dagrun/nodes"
)

func cmdValidate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "validate", "validate WORKFLOW.json...")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return invalid("validate needs at least one workflow file")
	}
	bad := 0
	for _, p := range pos {
		eng, _ := dagrun.New(dagrun.Config{Nodes: nodes.Options{BaseDir: dagrun.BaseDir(p)}})
		plan, err := eng.LoadFile(p)
		if err != nil {
			bad++
			fmt.Fprintln(env.Stdout, err)
			continue
		}
		fmt.Fprintf(env.Stdout, "%s: ok (%d nodes, results: %s)\n", p, len(plan.Nodes()), strings.Join(plan.Results(), ", "))
	}
	if bad > 0 {
		return invalid("%d of %d workflow(s) invalid", bad, len(pos))
	}
	return nil
}

func cmdGraph(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "graph", "graph [--format mermaid|dot] WORKFLOW.json")
	format := fs.String("format", "mermaid", "mermaid or dot")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return invalid("graph needs one workflow file")
	}
	eng, _ := dagrun.New(dagrun.Config{Nodes: nodes.Options{BaseDir: dagrun.BaseDir(pos[0])}})
	plan, err := eng.LoadFile(pos[0])
	if err != nil {
		return err
	}
	switch *format {
	case "mermaid":
		return dag.Mermaid(env.Stdout, plan)
	case "dot":
		return dag.DOT(env.Stdout, plan)
	}
	return invalid("--format must be mermaid or dot, got %q", *format)
}

func cmdNodes(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "nodes", "nodes [--json] [TYPE...]")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	reg := nodes.NewRegistry(nodes.Options{})
	types := reg.Types()
	if len(pos) > 0 {
		var sel []*dag.Type
		for _, name := range pos {
			t, ok := reg.Lookup(name)
			if !ok {
				return invalid("unknown node type %q (known: %s)", name, strings.Join(reg.Names(), ", "))
			}
			sel = append(sel, t)
		}
		types = sel
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(types)
	}
	for _, t := range types {
		fmt.Fprintf(env.Stdout, "%s  (output: %s", t.Name, t.Output)
		if t.StreamsInput {
			fmt.Fprint(env.Stdout, ", streams its input")
		}
		fmt.Fprintf(env.Stdout, ")\n  %s\n", t.Doc)
		if len(t.Params) > 0 {
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			for _, p := range t.Params {
				req := ""
				if p.Required {
					req = " (required)"
				}
				def := ""
				if p.Default != "" {
					def = " [default " + p.Default + "]"
				}
				fmt.Fprintf(tw, "    %s\t%s%s\t%s%s\n", p.Name, p.Type, req, p.Doc, def)
			}
			tw.Flush()
		}
		fmt.Fprintln(env.Stdout)
	}
	return nil
}

func cmdSchema(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "schema", "schema")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return WriteSchema(env.Stdout)
}

// WriteSchema writes the JSON Schema of workflow files, with the params of
// every built-in node type.
func WriteSchema(w io.Writer) error {
	b, err := json.MarshalIndent(dag.Schema(nodes.NewRegistry(nodes.Options{})), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
