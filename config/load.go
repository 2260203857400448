package config

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Load returns [Default] overlaid with the YAML file at path (skipped when
// path is "") and then with the STEPUP_* entries of environ, which win. It
// does not call [Config.Validate].
//
// environ is in the form of [os.Environ]; entries without the STEPUP_ prefix
// are ignored. List values in the environment are comma-separated; an empty
// variable sets its key to the empty value. A YAML key with no value (null)
// keeps the default.
//
// The variables Kubernetes injects for a Service named "stepup"
// (STEPUP_SERVICE_HOST, STEPUP_PORT=tcp://…, see [ServiceLinkVariables])
// are skipped. Unknown YAML keys, other unknown STEPUP_* variables and
// values of the wrong type are errors naming the key or variable; a file
// that is not valid YAML is an error naming the file and the line.
func Load(path string, environ []string) (Config, error) {
	fields, err := fieldsOf(reflect.TypeFor[Config]())
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Default()
	dst := reflect.ValueOf(&cfg).Elem()

	if path != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			if _, ok := errors.AsType[*fs.PathError](err); ok {
				return Config{}, fmt.Errorf("config: %w", err) // names the file already
			}
			return Config{}, fmt.Errorf("config: %s: %w", path, err) // "yaml: line N: …"
		}
		if err := fields.applyYAML(dst, k.All()); err != nil {
			return Config{}, prefixLines("config: "+path+": ", err)
		}
	}

	var unknown []string
	k := koanf.New(".")
	err = k.Load(env.Provider(".", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			f, ok := fields.byEnv[name]
			if !ok && isServiceLink(name, value) {
				return "", nil // Kubernetes' variables for a Service named stepup
			}
			if !ok {
				unknown = append(unknown, name)
				return "", nil
			}
			return f.key, value
		},
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("config: environment: %w", err)
	}
	if err := fields.applyEnv(dst, k.All(), unknown); err != nil {
		return Config{}, prefixLines("config: environment: ", err)
	}
	return cfg, nil
}

// applyYAML stores the flattened keys of a YAML document. All problems are
// reported, in the order of the keys in Config, unknown keys last.
func (ft *fieldTable) applyYAML(dst reflect.Value, flat map[string]any) error {
	var errs []error
	for _, f := range ft.list {
		raw, ok := flat[f.key]
		if !ok || raw == nil {
			continue
		}
		if err := f.set(dst, raw, false); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	var unknown []string
	for key, raw := range flat {
		if _, ok := ft.byKey[key]; ok {
			continue
		}
		if ft.sections[key] {
			// "redis:" or "redis: {}" is an empty section; anything else
			// in place of a section is a mistake.
			if m, isMap := raw.(map[string]any); raw == nil || isMap && len(m) == 0 {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: must be a mapping of %s.* keys, got %s", key, key, yamlKind(raw)))
			continue
		}
		unknown = append(unknown, key)
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		errs = append(errs, fmt.Errorf("unknown key %q", key))
	}
	return errors.Join(errs...)
}

// applyEnv stores the environment's values, already mapped to keys, and
// reports the variables that name no key.
func (ft *fieldTable) applyEnv(dst reflect.Value, flat map[string]any, unknown []string) error {
	var errs []error
	for _, f := range ft.list {
		raw, ok := flat[f.key]
		if !ok {
			continue
		}
		if err := f.set(dst, raw, true); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", f.env, f.key, err))
		}
	}
	slices.Sort(unknown)
	for _, name := range slices.Compact(unknown) {
		errs = append(errs, fmt.Errorf("unknown variable %s", name))
	}
	return errors.Join(errs...)
}

// prefixLines prefixes every line of a joined error, keeping err wrapped so
// errors.Is/As still see through it.
func prefixLines(prefix string, err error) error {
	return &prefixedError{msg: prefix + strings.ReplaceAll(err.Error(), "\n", "\n"+prefix), err: err}
}

type prefixedError struct {
	msg string
	err error
}

func (e *prefixedError) Error() string { return e.msg }
func (e *prefixedError) Unwrap() error { return e.err }
