package bench_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dagrun/dagrun/bench"
)

// The modes each workflow runs in, with the `dagrun run` flags of each.
func ExampleModes() {
	for _, m := range bench.Modes() {
		fmt.Printf("%s: %s\n", m.Name, strings.Join(m.Flags, " "))
	}
	// Output:
	// incident: --no-evict --no-pipe --whole-file --store none
	// evict: --no-pipe --whole-file --store none
	// evict+stream: --store none
	// evict+stream+spill(dir): --spill-threshold 256KiB
	// evict+stream+spill(redis): --spill-threshold 256KiB
}

// ToolResponse is what the fake tool server answers: JSON in the shape of
// the API named in the path, about the requested size.
func ExampleToolResponse() {
	b, err := bench.ToolResponse("/serpapi/search", "nordic nurseries", 1, 50_000)
	if err != nil {
		panic(err)
	}
	var r struct {
		Params struct {
			Q string `json:"q"`
		} `json:"search_parameters"`
		Results []struct {
			Position int `json:"position"`
		} `json:"organic_results"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		panic(err)
	}
	fmt.Println(r.Params.Q, len(b) >= 50_000, r.Results[0].Position)
	// Output: nordic nurseries true 1
}
