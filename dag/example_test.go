package dag_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dagrun/dagrun/dag"
)

// A custom node type, a three-node workflow, and the moment each output is
// freed: as soon as its last consumer has read it.
func Example() {
	reg := dag.NewRegistry()
	reg.MustRegister(dag.Type{
		Name: "upper", Output: dag.KindBytes, MaxInputs: -1,
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			var p struct {
				Text string `json:"text"`
			}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				for _, i := range in.All() {
					rc, err := i.Open(ctx)
					if err != nil {
						return err
					}
					b, _ := io.ReadAll(rc)
					rc.Close()
					fmt.Fprint(out, strings.ToUpper(string(b)), " ")
				}
				_, err := fmt.Fprint(out, strings.ToUpper(p.Text))
				return err
			}), nil
		},
	})
	wf, err := dag.Parse([]byte(`{"name": "hello", "nodes": [
		{"id": "a", "type": "upper", "params": {"text": "hello"}},
		{"id": "b", "type": "upper", "inputs": ["a"], "params": {"text": "dag"}},
		{"id": "c", "type": "upper", "inputs": ["b"], "params": {"text": "!"}}]}`), dag.LoadLimits{})
	if err != nil {
		panic(err)
	}
	plan, err := dag.Validate(wf, reg)
	if err != nil {
		panic(err)
	}
	ex, _ := dag.New(dag.Config{Parallelism: 1, OnEvent: func(e dag.Event) {
		if e.Type == dag.EventFreed {
			fmt.Printf("freed %s (%d bytes)\n", e.Node, e.Bytes)
		}
	}})
	res, err := ex.Run(context.Background(), plan)
	if err != nil {
		panic(err)
	}
	out, _ := res.Output("c")
	rc, _ := out.Open(context.Background())
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(b))
	res.Close()
	// Output:
	// freed a (5 bytes)
	// freed b (9 bytes)
	// HELLO DAG !
	// freed c (11 bytes)
}

// Validation reports every problem with its JSON location.
func ExampleValidate() {
	reg := dag.NewRegistry()
	reg.MustRegister(dag.Type{Name: "noop", MaxInputs: -1, New: func(*dag.NodeSpec) (dag.Node, error) {
		return dag.NodeFunc(func(context.Context, *dag.Inputs, *dag.Output) error { return nil }), nil
	}})
	wf, _ := dag.Parse([]byte(`{"name": "bad", "nodes": [
		{"id": "a", "type": "noop", "inputs": ["b"]},
		{"id": "b", "type": "noop", "inputs": ["a"]},
		{"id": "c", "type": "nope", "inputs": ["x"]}]}`), dag.LoadLimits{})
	_, err := dag.Validate(wf, reg)
	fmt.Println(err)
	// Output:
	// workflow: 3 problem(s):
	//   /nodes/0: cycle: a -> b -> a
	//   /nodes/2/inputs/0: input "x" names no node
	//   /nodes/2/type: unknown node type "nope" (known: noop)
}
