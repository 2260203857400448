package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envPrefix starts every environment variable this package reads.
const envPrefix = "STEPUP_"

var (
	durationType    = reflect.TypeFor[time.Duration]()
	stringSliceType = reflect.TypeFor[[]string]()
	ipListsType     = reflect.TypeFor[[]IPList]()
)

// field is one settable key of Config, found through its koanf tags.
type field struct {
	key    string       // YAML key, "sms.twilio.account_sid"
	env    string       // environment name, "STEPUP_SMS_TWILIO_ACCOUNT_SID"
	index  []int        // for reflect.Value.FieldByIndex
	typ    reflect.Type // one of the types set supports
	redact string       // the redact tag
}

// fieldTable lists the keys of a config struct in declaration order and
// indexes them by key and environment name.
type fieldTable struct {
	list     []*field
	byKey    map[string]*field
	byEnv    map[string]*field
	sections map[string]bool // keys of nested structs: "redis", "sms.twilio"
}

// fieldsOf builds the table of a struct type from its koanf tags. It fails
// on untagged fields, unsupported types and two keys sharing an environment
// name, all of which are programming errors that the tests catch.
func fieldsOf(t reflect.Type) (*fieldTable, error) {
	ft := &fieldTable{
		byKey:    make(map[string]*field),
		byEnv:    make(map[string]*field),
		sections: make(map[string]bool),
	}
	if err := ft.walk(t, "", nil); err != nil {
		return nil, err
	}
	return ft, nil
}

func (ft *fieldTable) walk(t reflect.Type, prefix string, index []int) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("koanf")
		if name == "" || name == "-" || strings.Contains(name, ".") {
			return fmt.Errorf("field %s%s: missing or invalid koanf tag %q", prefix, sf.Name, name)
		}
		key := prefix + name
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct {
			ft.sections[key] = true
			if err := ft.walk(sf.Type, key+".", idx); err != nil {
				return err
			}
			continue
		}
		if !supported(sf.Type) {
			return fmt.Errorf("key %s: unsupported type %s", key, sf.Type)
		}
		f := &field{
			key:    key,
			env:    envName(key),
			index:  idx,
			typ:    sf.Type,
			redact: sf.Tag.Get("redact"),
		}
		if other, ok := ft.byEnv[f.env]; ok {
			return fmt.Errorf("keys %s and %s share the environment name %s", other.key, key, f.env)
		}
		ft.list = append(ft.list, f)
		ft.byKey[key] = f
		ft.byEnv[f.env] = f
	}
	return nil
}

// envName is the environment variable of a YAML key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func supported(t reflect.Type) bool {
	switch {
	case t == durationType, t == stringSliceType, t == ipListsType:
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Float64:
		return true
	}
	return false
}

// set stores raw into f of the struct dst points to. raw comes from YAML
// (typed scalars, []any) or, when fromEnv, is the variable's string. YAML
// values must have the field's type: an unquoted 0123 or +614… would
// otherwise silently become a different string.
func (f *field) set(dst reflect.Value, raw any, fromEnv bool) error {
	var (
		v   any
		err error
	)
	if s, ok := raw.(string); ok && fromEnv {
		v, err = f.parseString(s)
	} else {
		v, err = f.convertYAML(raw)
	}
	if err != nil {
		return err
	}
	dst.FieldByIndex(f.index).Set(reflect.ValueOf(v).Convert(f.typ))
	return nil
}

// parseString turns the text of an environment variable into f's type.
func (f *field) parseString(s string) (any, error) {
	switch {
	case f.typ == durationType:
		return parseDuration(s)
	case f.typ == stringSliceType:
		return splitList(s), nil
	case f.typ == ipListsType:
		return parseIPListsEnv(s)
	}
	switch f.typ.Kind() {
	case reflect.String:
		return s, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be true or false, got %q", s)
		}
		return b, nil
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("must be an integer, got %q", s)
		}
		return n, nil
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("must be a number, got %q", s)
		}
		return x, nil
	}
	return nil, fmt.Errorf("unsupported type %s", f.typ)
}

// convertYAML checks a decoded YAML value against f's type.
func (f *field) convertYAML(raw any) (any, error) {
	switch {
	case f.typ == durationType:
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("must be a duration with a unit such as \"30s\" or \"5m\", got %v", raw)
		}
		return parseDuration(s)
	case f.typ == stringSliceType:
		switch r := raw.(type) {
		case string:
			return splitList(r), nil
		case []any:
			var out []string
			for i, e := range r {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("entry %d must be a string, got %s (quote it)", i+1, yamlKind(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, fmt.Errorf("must be a list of strings, got %s", yamlKind(raw))
	case f.typ == ipListsType:
		return convertIPLists(raw)
	}
	switch f.typ.Kind() {
	case reflect.String:
		if s, ok := raw.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("must be a string, got %s (quote the value)", yamlKind(raw))
	case reflect.Bool:
		if b, ok := raw.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("must be true or false, got %v", raw)
	case reflect.Int:
		switch n := raw.(type) {
		case int:
			return n, nil
		case int64:
			if int64(int(n)) == n {
				return int(n), nil
			}
		}
		return nil, fmt.Errorf("must be an integer, got %v", raw)
	case reflect.Float64:
		switch x := raw.(type) {
		case float64:
			return x, nil
		case int:
			return float64(x), nil
		}
		return nil, fmt.Errorf("must be a number, got %v", raw)
	}
	return nil, fmt.Errorf("unsupported type %s", f.typ)
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("must be a duration such as \"30s\" or \"5m\", got %q", s)
	}
	return d, nil
}

// splitList splits a comma-separated list, trimming blanks and dropping
// empty entries; an empty or blank string is the empty (nil) list.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// yamlKind names the kind of a decoded YAML value for error messages
// without repeating the value, which may be a secret.
func yamlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// convertIPLists reads risk.ip_lists: a YAML list of mappings with the
// keys of IPList. An empty list is nil, as in Default.
func convertIPLists(raw any) ([]IPList, error) {
	items, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of {name, file, action} mappings, got %s", yamlKind(raw))
	}
	var out []IPList
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %d must be a mapping of name, file, action (and factor), got %s", i+1, yamlKind(it))
		}
		var l IPList
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var err error
			switch v := m[k]; k {
			case "name":
				l.Name, err = yamlString(v)
			case "file":
				l.File, err = yamlString(v)
			case "action":
				l.Action, err = yamlString(v)
			case "factor":
				l.Factor, err = yamlNumber(v)
			default:
				err = fmt.Errorf("unknown key %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d: %s: %w", i+1, k, err)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func yamlString(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("must be a string, got %s (quote the value)", yamlKind(v))
}

func yamlNumber(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("must be a number, got %v", v)
}

// parseIPListsEnv reads STEPUP_RISK_IP_LISTS: comma-separated
// name:action:file entries (the file last, as a path may hold a colon);
// a score list's factor is YAML only.
func parseIPListsEnv(s string) ([]IPList, error) {
	var out []IPList
	for i, e := range splitList(s) {
		parts := strings.SplitN(e, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("entry %d must be name:action:file, got %q", i+1, e)
		}
		out = append(out, IPList{Name: parts[0], Action: parts[1], File: parts[2]})
	}
	return out, nil
}
