package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Every file in testdata/bad is rejected by `dagrun validate` with exit
// code 2 and an error that names the problem and its JSON location.
func TestBadWorkflows(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"cycle.json":         {"/nodes/0: cycle: a -> b -> c -> a"},
		"dangling.json":      {`/nodes/1/inputs/0: input "promt" names no node (did you mean "prompt"?)`},
		"duplicate.json":     {`/nodes/1/id: duplicate id "a" (first used at /nodes/0)`},
		"unknown-type.json":  {`/nodes/0/type: unknown node type "csv.raed" (did you mean "csv.read"?) (known: `, "xlsx.read"},
		"wrong-params.json":  {`/nodes/0/params/path: must be string, got JSON number (type csv.read)`, `/nodes/1/params/where/0/op: unknown op "between"`, `/nodes/2/params`, `/nodes/3/params/colour: unknown parameter (type table.head)`},
		"unknown-field.json": {`/nodse: unknown field "nodse"`, `/nodes/0/input: unknown field "input"`, `/nodes/0/retry/attempts: must be between 1 and 100, got 0`, `/nodes/0/timeout: bad duration "soon"`},
		"syntax.json":        {"JSON syntax error at line 2, column 35: invalid character '}' looking for beginning of object key string"},
		"wrong-inputs.json":  {`/nodes/1/inputs: type table.filter needs at least 1 input(s), got 0`, `/nodes/2/inputs/0: node "self" consumes itself`, `/nodes/2/inputs/2: input "a" listed twice`},
		"deep-nesting.json":  {"JSON nesting deeper than 64 at line 1"},
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, _ := runCLI(t, "validate", filepath.Join("..", "testdata", "bad", name))
			if code != ExitInvalid {
				t.Fatalf("exit %d, want %d\n%s", code, ExitInvalid, out)
			}
			for _, w := range wants {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "bad", "*.json"))
	if len(files) != len(cases) {
		t.Errorf("%d files in testdata/bad, %d cases: every bad file needs its expected error", len(files), len(cases))
	}
}

// Hostile sizes are refused with bounded memory: a 100 MB document and a
// workflow of 100,000 nodes.
func TestHostileSizes(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	f, _ := os.Create(big)
	fmt.Fprint(f, `{"name":"big","description":"`)
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < 100; i++ {
		f.Write(chunk)
	}
	fmt.Fprint(f, `","nodes":[{"id":"a","type":"llm.mock"}]}`)
	f.Close()
	many := filepath.Join(dir, "many.json")
	f, _ = os.Create(many)
	fmt.Fprint(f, `{"name":"many","nodes":[`)
	for i := 0; i < 100000; i++ {
		if i > 0 {
			fmt.Fprint(f, ",")
		}
		fmt.Fprintf(f, `{"id":"n%d","type":"llm.mock"}`, i)
	}
	fmt.Fprint(f, "]}")
	f.Close()
	for file, want := range map[string]string{
		big:  "document exceeds the 8.0 MiB limit (LoadLimits.MaxBytes)",
		many: "/nodes: has 100000 nodes, more than the limit of 20000 (LoadLimits.MaxNodes)",
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		code, out, _ := runCLI(t, "validate", file)
		runtime.ReadMemStats(&after)
		if code != ExitInvalid || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, output:\n%s", filepath.Base(file), code, out)
		}
		// The 100 MB file is never read whole: allocation stays near the limit.
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
			t.Errorf("%s: allocated %d MiB to reject it", filepath.Base(file), got>>20)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}
