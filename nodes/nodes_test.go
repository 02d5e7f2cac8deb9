package nodes

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagrun/dagrun/dag"
)

// runOK runs a workflow with the built-in types and fails the test on error.
func runOK(t *testing.T, opts Options, js string) *dag.Result {
	t.Helper()
	res, err := runWF(t, NewRegistry(opts), dag.Config{}, js)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readTable(t *testing.T, res *dag.Result, id string) ([]string, []dag.Row) {
	t.Helper()
	o, ok := res.Output(id)
	if !ok {
		t.Fatalf("no result %q", id)
	}
	rr, err := o.Rows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	var rows []dag.Row
	for {
		r, err := rr.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rr.Columns(), rows
}

func readText(t *testing.T, res *dag.Result, id string) string {
	t.Helper()
	o, ok := res.Output(id)
	if !ok {
		t.Fatalf("no result %q", id)
	}
	rc, err := o.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

var testdata = filepath.Join("..", "testdata")

// The table nodes compute what a plain CSV reading computes.
func TestTablePipeline(t *testing.T) {
	t.Parallel()
	f, _ := os.Open(filepath.Join(testdata, "data", "orders.csv"))
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	type agg struct {
		n, units int
		maxP     float64
	}
	want := map[string]*agg{}
	var headWant []string
	for _, r := range recs[1:] {
		q, _ := strconv.Atoi(r[3])
		p, _ := strconv.ParseFloat(r[4], 64)
		if q < 10 || r[2] == "gizmo" {
			continue
		}
		a := want[r[1]]
		if a == nil {
			a = &agg{}
			want[r[1]] = a
		}
		a.n++
		a.units += q
		a.maxP = max(a.maxP, p)
		if len(headWant) < 3 {
			headWant = append(headWant, r[0])
		}
	}
	res := runOK(t, Options{BaseDir: testdata}, `{"name":"t","results":["totals","head","sel"],"nodes":[
		{"id":"orders","type":"csv.read","params":{"path":"data/orders.csv"}},
		{"id":"big","type":"table.filter","inputs":["orders"],"params":{"where":[
			{"column":"quantity","op":"ge","value":10},{"column":"product","op":"ne","value":"gizmo"}]}},
		{"id":"totals","type":"table.aggregate","inputs":["big"],"params":{"group_by":["region"],"aggregates":[
			{"op":"count","as":"n"},{"op":"sum","column":"quantity","as":"units"},{"op":"max","column":"unit_price"}]}},
		{"id":"orders2","type":"csv.read","params":{"path":"data/orders.csv"}},
		{"id":"big2","type":"table.filter","inputs":["orders2"],"params":{"where":[
			{"column":"quantity","op":"ge","value":10},{"column":"product","op":"ne","value":"gizmo"}]}},
		{"id":"sel","type":"table.select","inputs":["big2"],"params":{"columns":["order_id","region"],"rename":{"order_id":"id"}}},
		{"id":"head","type":"table.head","inputs":["sel"],"params":{"n":3}}]}`)
	cols, rows := readTable(t, res, "totals")
	if strings.Join(cols, ",") != "region,n,units,max_unit_price" {
		t.Fatalf("columns %v", cols)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d groups, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		w := want[r[0].(string)]
		if r[1] != int64(w.n) || r[2] != float64(w.units) || r[3] != w.maxP {
			t.Errorf("%v: want %+v", r, *w)
		}
	}
	_, head := readTable(t, res, "head")
	var got []string
	for _, r := range head {
		got = append(got, r[0].(string))
	}
	if strings.Join(got, ",") != strings.Join(headWant, ",") {
		t.Fatalf("head %v, want %v", got, headWant)
	}
	if !res.Report.Node("orders").Piped || !res.Report.Node("big").Piped {
		t.Errorf("csv.read -> table.filter -> table.aggregate should stream")
	}
}

func TestTemplateStreamsRowsAndText(t *testing.T) {
	t.Parallel()
	res := runOK(t, Options{BaseDir: testdata}, `{"name":"t","nodes":[
		{"id":"orders","type":"csv.read","params":{"path":"data/orders.csv"}},
		{"id":"few","type":"table.head","inputs":["orders"],"params":{"n":2}},
		{"id":"note","type":"llm.mock","params":{"reply_bytes":20,"seed":9}},
		{"id":"p","type":"text.template","inputs":["few","note"],"params":{"template":
		"cols={{join (cols \"few\") \"|\"}}\n{{range rows \"few\"}}{{.order_id}} {{upper .region}} {{cell .quantity}}\n{{end}}note={{len (text \"note\")}} {{truncate 3 \"abcdef\"}}"}}]}`)
	got := readText(t, res, "p")
	f, _ := os.Open(filepath.Join(testdata, "data", "orders.csv"))
	recs, _ := csv.NewReader(f).ReadAll()
	f.Close()
	want := "cols=order_id|region|product|quantity|unit_price|note\n" +
		recs[1][0] + " " + strings.ToUpper(recs[1][1]) + " " + recs[1][3] + "\n" +
		recs[2][0] + " " + strings.ToUpper(recs[2][1]) + " " + recs[2][3] + "\nnote=20 abc…"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(Options{})
	wf, _ := dag.Parse([]byte(`{"name":"t","nodes":[{"id":"p","type":"text.template","params":{"template":"{{range}"}}]}`), dag.LoadLimits{})
	if _, err := dag.Validate(wf, reg); err == nil || !strings.Contains(err.Error(), "/nodes/0/params/template") {
		t.Fatalf("want a template syntax error at validation, got %v", err)
	}
}

func TestFileWriteFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := runOK(t, Options{BaseDir: testdata}, `{"name":"t","nodes":[
		{"id":"orders","type":"csv.read","params":{"path":"data/orders.csv"}},
		{"id":"few","type":"table.head","inputs":["orders"],"params":{"n":3}},
		{"id":"a","type":"file.write","inputs":["few"],"params":{"path":"`+dir+`/out/a.csv","format":"csv","mkdir":true}},
		{"id":"orders2","type":"csv.read","params":{"path":"data/orders.csv"}},
		{"id":"few2","type":"table.head","inputs":["orders2"],"params":{"n":3}},
		{"id":"b","type":"file.write","inputs":["few2"],"params":{"path":"`+dir+`/b.jsonl","format":"jsonl"}}]}`)
	var info map[string]any
	o, _ := res.Output("a")
	if err := o.Decode(context.Background(), &info); err != nil || info["bytes"].(float64) == 0 {
		t.Fatalf("info %v %v", info, err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "out", "a.csv"))
	recs, err := csv.NewReader(strings.NewReader(string(a))).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][0] != "order_id" {
		t.Fatalf("csv %q: %v", a, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "b.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var m map[string]any
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["region"] == nil {
		t.Fatalf("jsonl %q", b)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// Document readers stream blocks with locations, and whole-file mode (the
// incident's way, for benchmarks) gives the same rows.
func TestDocumentReaders(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ typ, file, unit string }{
		{"pdf.read", "fixtures/small.pdf", "page"},
		{"pptx.read", "fixtures/small.pptx", "slide"},
		{"docx.read", "fixtures/small.docx", "paragraph"},
		{"xlsx.read", "fixtures/rows-200.xlsx", ""},
	} {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			js := `{"name":"t","nodes":[{"id":"d","type":"` + c.typ + `","params":{"path":"` + c.file + `"}}]}`
			cols, rows := readTable(t, runOK(t, Options{BaseDir: testdata}, js), "d")
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			if c.unit != "" {
				if cols[0] != c.unit || rows[0][0].(int64) < 1 || rows[len(rows)-1][2].(string) == "" {
					t.Fatalf("columns %v, first row %v", cols, rows[0])
				}
				_, whole := readTable(t, runOK(t, Options{BaseDir: testdata, WholeFile: true}, js), "d")
				if len(whole) != len(rows) {
					t.Fatalf("whole-file mode: %d rows, streaming %d", len(whole), len(rows))
				}
				return
			}
			if len(rows) != 200 {
				t.Fatalf("xlsx: %d rows, want 200 (header row excluded)", len(rows))
			}
			types := map[string]bool{}
			for _, r := range rows {
				for _, c := range r {
					switch c.(type) {
					case float64:
						types["number"] = true
					case string:
						types["string"] = true
					case bool:
						types["bool"] = true
					case time.Time:
						types["date"] = true
					}
				}
			}
			var got []string
			for k := range types {
				got = append(got, k)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != "bool,date,number,string" {
				t.Fatalf("cell types %v, columns %v", got, cols)
			}
		})
	}
}

// A corrupt file is a clear, permanent (not retried) node error naming it.
func TestCorruptFileIsPermanent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xlsx")
	os.WriteFile(bad, []byte("PK\x03\x04 this is not a zip"), 0o644)
	wf, _ := dag.Parse([]byte(`{"name":"t","nodes":[{"id":"x","type":"xlsx.read","params":{"path":"`+bad+`"},"retry":{"attempts":3}}]}`), dag.LoadLimits{})
	p, err := dag.Validate(wf, NewRegistry(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := dag.New(dag.Config{})
	res, err := ex.Run(context.Background(), p)
	res.Close()
	if err == nil || !strings.Contains(err.Error(), "bad.xlsx") {
		t.Fatalf("err = %v", err)
	}
	if n := res.Report.Node("x").Attempts; n != 1 {
		t.Fatalf("a corrupt file was tried %d times", n)
	}
}
