package nodes

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dagrun/dagrun/dag"
)

type fileReadParams struct {
	Path     string       `json:"path"`
	MaxBytes dag.ByteSize `json:"max_bytes"`
}

func fileReadType(opts *Options) dag.Type {
	return dag.Type{
		Name:      "file.read",
		Doc:       "Streams a file's bytes into the output.",
		Output:    dag.KindBytes,
		MaxInputs: 0,
		Params: []dag.Param{
			{Name: "path", Type: "string", Required: true, Doc: "file to read, relative to the workflow file"},
			{Name: "max_bytes", Type: "bytesize", Default: "1GiB", Doc: "fail when the file is larger"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			p := fileReadParams{MaxBytes: 1 << 30}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if err := dag.Require("path", p.Path); err != nil {
				return nil, err
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				path := opts.path(p.Path)
				f, err := os.Open(path)
				if err != nil {
					return dag.Permanent(err)
				}
				defer f.Close()
				n, err := io.Copy(out, io.LimitReader(ctxReader{ctx, f}, int64(p.MaxBytes)+1))
				if err != nil {
					return fmt.Errorf("read %s: %w", path, err)
				}
				if n > int64(p.MaxBytes) {
					return dag.Permanent(fmt.Errorf("%s is larger than max_bytes %s", path, p.MaxBytes))
				}
				return nil
			}), nil
		},
	}
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

type fileWriteParams struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	Mkdir  bool   `json:"mkdir"`
}

func fileWriteType(opts *Options) dag.Type {
	return dag.Type{
		Name:         "file.write",
		Doc:          "Writes its input to a file (atomically: a temp file renamed into place) and outputs {path, bytes}. Tables are written as CSV or JSON lines.",
		Output:       dag.KindJSON,
		StreamsInput: true,
		MinInputs:    1,
		MaxInputs:    1,
		Params: []dag.Param{
			{Name: "path", Type: "string", Required: true, Doc: "destination, relative to the workflow file"},
			{Name: "format", Type: "string", Default: "raw", Doc: "raw (bytes as they are), csv or jsonl (tables)"},
			{Name: "mkdir", Type: "boolean", Doc: "create missing parent directories"},
		},
		New: func(spec *dag.NodeSpec) (dag.Node, error) {
			p := fileWriteParams{Format: "raw"}
			if err := dag.DecodeParams(spec.Params, &p); err != nil {
				return nil, err
			}
			if err := dag.Require("path", p.Path); err != nil {
				return nil, err
			}
			switch p.Format {
			case "raw", "csv", "jsonl":
			default:
				return nil, &dag.ParamError{Field: "format", Message: fmt.Sprintf("must be raw, csv or jsonl, got %q", p.Format)}
			}
			return dag.NodeFunc(func(ctx context.Context, in *dag.Inputs, out *dag.Output) error {
				path := opts.path(p.Path)
				if p.Mkdir {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return err
					}
				}
				tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
				if err != nil {
					return dag.Permanent(err)
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
				start := time.Now()
				bw := bufio.NewWriterSize(tmp, 256<<10)
				cw := &countWriter{w: bw}
				input := in.At(0)
				if p.Format == "csv" {
					err = writeCSV(ctx, input, cw)
				} else {
					var rc io.ReadCloser
					if rc, err = input.Open(ctx); err == nil {
						_, err = io.Copy(cw, ctxReader{ctx, rc})
						rc.Close()
					}
				}
				if err == nil {
					err = bw.Flush()
				}
				if err == nil {
					err = tmp.Close()
				}
				if err == nil {
					err = os.Rename(tmp.Name(), path)
				}
				if err != nil {
					return fmt.Errorf("write %s: %w", path, err)
				}
				return out.WriteJSON(map[string]any{"path": path, "bytes": cw.n, "duration_ms": time.Since(start).Milliseconds()})
			}), nil
		},
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeCSV(ctx context.Context, input *dag.Input, w io.Writer) error {
	rr, err := input.Rows(ctx)
	if err != nil {
		return err
	}
	defer rr.Close()
	cw := csv.NewWriter(w)
	if cols := rr.Columns(); len(cols) > 0 {
		if err := cw.Write(cols); err != nil {
			return err
		}
	}
	var rec []string
	for {
		row, err := rr.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rec = rec[:0]
		for _, c := range row {
			rec = append(rec, cellString(c))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
