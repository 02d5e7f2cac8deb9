package nodes

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/dagrun/dagrun/dag"
)

type templateParams struct {
	Template      string       `json:"template"`
	File          string       `json:"file"`
	MaxInputBytes dag.ByteSize `json:"max_input_bytes"`
}

func textTemplateType(opts *Options) dag.Type {
	return dag.Type{
		Name: "text.template",
		Doc: "Renders a Go text/template over the inputs, streaming the result (for example a prompt built from rows). " +
			`Functions: rows "id" (iterate a table's rows as maps, streaming), cols "id", text "id" (whole input, bounded), ` +
			`json "id" (decoded), cell, truncate N s, join, upper, lower, trim, tojson.`,
		Output:       dag.KindBytes,
		StreamsInput: true,
		MaxInputs:    -1,
		Params: []dag.Param{
			{Name: "template", Type: "string", Doc: "the template text"},
			{Name: "file", Type: "string", Doc: "a template file instead, relative to the workflow file"},
			{Name: "max_input_bytes", Type: "bytesize", Default: "16MiB", Doc: "limit for text and json of one input"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			p := templateParams{MaxInputBytes: 16 << 20}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			text := p.Template
			if (p.Template == "") == (p.File == "") {
				return nil, &dag.ParamError{Field: "template", Message: "set exactly one of template and file"}
			}
			if p.File != "" {
				b, err := os.ReadFile(opts.path(p.File))
				if err != nil {
					return nil, &dag.ParamError{Field: "file", Message: err.Error()}
				}
				text = string(b)
			}
			// Parse once at validation so that syntax errors are reported
			// before anything runs; each run binds its own inputs.
			if _, err := template.New(spec.ID).Funcs(templateFuncs(nil, nil, 0, nil)).Parse(text); err != nil {
				return nil, &dag.ParamError{Field: "template", Message: err.Error()}
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				var iterErr error
				t, err := template.New(spec.ID).Funcs(templateFuncs(ctx, in, int64(p.MaxInputBytes), &iterErr)).Parse(text)
				if err != nil {
					return dag.Permanent(err)
				}
				w, err := out.Writer()
				if err != nil {
					return err
				}
				bw := bufio.NewWriterSize(w, 64<<10)
				if err := t.Execute(bw, inputIDs(in)); err != nil {
					if iterErr != nil {
						return iterErr
					}
					return err
				}
				if iterErr != nil {
					return iterErr
				}
				return bw.Flush()
			}), nil
		},
	}
}

func inputIDs(in *dag.Inputs) map[string]any {
	ids := []string{}
	if in != nil {
		for _, i := range in.All() {
			ids = append(ids, i.NodeID())
		}
	}
	return map[string]any{"Inputs": ids}
}

func templateFuncs(ctx context.Context, in *dag.Inputs, max int64, iterErr *error) template.FuncMap {
	get := func(id string) (*dag.Input, error) {
		if in == nil {
			return nil, errors.New("no inputs")
		}
		i, ok := in.ByID(id)
		if !ok {
			return nil, fmt.Errorf("no input %q (inputs: %v)", id, inputIDs(in)["Inputs"])
		}
		return i, nil
	}
	return template.FuncMap{
		"rows": func(id string) (iter.Seq[map[string]any], error) {
			i, err := get(id)
			if err != nil {
				return nil, err
			}
			rr, err := i.Rows(ctx)
			if err != nil {
				return nil, err
			}
			return func(yield func(map[string]any) bool) {
				defer rr.Close()
				cols := rr.Columns()
				for {
					r, err := rr.Next(ctx)
					if err == io.EOF {
						return
					}
					if err != nil {
						*iterErr = fmt.Errorf("rows %q: %w", id, err)
						return
					}
					if !yield(dag.RowMap(cols, r)) {
						return
					}
				}
			}, nil
		},
		"cols": func(id string) ([]string, error) {
			i, err := get(id)
			if err != nil {
				return nil, err
			}
			return i.Columns(ctx)
		},
		"text": func(id string) (string, error) {
			i, err := get(id)
			if err != nil {
				return "", err
			}
			rc, err := i.Open(ctx)
			if err != nil {
				return "", err
			}
			defer rc.Close()
			b, err := io.ReadAll(io.LimitReader(rc, max+1))
			if err != nil {
				return "", err
			}
			if int64(len(b)) > max {
				return "", fmt.Errorf("input %q is larger than max_input_bytes (%s)", id, dag.ByteSize(max))
			}
			return string(b), nil
		},
		"json": func(id string) (any, error) {
			i, err := get(id)
			if err != nil {
				return nil, err
			}
			rc, err := i.Open(ctx)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			var v any
			if err := json.NewDecoder(io.LimitReader(rc, max)).Decode(&v); err != nil {
				return nil, fmt.Errorf("input %q: %w", id, err)
			}
			return v, nil
		},
		"cell": cellString,
		"truncate": func(n int, s string) string {
			if len(s) <= n {
				return s
			}
			for n > 0 && !utf8.RuneStart(s[n]) {
				n--
			}
			return s[:n] + "…"
		},
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"trim":  strings.TrimSpace,
		"tojson": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}
