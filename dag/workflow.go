package dag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Workflow is a parsed workflow definition: a named, versioned DAG of nodes.
type Workflow struct {
	// Name identifies the workflow; it labels metrics and history.
	Name string `json:"name"`
	// Version is a free-form version string (a JSON number is accepted too).
	Version string `json:"version"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// Results lists the nodes whose outputs are the workflow's results. When
	// empty, every node that no other node consumes is a result.
	Results []string `json:"results,omitempty"`
	// Defaults apply to every node that does not set its own value.
	Defaults Defaults `json:"defaults,omitempty"`
	// Nodes are the workflow's nodes, in any order.
	Nodes []NodeSpec `json:"nodes"`
}

// Defaults are per-workflow defaults for node settings.
type Defaults struct {
	Retry          *Retry   `json:"retry,omitempty"`
	Timeout        Duration `json:"timeout,omitempty"`
	SpillThreshold ByteSize `json:"spill_threshold,omitempty"`
}

// NodeSpec is one node of a workflow as written in JSON.
type NodeSpec struct {
	// ID is unique within the workflow.
	ID string `json:"id"`
	// Type names a registered node type, such as "csv.read".
	Type string `json:"type"`
	// Inputs are the ids of the nodes this node consumes, in order.
	Inputs []string `json:"inputs,omitempty"`
	// Params are type-specific parameters, decoded by the type.
	Params json.RawMessage `json:"params,omitempty"`
	// Retry sets attempts and backoff; nil means one attempt.
	Retry *Retry `json:"retry,omitempty"`
	// Timeout bounds one attempt; zero means none.
	Timeout Duration `json:"timeout,omitempty"`
	// Memory is the expected peak memory of the node (a hint for admission).
	Memory ByteSize `json:"memory,omitempty"`
	// SpillThreshold overrides the size above which the output is spilled.
	SpillThreshold ByteSize `json:"spill_threshold,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
}

// Retry is a retry policy: Attempts in total (1 = no retry), waiting Backoff
// before the second attempt and doubling up to MaxBackoff.
type Retry struct {
	Attempts   int      `json:"attempts"`
	Backoff    Duration `json:"backoff,omitempty"`
	MaxBackoff Duration `json:"max_backoff,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("1.5s", "250ms") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("bad duration %q (want e.g. \"30s\", \"250ms\")", s)
		}
		if v < 0 {
			return fmt.Errorf("negative duration %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("bad duration %s (want a string like \"30s\" or seconds)", b)
	}
	if f < 0 || f > 1e9 {
		return fmt.Errorf("duration %s out of range", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ByteSize is a number of bytes written in JSON as a number or a string with
// a unit ("64MiB", "512KB", "1GiB").
type ByteSize int64

// ParseByteSize parses "64MiB", "10MB", "4096" and the like.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') && s[i-1] != '.' {
		i--
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad byte size %q (want e.g. 64MiB)", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1e3, "kib": 1 << 10, "m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1e9, "gib": 1 << 30, "t": 1 << 40, "tb": 1e12, "tib": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("bad byte size unit %q in %q", unit, s)
	}
	if f*mult > 1<<62 {
		return 0, fmt.Errorf("byte size %q too large", s)
	}
	return ByteSize(f * mult), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(data, &n); err != nil || n < 0 {
		return fmt.Errorf("bad byte size %s (want a non-negative integer or a string like \"64MiB\")", data)
	}
	*b = ByteSize(n)
	return nil
}

// String formats the size with a binary unit.
func (b ByteSize) String() string { return FormatBytes(int64(b)) }

// FormatBytes formats n bytes as "12.3 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// LoadLimits bound what Load accepts, so that a hostile workflow file cannot
// exhaust memory. The zero value means the defaults.
type LoadLimits struct {
	// MaxBytes is the largest workflow document (default 8 MiB).
	MaxBytes int64
	// MaxNodes is the largest number of nodes (default 20,000).
	MaxNodes int
	// MaxDepth is the deepest JSON nesting (default 64).
	MaxDepth int
}

func (l LoadLimits) withDefaults() LoadLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 8 << 20
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = 20000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	return l
}

// Problem is one thing wrong with a workflow, located by a JSON pointer
// (RFC 6901) such as "/nodes/3/inputs/0".
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ErrInvalid is matched (errors.Is) by every *InvalidError.
var ErrInvalid = errors.New("invalid workflow")

// InvalidError lists every problem found in a workflow.
type InvalidError struct {
	// Source names the file or stream, when known.
	Source   string
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	src := e.Source
	if src == "" {
		src = "workflow"
	}
	fmt.Fprintf(&b, "%s: %d problem(s):", src, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// problems accumulates Problems.
type problems []Problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Load reads and strictly decodes a workflow. Unknown fields, wrong types and
// limit violations are reported with their JSON location; all problems found
// are reported at once in an *InvalidError. Load does not check the graph or
// node types: call Validate (or Executor.Run, which does).
func Load(r io.Reader, limits LoadLimits) (*Workflow, error) {
	limits = limits.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, limits.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read workflow: %w", err)
	}
	if int64(len(data)) > limits.MaxBytes {
		return nil, &InvalidError{Problems: []Problem{{Message: fmt.Sprintf("document exceeds the %s limit (LoadLimits.MaxBytes)", FormatBytes(limits.MaxBytes))}}}
	}
	return Parse(data, limits)
}

// Parse is Load over a byte slice.
func Parse(data []byte, limits LoadLimits) (*Workflow, error) {
	limits = limits.withDefaults()
	var ps problems
	if int64(len(data)) > limits.MaxBytes {
		ps.add("", "document exceeds the %s limit (LoadLimits.MaxBytes)", FormatBytes(limits.MaxBytes))
		return nil, &InvalidError{Problems: ps}
	}
	if off, depth := nestingDepth(data, limits.MaxDepth); depth > limits.MaxDepth {
		line, col := lineCol(data, off)
		ps.add("", "JSON nesting deeper than %d at line %d, column %d (LoadLimits.MaxDepth)", limits.MaxDepth, line, col)
		return nil, &InvalidError{Problems: ps}
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, int(se.Offset))
			ps.add("", "JSON syntax error at line %d, column %d: %v", line, col, se)
		} else {
			ps.add("", "JSON syntax error: %v", err)
		}
		return nil, &InvalidError{Problems: ps}
	}
	wf := &Workflow{}
	decodeWorkflow(data, wf, limits, &ps)
	if len(ps) > 0 {
		return nil, &InvalidError{Problems: ps}
	}
	return wf, nil
}

// nestingDepth returns the maximum nesting depth of a JSON text (stopping at
// max+1) and the offset where it was reached.
func nestingDepth(data []byte, max int) (offset, depth int) {
	d, inStr, esc := 0, false, false
	for i, c := range data {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			d++
			if d > depth {
				depth, offset = d, i
				if depth > max {
					return offset, depth
				}
			}
		case '}', ']':
			d--
		}
	}
	return offset, depth
}

func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// object decodes a JSON object into raw fields and reports unknown ones.
func object(raw json.RawMessage, path string, known []string, ps *problems) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		ps.add(path, "must be an object, got %s", jsonKind(raw))
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, kk := range known {
			if k == kk {
				ok = true
				break
			}
		}
		if !ok {
			ps.add(path+"/"+escapePointer(k), "unknown field %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return m
}

func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// field decodes one field into v, reporting a typed problem.
func field(m map[string]json.RawMessage, key, path string, v any, ps *problems) bool {
	raw, ok := m[key]
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			ps.add(path+"/"+key, "must be %s, got %s", te.Type.String(), jsonKind(raw))
		} else {
			ps.add(path+"/"+key, "%v", err)
		}
		return false
	}
	return true
}

func decodeWorkflow(data []byte, wf *Workflow, limits LoadLimits, ps *problems) {
	m := object(data, "", []string{"name", "version", "description", "results", "defaults", "nodes", "$schema"}, ps)
	if m == nil {
		return
	}
	if !field(m, "name", "", &wf.Name, ps) {
		if _, ok := m["name"]; !ok {
			ps.add("/name", "required")
		}
	} else if strings.TrimSpace(wf.Name) == "" {
		ps.add("/name", "must not be empty")
	}
	if raw, ok := m["version"]; ok {
		var n json.Number
		if err := json.Unmarshal(raw, &wf.Version); err != nil {
			if err2 := json.Unmarshal(raw, &n); err2 != nil {
				ps.add("/version", "must be a string or a number, got %s", jsonKind(raw))
			} else {
				wf.Version = n.String()
			}
		}
	}
	field(m, "description", "", &wf.Description, ps)
	field(m, "results", "", &wf.Results, ps)
	if raw, ok := m["defaults"]; ok {
		dm := object(raw, "/defaults", []string{"retry", "timeout", "spill_threshold"}, ps)
		if dm != nil {
			if raw, ok := dm["retry"]; ok {
				wf.Defaults.Retry = decodeRetry(raw, "/defaults/retry", ps)
			}
			field(dm, "timeout", "/defaults", &wf.Defaults.Timeout, ps)
			field(dm, "spill_threshold", "/defaults", &wf.Defaults.SpillThreshold, ps)
		}
	}
	raw, ok := m["nodes"]
	if !ok {
		ps.add("/nodes", "required")
		return
	}
	var nodes []json.RawMessage
	if err := json.Unmarshal(raw, &nodes); err != nil {
		ps.add("/nodes", "must be an array, got %s", jsonKind(raw))
		return
	}
	if len(nodes) == 0 {
		ps.add("/nodes", "must have at least one node")
	}
	if len(nodes) > limits.MaxNodes {
		ps.add("/nodes", "has %d nodes, more than the limit of %d (LoadLimits.MaxNodes)", len(nodes), limits.MaxNodes)
		return
	}
	wf.Nodes = make([]NodeSpec, len(nodes))
	for i, raw := range nodes {
		decodeNode(raw, fmt.Sprintf("/nodes/%d", i), &wf.Nodes[i], ps)
	}
}

func decodeRetry(raw json.RawMessage, path string, ps *problems) *Retry {
	m := object(raw, path, []string{"attempts", "backoff", "max_backoff"}, ps)
	if m == nil {
		return nil
	}
	r := &Retry{Attempts: 1}
	field(m, "attempts", path, &r.Attempts, ps)
	field(m, "backoff", path, &r.Backoff, ps)
	field(m, "max_backoff", path, &r.MaxBackoff, ps)
	if r.Attempts < 1 || r.Attempts > 100 {
		ps.add(path+"/attempts", "must be between 1 and 100, got %d", r.Attempts)
	}
	return r
}

func decodeNode(raw json.RawMessage, path string, n *NodeSpec, ps *problems) {
	m := object(raw, path, []string{"id", "type", "inputs", "params", "retry", "timeout", "memory", "spill_threshold", "description"}, ps)
	if m == nil {
		return
	}
	if !field(m, "id", path, &n.ID, ps) {
		if _, ok := m["id"]; !ok {
			ps.add(path+"/id", "required")
		}
	} else if n.ID == "" || strings.ContainsAny(n.ID, " \t\n/") || len(n.ID) > 200 {
		ps.add(path+"/id", "must be 1-200 characters without spaces or '/', got %q", n.ID)
	}
	if !field(m, "type", path, &n.Type, ps) {
		if _, ok := m["type"]; !ok {
			ps.add(path+"/type", "required")
		}
	}
	field(m, "inputs", path, &n.Inputs, ps)
	if raw, ok := m["params"]; ok {
		if jsonKind(raw) != "an object" {
			ps.add(path+"/params", "must be an object, got %s", jsonKind(raw))
		} else {
			n.Params = raw
		}
	}
	if raw, ok := m["retry"]; ok {
		n.Retry = decodeRetry(raw, path+"/retry", ps)
	}
	field(m, "timeout", path, &n.Timeout, ps)
	field(m, "memory", path, &n.Memory, ps)
	field(m, "spill_threshold", path, &n.SpillThreshold, ps)
	field(m, "description", path, &n.Description, ps)
}
