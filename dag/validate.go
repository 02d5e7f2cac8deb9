package dag

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Plan is a validated workflow, ready to run: every node built by its type,
// the graph checked for duplicates, dangling inputs and cycles.
type Plan struct {
	Workflow *Workflow
	nodes    []*planNode
	byID     map[string]*planNode
	order    []*planNode // topological
}

type planNode struct {
	idx       int
	spec      *NodeSpec
	typ       *Type
	node      Node
	inputs    []*planNode
	consumers []*planNode // one entry per consuming edge
	result    bool
}

// Nodes returns the node specs in topological order.
func (p *Plan) Nodes() []*NodeSpec {
	out := make([]*NodeSpec, len(p.order))
	for i, n := range p.order {
		out[i] = n.spec
	}
	return out
}

// Results returns the ids of the workflow's result nodes.
func (p *Plan) Results() []string {
	var out []string
	for _, n := range p.nodes {
		if n.result {
			out = append(out, n.spec.ID)
		}
	}
	return out
}

// Validate checks a workflow against a registry and builds its plan. All
// problems are reported at once, each with its JSON location, in an
// *InvalidError: duplicate ids, inputs that name no node, cycles (printed),
// unknown node types (listing the known ones), wrong input counts and bad
// params.
func Validate(wf *Workflow, reg *Registry) (*Plan, error) {
	var ps problems
	p := &Plan{Workflow: wf, byID: make(map[string]*planNode, len(wf.Nodes))}
	for i := range wf.Nodes {
		spec := &wf.Nodes[i]
		path := fmt.Sprintf("/nodes/%d", i)
		n := &planNode{idx: i, spec: spec}
		if prev, dup := p.byID[spec.ID]; dup && spec.ID != "" {
			ps.add(path+"/id", "duplicate id %q (first used at /nodes/%d)", spec.ID, prev.idx)
		} else {
			p.byID[spec.ID] = n
		}
		p.nodes = append(p.nodes, n)
	}
	for _, n := range p.nodes {
		path := fmt.Sprintf("/nodes/%d", n.idx)
		seen := map[string]bool{}
		for j, in := range n.spec.Inputs {
			src, ok := p.byID[in]
			switch {
			case !ok:
				ps.add(fmt.Sprintf("%s/inputs/%d", path, j), "input %q names no node%s", in, suggest(in, p.byID))
			case in == n.spec.ID:
				ps.add(fmt.Sprintf("%s/inputs/%d", path, j), "node %q consumes itself", in)
			case seen[in]:
				ps.add(fmt.Sprintf("%s/inputs/%d", path, j), "input %q listed twice", in)
			default:
				n.inputs = append(n.inputs, src)
				src.consumers = append(src.consumers, n)
			}
			seen[in] = true
		}
		if n.spec.Type == "" {
			continue
		}
		t, ok := reg.Lookup(n.spec.Type)
		if !ok {
			ps.add(path+"/type", "unknown node type %q%s (known: %s)", n.spec.Type, suggestName(n.spec.Type, reg.Names()), strings.Join(reg.Names(), ", "))
			continue
		}
		n.typ = t
		if len(n.spec.Inputs) < t.MinInputs {
			ps.add(path+"/inputs", "type %s needs at least %d input(s), got %d", t.Name, t.MinInputs, len(n.spec.Inputs))
		}
		if t.MaxInputs >= 0 && len(n.spec.Inputs) > t.MaxInputs {
			ps.add(path+"/inputs", "type %s takes at most %d input(s), got %d", t.Name, t.MaxInputs, len(n.spec.Inputs))
		}
		node, err := t.New(n.spec)
		if err != nil {
			for _, e := range flatten(err) {
				var pe *ParamError
				if errors.As(e, &pe) {
					fp := path + "/params"
					if pe.Field != "(params)" {
						fp += "/" + strings.ReplaceAll(escapePointer(pe.Field), ".", "/")
					}
					ps.add(fp, "%s (type %s)", pe.Message, t.Name)
				} else {
					ps.add(path+"/params", "%v (type %s)", e, t.Name)
				}
			}
			continue
		}
		n.node = node
	}
	for _, c := range findCycles(p.nodes) {
		ids := make([]string, len(c))
		for i, n := range c {
			ids[i] = n.spec.ID
		}
		ps.add(fmt.Sprintf("/nodes/%d", c[0].idx), "cycle: %s -> %s", strings.Join(ids, " -> "), ids[0])
	}
	if len(wf.Results) > 0 {
		for i, r := range wf.Results {
			if n, ok := p.byID[r]; ok {
				n.result = true
			} else {
				ps.add(fmt.Sprintf("/results/%d", i), "result %q names no node", r)
			}
		}
	} else {
		for _, n := range p.nodes {
			n.result = len(n.consumers) == 0
		}
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return pathLess(ps[i].Path, ps[j].Path) })
		return nil, &InvalidError{Problems: ps}
	}
	p.order = topo(p.nodes)
	return p, nil
}

// pathLess orders JSON pointers with numeric segments compared as numbers.
func pathLess(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		var x, y int
		_, ex := fmt.Sscanf(as[i], "%d", &x)
		_, ey := fmt.Sscanf(bs[i], "%d", &y)
		if ex == nil && ey == nil {
			return x < y
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// findCycles returns one cycle per strongly connected component that has one
// (Tarjan's algorithm, iterative so that deep graphs cannot overflow).
func findCycles(nodes []*planNode) [][]*planNode {
	index := make([]int, len(nodes))
	low := make([]int, len(nodes))
	on := make([]bool, len(nodes))
	for i := range index {
		index[i] = -1
	}
	var stack []*planNode
	var out [][]*planNode
	next := 0
	type frame struct {
		n *planNode
		i int
	}
	for _, root := range nodes {
		if index[root.idx] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root.idx], low[root.idx] = next, next
		next++
		stack = append(stack, root)
		on[root.idx] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.i < len(f.n.inputs) {
				w := f.n.inputs[f.i]
				f.i++
				if index[w.idx] < 0 {
					index[w.idx], low[w.idx] = next, next
					next++
					stack = append(stack, w)
					on[w.idx] = true
					call = append(call, frame{w, 0})
				} else if on[w.idx] && index[w.idx] < low[f.n.idx] {
					low[f.n.idx] = index[w.idx]
				}
				continue
			}
			v := f.n
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].n
				if low[v.idx] < low[u.idx] {
					low[u.idx] = low[v.idx]
				}
			}
			if low[v.idx] == index[v.idx] {
				var comp []*planNode
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					on[w.idx] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				if len(comp) > 1 {
					out = append(out, cycleIn(comp))
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].idx < out[j][0].idx })
	return out
}

// cycleIn walks a strongly connected component to print one cycle through
// its first node, in dependency order (a -> b means b consumes a).
func cycleIn(comp []*planNode) []*planNode {
	in := map[*planNode]bool{}
	start := comp[0]
	for _, n := range comp {
		in[n] = true
		if n.idx < start.idx {
			start = n
		}
	}
	// BFS over consumer edges inside the component back to start.
	prev := map[*planNode]*planNode{}
	queue := []*planNode{start}
	seen := map[*planNode]bool{start: true}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, c := range n.consumers {
			if !in[c] {
				continue
			}
			if c == start {
				var path []*planNode
				for x := n; x != start; x = prev[x] {
					path = append(path, x)
				}
				path = append(path, start)
				for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			if !seen[c] {
				seen[c] = true
				prev[c] = n
				queue = append(queue, c)
			}
		}
	}
	return comp
}

func topo(nodes []*planNode) []*planNode {
	indeg := make([]int, len(nodes))
	for _, n := range nodes {
		indeg[n.idx] = len(n.inputs)
	}
	var q, out []*planNode
	for _, n := range nodes {
		if indeg[n.idx] == 0 {
			q = append(q, n)
		}
	}
	for len(q) > 0 {
		n := q[0]
		q = q[1:]
		out = append(out, n)
		for _, c := range n.consumers {
			indeg[c.idx]--
			if indeg[c.idx] == 0 {
				q = append(q, c)
			}
		}
	}
	return out
}

func suggest(name string, ids map[string]*planNode) string {
	var names []string
	for id := range ids {
		names = append(names, id)
	}
	return suggestName(name, names)
}

// suggestName proposes the closest name when it is plausibly a typo: an
// edit distance (with transpositions) of at most a third of the name, and
// less than the whole name.
func suggestName(name string, names []string) string {
	limit := max(1, len(name)/3)
	if limit >= len(name) {
		limit = len(name) - 1
	}
	best, bestD := "", limit+1
	sort.Strings(names)
	for _, n := range names {
		if d := editDistance(name, n, bestD); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance (insertions,
// deletions, substitutions and adjacent transpositions), or max when it is
// clearly larger.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+c)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
