package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestGraphFormats(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "graph", "../testdata/workflows/sales-summary.json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"flowchart TD", `n0["orders<br/>csv.read"]`, "n0 ==>|rows| n1", `n4(["summary<br/>llm.mock"])`} {
		if !strings.Contains(out, want) {
			t.Errorf("mermaid output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "graph", "--format", "dot", "../testdata/workflows/sales-summary.json")
	if code != ExitOK || !strings.Contains(out, `"orders" -> "large";`) || !strings.HasPrefix(out, `digraph "sales-summary"`) {
		t.Fatalf("dot: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "graph", "--format", "svg", "../testdata/workflows/sales-summary.json"); code != ExitInvalid {
		t.Fatalf("unknown format: exit %d", code)
	}
}

func TestNodesListsEveryType(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "nodes", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var types []struct {
		Name   string `json:"name"`
		Params []struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(out), &types); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, ty := range types {
		names[ty.Name] = true
	}
	for _, want := range []string{"file.read", "csv.read", "table.filter", "table.select", "table.aggregate", "table.head",
		"text.template", "llm.mock", "llm.chat", "http.request", "file.write", "xlsx.read", "pdf.read", "pptx.read",
		"docx.read", "node.script", "exec", "human.approval"} {
		if !names[want] {
			t.Errorf("nodes --json lacks %s", want)
		}
	}
	if code, _, errOut := runCLI(t, "nodes", "csv.raed"); code != ExitInvalid || !strings.Contains(errOut, "unknown node type") {
		t.Fatalf("unknown type: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != ExitInvalid {
		t.Fatalf("unknown command: exit %d", code)
	}
}
