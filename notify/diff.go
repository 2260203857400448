package notify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// change is one line of a policy diff.
type change struct {
	Field, Before, After string
}

// policyDiff compares two policies given as JSON objects and returns the
// fields that differ, nested fields joined with dots ("thresholds.deny",
// "groups.staff.mode"), sorted by field. When either side is not a JSON
// object it returns a single line with both values as given, so a policy the
// engine could not encode still reaches the managers.
func policyDiff(before, after string) []change {
	if before == "" && after == "" {
		return nil
	}
	b, errB := flattenJSON(before)
	a, errA := flattenJSON(after)
	if errB != nil || errA != nil {
		if before == after {
			return nil
		}
		return []change{{Field: "policy", Before: before, After: after}}
	}
	fields := make([]string, 0, len(a)+len(b))
	for k := range b {
		fields = append(fields, k)
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	var out []change
	for _, f := range fields {
		bv, bok := b[f]
		av, aok := a[f]
		if bok && aok && bv == av || !bok && av == "{}" || !aok && bv == "{}" {
			// An empty object and none are the same policy: a first
			// group shows as its own fields, not as "groups: {} → (not set)".
			continue
		}
		if !bok {
			bv = "(not set)"
		}
		if !aok {
			av = "(not set)"
		}
		out = append(out, change{Field: f, Before: bv, After: av})
	}
	return out
}

// flattenJSON turns a JSON object into dotted paths and compact JSON leaf
// values. Arrays are leaves: a changed list shows as one line.
func flattenJSON(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		return nil, err
	}
	var walk func(prefix string, o map[string]json.RawMessage) error
	walk = func(prefix string, o map[string]json.RawMessage) error {
		for k, raw := range o {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			var nested map[string]json.RawMessage
			if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
				if err := json.Unmarshal(t, &nested); err != nil {
					return err
				}
				if len(nested) == 0 {
					out[path] = "{}"
					continue
				}
				if err := walk(path, nested); err != nil {
					return err
				}
				continue
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return err
			}
			v := buf.String()
			// Strings read better unquoted: mode: optional → required.
			var str string
			if json.Unmarshal(raw, &str) == nil && str != "" {
				v = str
			}
			out[path] = v
		}
		return nil
	}
	if err := walk("", obj); err != nil {
		return nil, err
	}
	return out, nil
}
