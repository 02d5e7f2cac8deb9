package dag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Node is one executable step. Run reads its inputs and writes its output;
// it must honour ctx. A Node value may be run more than once (retries) but
// never concurrently with itself.
type Node interface {
	Run(ctx context.Context, in *Inputs, out *Output) error
}

// NodeFunc adapts a function to a Node.
type NodeFunc func(ctx context.Context, in *Inputs, out *Output) error

// Run calls f.
func (f NodeFunc) Run(ctx context.Context, in *Inputs, out *Output) error { return f(ctx, in, out) }

// Param documents one parameter of a node type, for `dagrun nodes`, the JSON
// Schema and editors.
type Param struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // string, integer, number, boolean, object, array, duration, bytesize
	Required bool   `json:"required,omitempty"`
	Default  string `json:"default,omitempty"`
	Doc      string `json:"doc"`
}

// Type is a registered node type.
type Type struct {
	// Name is what workflows write in a node's "type", e.g. "csv.read".
	Name string `json:"name"`
	// Doc is one or two sentences for `dagrun nodes`.
	Doc string `json:"doc"`
	// Params documents the accepted params.
	Params []Param `json:"params,omitempty"`
	// Output is the kind of output the type produces (KindAny: decided at run time).
	Output Kind `json:"output"`
	// StreamsInput reports that the type reads table inputs row by row, so a
	// table produced for it alone can be piped instead of materialised.
	StreamsInput bool `json:"streams_input,omitempty"`
	// MinInputs and MaxInputs bound the number of inputs (MaxInputs < 0: no bound).
	MinInputs int `json:"min_inputs"`
	MaxInputs int `json:"max_inputs"`
	// New builds a node from its spec, decoding and checking spec.Params.
	// Return a *ParamError (or several joined with errors.Join) for bad params.
	New func(spec *NodeSpec) (Node, error) `json:"-"`
}

// ParamError reports a bad parameter of a node.
type ParamError struct {
	// Field is the parameter's name, possibly dotted ("headers.Accept").
	Field   string
	Message string
}

// Error implements error.
func (e *ParamError) Error() string { return fmt.Sprintf("param %q: %s", e.Field, e.Message) }

// Registry maps type names to node types. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]*Type
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]*Type{}} }

// Register adds a type. It fails if the name is taken or New is nil.
func (r *Registry) Register(t Type) error {
	if t.Name == "" || t.New == nil {
		return errors.New("dag: Register needs a Name and a New func")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.types[t.Name]; ok {
		return fmt.Errorf("dag: node type %q already registered", t.Name)
	}
	tt := t
	r.types[t.Name] = &tt
	return nil
}

// MustRegister is Register that panics, for package initialisation.
func (r *Registry) MustRegister(t Type) {
	if err := r.Register(t); err != nil {
		panic(err)
	}
}

// Lookup returns the type with the given name.
func (r *Registry) Lookup(name string) (*Type, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.types[name]
	return t, ok
}

// Types returns every registered type sorted by name.
func (r *Registry) Types() []*Type {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Type, 0, len(r.types))
	for _, t := range r.types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the registered type names, sorted.
func (r *Registry) Names() []string {
	var out []string
	for _, t := range r.Types() {
		out = append(out, t.Name)
	}
	return out
}

// DecodeParams decodes raw params strictly into v (a pointer to a struct with
// json tags): unknown fields and wrong types are *ParamErrors naming the field.
// Empty params decode to v unchanged.
func DecodeParams(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			f = "(params)"
		}
		return &ParamError{Field: f, Message: fmt.Sprintf("must be %s, got JSON %s", te.Type.String(), te.Value)}
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return &ParamError{Field: name, Message: "unknown parameter"}
	}
	// Custom UnmarshalJSON errors (durations, sizes) do not carry the field.
	return &ParamError{Field: "(params)", Message: strings.TrimPrefix(msg, "json: ")}
}

// Require returns a *ParamError when a required string param is empty.
func Require(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return &ParamError{Field: field, Message: "required"}
	}
	return nil
}
