package nodes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dagrun/dagrun/dag"
)

// streamRows reads every row of a node's single table input, calling fn
// with the input's columns once and then each row. fn returns stop=true to
// end early (the producer is told to stop).
func streamRows(ctx context.Context, in *dag.Input, start func(cols []string) error, fn func(dag.Row) (bool, error)) error {
	rr, err := in.Rows(ctx)
	if err != nil {
		return err
	}
	defer rr.Close()
	if err := start(rr.Columns()); err != nil {
		return err
	}
	for {
		r, err := rr.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		stop, err := fn(r)
		if err != nil || stop {
			return err
		}
	}
}

func colIndex(cols []string, name string) (int, error) {
	for i, c := range cols {
		if c == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no column %q (columns: %s)", name, strings.Join(cols, ", "))
}

// Condition is one test of table.filter.
type Condition struct {
	Column string `json:"column"`
	Op     string `json:"op"`
	Value  any    `json:"value,omitempty"`
}

var filterOps = []string{"eq", "ne", "lt", "le", "gt", "ge", "contains", "prefix", "matches", "empty", "not_empty"}

type filterParams struct {
	Where []Condition `json:"where"`
	Any   bool        `json:"any"`
}

type compiled struct {
	Condition
	idx int
	num float64
	isN bool
	str string
	re  *regexp.Regexp
}

func (c *compiled) match(r dag.Row) bool {
	var v any
	if c.idx < len(r) {
		v = r[c.idx]
	}
	switch c.Op {
	case "empty":
		return v == nil || v == ""
	case "not_empty":
		return v != nil && v != ""
	case "contains":
		return strings.Contains(cellString(v), c.str)
	case "prefix":
		return strings.HasPrefix(cellString(v), c.str)
	case "matches":
		return c.re.MatchString(cellString(v))
	}
	var cmp int
	if f, ok := number(v); ok && c.isN {
		switch {
		case f < c.num:
			cmp = -1
		case f > c.num:
			cmp = 1
		}
	} else {
		cmp = strings.Compare(cellString(v), c.str)
	}
	switch c.Op {
	case "eq":
		return cmp == 0
	case "ne":
		return cmp != 0
	case "lt":
		return cmp < 0
	case "le":
		return cmp <= 0
	case "gt":
		return cmp > 0
	default: // ge
		return cmp >= 0
	}
}

// number returns a cell as a float when it is numeric (or numeric text).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case time.Time:
		return float64(x.Unix()), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

func tableFilterType() dag.Type {
	return dag.Type{
		Name:         "table.filter",
		Doc:          "Keeps the rows that match every condition (or any, with any: true). Streams: rows are never held.",
		Output:       dag.KindTable,
		StreamsInput: true,
		MinInputs:    1,
		MaxInputs:    1,
		Params: []dag.Param{
			{Name: "where", Type: "array", Required: true, Doc: `conditions {"column","op","value"}; op is one of ` + strings.Join(filterOps, ", ") + "; numbers compare numerically"},
			{Name: "any", Type: "boolean", Doc: "keep rows matching any condition instead of all"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p filterParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if len(p.Where) == 0 {
				return nil, &dag.ParamError{Field: "where", Message: "needs at least one condition"}
			}
			var errs []error
			conds := make([]*compiled, len(p.Where))
			for i, c := range p.Where {
				f := fmt.Sprintf("where.%d", i)
				cc := &compiled{Condition: c}
				if c.Column == "" {
					errs = append(errs, &dag.ParamError{Field: f + ".column", Message: "required"})
				}
				ok := false
				for _, op := range filterOps {
					ok = ok || op == c.Op
				}
				if !ok {
					errs = append(errs, &dag.ParamError{Field: f + ".op", Message: fmt.Sprintf("unknown op %q (known: %s)", c.Op, strings.Join(filterOps, ", "))})
				}
				switch v := c.Value.(type) {
				case float64:
					cc.num, cc.isN, cc.str = v, true, strconv.FormatFloat(v, 'f', -1, 64)
				case string:
					cc.str = v
				case bool:
					cc.str = strconv.FormatBool(v)
				case nil:
					if c.Op != "empty" && c.Op != "not_empty" && ok {
						errs = append(errs, &dag.ParamError{Field: f + ".value", Message: "required for op " + c.Op})
					}
				default:
					errs = append(errs, &dag.ParamError{Field: f + ".value", Message: "must be a string, number or boolean"})
				}
				if c.Op == "matches" {
					re, err := regexp.Compile(cc.str)
					if err != nil {
						errs = append(errs, &dag.ParamError{Field: f + ".value", Message: err.Error()})
					}
					cc.re = re
				}
				conds[i] = cc
			}
			if len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var w dag.RowWriter
				return streamRows(ctx, in.At(0), func(cols []string) (err error) {
					for _, c := range conds {
						if c.idx, err = colIndex(cols, c.Column); err != nil {
							return dag.Permanent(err)
						}
					}
					w, err = out.Table(cols)
					return err
				}, func(r dag.Row) (bool, error) {
					keep := !p.Any
					for _, c := range conds {
						m := c.match(r)
						if p.Any && m {
							keep = true
							break
						}
						if !p.Any && !m {
							keep = false
							break
						}
					}
					if keep {
						return false, w.Write(ctx, r)
					}
					return false, nil
				})
			}), nil
		},
	}
}

type selectParams struct {
	Columns []string          `json:"columns"`
	Rename  map[string]string `json:"rename"`
}

func tableSelectType() dag.Type {
	return dag.Type{
		Name:         "table.select",
		Doc:          "Keeps and orders the named columns, optionally renaming them. Streams.",
		Output:       dag.KindTable,
		StreamsInput: true,
		MinInputs:    1,
		MaxInputs:    1,
		Params: []dag.Param{
			{Name: "columns", Type: "array", Required: true, Doc: "column names to keep, in order"},
			{Name: "rename", Type: "object", Doc: "old name -> new name"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p selectParams
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if len(p.Columns) == 0 {
				return nil, &dag.ParamError{Field: "columns", Message: "needs at least one column"}
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var w dag.RowWriter
				idx := make([]int, len(p.Columns))
				return streamRows(ctx, in.At(0), func(cols []string) (err error) {
					names := make([]string, len(p.Columns))
					for i, c := range p.Columns {
						if idx[i], err = colIndex(cols, c); err != nil {
							return dag.Permanent(err)
						}
						names[i] = c
						if n, ok := p.Rename[c]; ok {
							names[i] = n
						}
					}
					w, err = out.Table(names)
					return err
				}, func(r dag.Row) (bool, error) {
					row := make(dag.Row, len(idx))
					for i, j := range idx {
						if j < len(r) {
							row[i] = r[j]
						}
					}
					return false, w.Write(ctx, row)
				})
			}), nil
		},
	}
}

type headParams struct {
	N int `json:"n"`
}

func tableHeadType() dag.Type {
	return dag.Type{
		Name:         "table.head",
		Doc:          "Keeps the first n rows, then tells its producer to stop.",
		Output:       dag.KindTable,
		StreamsInput: true,
		MinInputs:    1,
		MaxInputs:    1,
		Params:       []dag.Param{{Name: "n", Type: "integer", Default: "10", Doc: "rows to keep"}},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			p := headParams{N: 10}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if p.N < 0 {
				return nil, &dag.ParamError{Field: "n", Message: "must be >= 0"}
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var w dag.RowWriter
				n := 0
				return streamRows(ctx, in.At(0), func(cols []string) (err error) {
					w, err = out.Table(cols)
					return err
				}, func(r dag.Row) (bool, error) {
					if n >= p.N {
						return true, nil
					}
					n++
					return n >= p.N, w.Write(ctx, r)
				})
			}), nil
		},
	}
}

// Aggregate is one aggregate of table.aggregate.
type Aggregate struct {
	Op     string `json:"op"`
	Column string `json:"column,omitempty"`
	As     string `json:"as,omitempty"`
}

type aggParams struct {
	GroupBy    []string    `json:"group_by"`
	Aggregates []Aggregate `json:"aggregates"`
	MaxGroups  int         `json:"max_groups"`
}

type accum struct {
	count int64
	sum   float64
	n     int64
	min   float64
	max   float64
}

func tableAggregateType() dag.Type {
	ops := []string{"count", "sum", "min", "max", "mean"}
	return dag.Type{
		Name:         "table.aggregate",
		Doc:          "Groups rows by columns and computes count/sum/min/max/mean; memory grows with the number of groups (bounded by max_groups), not rows.",
		Output:       dag.KindTable,
		StreamsInput: true,
		MinInputs:    1,
		MaxInputs:    1,
		Params: []dag.Param{
			{Name: "group_by", Type: "array", Doc: "grouping columns (none: one group)"},
			{Name: "aggregates", Type: "array", Required: true, Doc: `{"op": count|sum|min|max|mean, "column", "as"}`},
			{Name: "max_groups", Type: "integer", Default: "1000000", Doc: "fail beyond this many groups"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			p := aggParams{MaxGroups: 1_000_000}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			var errs []error
			if len(p.Aggregates) == 0 {
				errs = append(errs, &dag.ParamError{Field: "aggregates", Message: "needs at least one aggregate"})
			}
			for i, a := range p.Aggregates {
				f := fmt.Sprintf("aggregates.%d", i)
				known := false
				for _, op := range ops {
					known = known || op == a.Op
				}
				if !known {
					errs = append(errs, &dag.ParamError{Field: f + ".op", Message: fmt.Sprintf("unknown op %q (known: %s)", a.Op, strings.Join(ops, ", "))})
				}
				if a.Op != "count" && a.Column == "" {
					errs = append(errs, &dag.ParamError{Field: f + ".column", Message: "required for op " + a.Op})
				}
			}
			if len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var gidx, aidx []int
				groups := map[string]*struct {
					key  dag.Row
					accs []accum
				}{}
				var order []string
				var kb strings.Builder
				err := streamRows(ctx, in.At(0), func(cols []string) error {
					for _, g := range p.GroupBy {
						i, err := colIndex(cols, g)
						if err != nil {
							return dag.Permanent(err)
						}
						gidx = append(gidx, i)
					}
					for _, a := range p.Aggregates {
						i := -1
						if a.Column != "" {
							var err error
							if i, err = colIndex(cols, a.Column); err != nil {
								return dag.Permanent(err)
							}
						}
						aidx = append(aidx, i)
					}
					return nil
				}, func(r dag.Row) (bool, error) {
					kb.Reset()
					for _, i := range gidx {
						if i < len(r) {
							kb.WriteString(cellString(r[i]))
						}
						kb.WriteByte(0)
					}
					k := kb.String()
					g := groups[k]
					if g == nil {
						if len(groups) >= p.MaxGroups {
							return false, dag.Permanent(fmt.Errorf("more than max_groups=%d groups", p.MaxGroups))
						}
						g = &struct {
							key  dag.Row
							accs []accum
						}{accs: make([]accum, len(aidx))}
						for _, i := range gidx {
							if i < len(r) {
								g.key = append(g.key, r[i])
							} else {
								g.key = append(g.key, nil)
							}
						}
						for j := range g.accs {
							g.accs[j].min, g.accs[j].max = math.Inf(1), math.Inf(-1)
						}
						groups[k] = g
						order = append(order, k)
					}
					for j, i := range aidx {
						a := &g.accs[j]
						a.count++
						if i < 0 || i >= len(r) {
							continue
						}
						if f, ok := number(r[i]); ok {
							a.n++
							a.sum += f
							a.min = math.Min(a.min, f)
							a.max = math.Max(a.max, f)
						}
					}
					return false, nil
				})
				if err != nil {
					return err
				}
				cols := append([]string(nil), p.GroupBy...)
				for _, a := range p.Aggregates {
					name := a.As
					if name == "" {
						name = a.Op
						if a.Column != "" {
							name += "_" + a.Column
						}
					}
					cols = append(cols, name)
				}
				w, err := out.Table(cols)
				if err != nil {
					return err
				}
				sort.Strings(order)
				for _, k := range order {
					g := groups[k]
					row := append(dag.Row(nil), g.key...)
					for j, a := range p.Aggregates {
						acc := g.accs[j]
						var v any
						switch a.Op {
						case "count":
							if a.Column == "" {
								v = acc.count
							} else {
								v = acc.n
							}
						case "sum":
							v = acc.sum
						case "min", "max", "mean":
							if acc.n > 0 {
								v = map[string]float64{"min": acc.min, "max": acc.max, "mean": acc.sum / float64(acc.n)}[a.Op]
							}
						}
						row = append(row, v)
					}
					if err := w.Write(ctx, row); err != nil {
						return err
					}
				}
				return nil
			}), nil
		},
	}
}
