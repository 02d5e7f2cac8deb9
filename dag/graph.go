package dag

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mermaid writes the plan as a Mermaid flowchart.
func Mermaid(w io.Writer, p *Plan) error {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	id := func(n *planNode) string { return "n" + strconv.Itoa(n.idx) }
	for _, n := range p.order {
		label := strings.ReplaceAll(n.spec.ID+"<br/>"+n.spec.Type, `"`, "'")
		shape := `["%s"]`
		if n.result {
			shape = `(["%s"])`
		}
		fmt.Fprintf(&b, "  %s"+shape+"\n", id(n), label)
	}
	for _, n := range p.order {
		for _, in := range n.inputs {
			arrow := "-->"
			if in.typ.Output == KindTable && len(in.consumers) == 1 && in.consumers[0].typ.StreamsInput && !in.result {
				arrow = "==>|rows|"
			}
			fmt.Fprintf(&b, "  %s %s %s\n", id(in), arrow, id(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DOT writes the plan as a Graphviz digraph.
func DOT(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=TB;\n  node [shape=box];\n", p.Workflow.Name)
	for _, n := range p.order {
		attr := ""
		if n.result {
			attr = ", peripheries=2"
		}
		fmt.Fprintf(&b, "  %q [label=%q%s];\n", n.spec.ID, n.spec.ID+"\n"+n.spec.Type, attr)
	}
	for _, n := range p.order {
		for _, in := range n.inputs {
			fmt.Fprintf(&b, "  %q -> %q;\n", in.spec.ID, n.spec.ID)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
