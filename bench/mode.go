package bench

// Mode is one way of executing a workflow: the flags given to `dagrun run`.
type Mode struct {
	// Name identifies the mode in tables, JSON and charts.
	Name string
	// Doc says what the mode is, for the table's legend.
	Doc string
	// Flags are the `dagrun run` flags; the store flag is added by the
	// harness for spill modes.
	Flags []string
	// Store is "", "dir" or "redis": the spill store the mode needs.
	Store string
}

// Mode names.
const (
	ModeIncident   = "incident"
	ModeEvict      = "evict"
	ModeStream     = "evict+stream"
	ModeSpillDir   = "evict+stream+spill(dir)"
	ModeSpillRedis = "evict+stream+spill(redis)"
)

// SpillThreshold is the --spill-threshold of the spill modes: low, so that
// spilling really happens on workflows of the incident's sizes.
const SpillThreshold = "256KiB"

// Modes returns every mode, the incident's first.
func Modes() []Mode {
	return []Mode{
		{Name: ModeIncident, Doc: "the incident's executor: every output held to the end, tables materialised, files read whole (--no-evict --no-pipe --whole-file --store none)",
			Flags: []string{"--no-evict", "--no-pipe", "--whole-file", "--store", "none"}},
		{Name: ModeEvict, Doc: "outputs freed after their last consumer, files still read whole, tables materialised (--no-pipe --whole-file --store none)",
			Flags: []string{"--no-pipe", "--whole-file", "--store", "none"}},
		{Name: ModeStream, Doc: "eviction plus streaming parsers and piped tables, no spill store (--store none)",
			Flags: []string{"--store", "none"}},
		{Name: ModeSpillDir, Doc: "evict+stream, outputs over " + SpillThreshold + " spilled to a local directory (--store dir://... --spill-threshold " + SpillThreshold + ")",
			Flags: []string{"--spill-threshold", SpillThreshold}, Store: "dir"},
		{Name: ModeSpillRedis, Doc: "evict+stream, outputs over " + SpillThreshold + " spilled to Redis (--store redis://... --spill-threshold " + SpillThreshold + ")",
			Flags: []string{"--spill-threshold", SpillThreshold}, Store: "redis"},
	}
}

// fileHeavy lists the workflows whose input files are megabytes: the ones
// the quarter-of-incident target applies to.
var fileHeavy = map[string]bool{"nursery-ai-agent": true, "proposal-development": true, "valuation-mapping": true}
