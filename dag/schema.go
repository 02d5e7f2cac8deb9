package dag

// Schema returns a JSON Schema (draft 2020-12) for workflow documents, with
// the params of every type in reg, for editors.
func Schema(reg *Registry) map[string]any {
	duration := map[string]any{"oneOf": []any{
		map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`},
		map[string]any{"type": "number", "minimum": 0}}, "description": `a Go duration such as "30s" or a number of seconds`}
	bytesize := map[string]any{"oneOf": []any{
		map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)? *([KMGT]i?B?|[kmgt]i?b?|B|b)?$`},
		map[string]any{"type": "integer", "minimum": 0}}, "description": `bytes, or a string such as "64MiB"`}
	retry := map[string]any{"type": "object", "additionalProperties": false, "required": []any{"attempts"},
		"properties": map[string]any{
			"attempts":    map[string]any{"type": "integer", "minimum": 1, "maximum": 100, "description": "attempts in total (1: no retry)"},
			"backoff":     map[string]any{"$ref": "#/$defs/duration"},
			"max_backoff": map[string]any{"$ref": "#/$defs/duration"},
		}}
	var variants []any
	var names []any
	for _, t := range reg.Types() {
		names = append(names, t.Name)
		props := map[string]any{}
		var req []any
		for _, p := range t.Params {
			var s map[string]any
			switch p.Type {
			case "duration":
				s = map[string]any{"$ref": "#/$defs/duration"}
			case "bytesize":
				s = map[string]any{"$ref": "#/$defs/bytesize"}
			case "":
				s = map[string]any{}
			default:
				s = map[string]any{"type": p.Type}
			}
			s["description"] = p.Doc
			props[p.Name] = s
			if p.Required {
				req = append(req, p.Name)
			}
		}
		params := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
		if len(req) > 0 {
			params["required"] = req
		}
		variants = append(variants, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": t.Name}}},
			"then": map[string]any{"properties": map[string]any{"params": params}},
		})
	}
	node := map[string]any{
		"type": "object", "additionalProperties": false, "required": []any{"id", "type"},
		"properties": map[string]any{
			"id":              map[string]any{"type": "string", "pattern": `^[^\s/]{1,200}$`},
			"type":            map[string]any{"enum": names},
			"inputs":          map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "uniqueItems": true},
			"params":          map[string]any{"type": "object"},
			"retry":           retry,
			"timeout":         map[string]any{"$ref": "#/$defs/duration"},
			"memory":          map[string]any{"$ref": "#/$defs/bytesize"},
			"spill_threshold": map[string]any{"$ref": "#/$defs/bytesize"},
			"description":     map[string]any{"type": "string"},
		},
		"allOf": variants,
	}
	return map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     "https://github.com/dagrun/dagrun/schema/workflow.schema.json",
		"title":   "dagrun workflow",
		"type":    "object", "additionalProperties": false, "required": []any{"name", "nodes"},
		"properties": map[string]any{
			"$schema":     map[string]any{"type": "string"},
			"name":        map[string]any{"type": "string", "minLength": 1},
			"version":     map[string]any{"type": []any{"string", "number"}},
			"description": map[string]any{"type": "string"},
			"results":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"defaults": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
				"retry": retry, "timeout": map[string]any{"$ref": "#/$defs/duration"}, "spill_threshold": map[string]any{"$ref": "#/$defs/bytesize"}}},
			"nodes": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/$defs/node"}},
		},
		"$defs": map[string]any{"duration": duration, "bytesize": bytesize, "node": node},
	}
}
