package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stepup-auth/stepup/client"
)

func policyGetCmd() command {
	return command{
		path:    "policy get",
		summary: "show the tenant's 2FA policy and its groups",
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, _ []string) error {
				v, err := c.api.Policy(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				return printPolicy(c.stdout, v)
			}
		},
	}
}

const policySetHelp = `
The change merges: only the fields you name change, the rest stay. List
flags take comma-separated values; an empty value ("") clears the list
(for --sms-countries that means SMS may go anywhere).

-f reads policy fields from a YAML or JSON file, named as in the API
(mode, enforcement, challenge, grace_logins, thresholds: {challenge, deny},
remember_device_days, allowed_channels, sms_countries, trusted_networks,
blocked_networks, blocked_countries, manager_emails, cold_start,
sms_disabled, sms_per_hour, groups). groups, when present, replaces every group:

  mode: required
  grace_logins: 3
  groups:
    staff: {mode: required, allowed_channels: [totp]}
    patients: {mode: optional}

Flags given together with -f win over the file's fields.

Example:
  stepupctl policy set --mode required --grace-logins 3 --allowed-channels totp,sms
`

func policySetCmd() command {
	return command{
		path:    "policy set",
		flags:   "[--mode M] [--grace-logins N] [...] | -f FILE",
		summary: "change the tenant's 2FA policy (from flags or a YAML/JSON file)",
		help:    policySetHelp,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			file := fs.String("f", "", "YAML or JSON `file` of policy fields (groups included)")
			fs.StringVar(file, "file", "", "same as -f")
			mode := fs.String("mode", "", "`mode`: off, optional or required")
			enforcement := fs.String("enforcement", "", "`how`: enforce, or monitor (audit only: every login allowed, what would happen is reported)")
			challenge := fs.String("challenge", "", "`when` to challenge: risk_based or every_login")
			grace := fs.Int("grace-logins", 0, "`n` logins a user may make before enrolling, in required mode")
			tc := fs.Int("thresholds-challenge", 0, "risk `score` (0-100) from which a login is challenged")
			td := fs.Int("thresholds-deny", 0, "risk `score` (0-100) from which a login is denied")
			remember := fs.Int("remember-device-days", 0, "`days` a device is remembered; 0 = never")
			smsPerHour := fs.Int("sms-per-hour", 0, "lowers the installation's cap on all the tenant's SMS per hour to `n`; 0 = the installation's cap")
			channels := fs.String("allowed-channels", "", "channels users may use, in order of preference: `list` of totp, sms, email, passkey")
			smsCountries := fs.String("sms-countries", "", "ISO `countries` SMS may go to (AU,GB); empty = all")
			trusted := fs.String("trusted-networks", "", "`CIDRs` whose logins are always allowed")
			blockedNets := fs.String("blocked-networks", "", "`CIDRs` whose logins are always denied")
			blockedCountries := fs.String("blocked-countries", "", "ISO `countries` whose logins are always denied")
			managers := fs.String("manager-emails", "", "`addresses` told of policy changes and admin actions")
			coldStart := fs.String("cold-start", "", "a user's first login, with no history: challenge or allow")
			smsDisabled := fs.Bool("sms-disabled", false, "the tenant's SMS kill switch (--sms-disabled=false to lift it)")
			return func(ctx context.Context, c *cli, _ []string) error {
				set := setFlags(fs)
				var u client.PolicyUpdate
				str := func(name, v string) *string {
					if set[name] {
						return &v
					}
					return nil
				}
				num := func(name string, v int) *int {
					if set[name] {
						return &v
					}
					return nil
				}
				lst := func(name, v string, upper bool) []string {
					if !set[name] {
						return nil
					}
					if upper {
						v = strings.ToUpper(v)
					}
					return splitList(v)
				}
				u.Mode = str("mode", *mode)
				u.Enforcement = str("enforcement", *enforcement)
				u.Challenge = str("challenge", *challenge)
				u.GraceLogins = num("grace-logins", *grace)
				u.RememberDeviceDays = num("remember-device-days", *remember)
				u.SMSPerHour = num("sms-per-hour", *smsPerHour)
				if set["thresholds-challenge"] || set["thresholds-deny"] {
					u.Thresholds = &client.ThresholdsUpdate{Challenge: num("thresholds-challenge", *tc), Deny: num("thresholds-deny", *td)}
				}
				if cs := lst("allowed-channels", strings.ToLower(*channels), false); cs != nil {
					u.AllowedChannels = make([]client.Channel, len(cs))
					for i, ch := range cs {
						u.AllowedChannels[i] = client.Channel(ch)
					}
				}
				u.SMSCountries = lst("sms-countries", *smsCountries, true)
				u.TrustedNetworks = lst("trusted-networks", *trusted, false)
				u.BlockedNetworks = lst("blocked-networks", *blockedNets, false)
				u.BlockedCountries = lst("blocked-countries", *blockedCountries, true)
				u.ManagerEmails = lst("manager-emails", *managers, false)
				u.ColdStart = str("cold-start", *coldStart)
				if set["sms-disabled"] {
					u.SMSDisabled = smsDisabled
				}
				fromFlags := anyPolicyFlag(set)
				if *file == "" && !fromFlags {
					return usagef("policy set", "nothing to change: name fields with flags (--mode required …) or -f FILE")
				}
				var (
					v   client.PolicyView
					err error
				)
				if *file == "" {
					v, err = c.api.UpdatePolicy(ctx, u)
				} else {
					var body json.RawMessage
					body, err = policyFile(*file)
					if err != nil {
						return err
					}
					if fromFlags {
						body, err = overlay(body, u)
						if err != nil {
							return err
						}
					}
					v, err = c.api.UpdatePolicyJSON(ctx, body)
				}
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				return printPolicy(c.stdout, v)
			}
		},
	}
}

// anyPolicyFlag reports whether a flag naming a policy field was given.
func anyPolicyFlag(set map[string]bool) bool {
	for name := range set {
		if !globalNames[name] && name != "f" && name != "file" {
			return true
		}
	}
	return false
}

// policyFile reads a YAML or JSON file of policy fields as a JSON object.
func policyFile(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", path)
	}
	var doc any
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: not valid JSON: %w", path, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("%s: trailing data after the JSON object", path)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: not valid YAML or JSON: %w", path, err)
		}
		var more any
		if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: holds more than one YAML document", path)
		}
		if doc, err = jsonable(doc); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: want a mapping of policy fields (mode: required …)", path)
	}
	return json.Marshal(doc)
}

// jsonable turns a decoded YAML value into one encoding/json can marshal:
// YAML mappings may have non-string keys.
func jsonable(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = j
		}
		return m, nil
	case []any:
		for i, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	}
	return v, nil
}

// overlay sets the fields of u over the JSON object body; thresholds merge
// member by member.
func overlay(body json.RawMessage, u client.PolicyUpdate) (json.RawMessage, error) {
	var base, top map[string]json.RawMessage
	if err := json.Unmarshal(body, &base); err != nil {
		return nil, err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	for k, v := range top {
		if k == "thresholds" {
			var a, t map[string]json.RawMessage
			if json.Unmarshal(base[k], &a) == nil && a != nil && json.Unmarshal(v, &t) == nil {
				for tk, tv := range t {
					a[tk] = tv
				}
				v, _ = json.Marshal(a)
			}
		}
		base[k] = v
	}
	return json.Marshal(base)
}

// printPolicy shows a policy as name/value lines and its groups as a
// table.
func printPolicy(w io.Writer, v client.PolicyView) error {
	p := v.Policy
	pairs := [][2]string{
		{"mode", p.Mode},
		{"enforcement", p.Enforcement},
		{"challenge", p.Challenge},
		{"grace_logins", fmt.Sprint(p.GraceLogins)},
		{"thresholds.challenge", fmt.Sprint(p.Thresholds.Challenge)},
		{"thresholds.deny", fmt.Sprint(p.Thresholds.Deny)},
		{"remember_device_days", fmt.Sprint(p.RememberDeviceDays)},
		{"allowed_channels", list(p.AllowedChannels, "none")},
		{"sms_countries", list(p.SMSCountries, "all")},
		{"trusted_networks", list(p.TrustedNetworks, "none")},
		{"blocked_networks", list(p.BlockedNetworks, "none")},
		{"blocked_countries", list(p.BlockedCountries, "none")},
		{"manager_emails", list(p.ManagerEmails, "none")},
		{"cold_start", p.ColdStart},
		{"sms_disabled", yesNo(p.SMSDisabled)},
		{"sms_per_hour", map[bool]string{true: "installation cap", false: fmt.Sprint(p.SMSPerHour)}[p.SMSPerHour == 0]},
	}
	if len(v.Groups) == 0 {
		pairs = append(pairs, [2]string{"groups", "none"})
	}
	if err := kv(w, pairs); err != nil {
		return err
	}
	if len(v.Groups) == 0 {
		return nil
	}
	names := make([]string, 0, len(v.Groups))
	for g := range v.Groups {
		names = append(names, g)
	}
	slices.Sort(names)
	rows := make([][]string, len(names))
	for i, g := range names {
		o, _ := json.Marshal(v.Groups[g])
		rows[i] = []string{g, v.EffectiveGroups[g].Mode, v.EffectiveGroups[g].Enforcement, string(o)}
	}
	fmt.Fprintln(w)
	return table(w, []string{"GROUP", "MODE", "ENFORCEMENT", "OVERRIDES"}, rows)
}
