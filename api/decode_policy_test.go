package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// TestDecodePolicy pins how a PUT /v1/admin/policy body becomes an
// engine.PolicyUpdate, and the errors (code, field, message) of the bodies
// it refuses. What the engine does with an update is engine's
// TestPutPolicyValidation and TestPutPolicyMerge.
func TestDecodePolicy(t *testing.T) {
	groups := func(g map[string]engine.PolicyPatch) *map[string]engine.PolicyPatch { return &g }
	tests := []struct {
		name  string
		body  string
		want  engine.PolicyUpdate // when accepted
		code  string              // "" = accepted
		field string
		msg   string // "" = not pinned
	}{
		{name: "empty object", body: `{}`},
		{name: "fields", body: `{"mode":"required","grace_logins":3,"sms_disabled":false}`,
			want: engine.PolicyUpdate{Policy: engine.PolicyPatch{Mode: new(engine.ModeRequired), GraceLogins: new(3), SMSDisabled: new(false)}}},
		{name: "partial thresholds", body: `{"thresholds":{"challenge":100}}`,
			want: engine.PolicyUpdate{Policy: engine.PolicyPatch{Thresholds: &engine.ThresholdsPatch{Challenge: new(100)}}}},
		{name: "null scalars name nothing", body: `{"mode":null,"grace_logins":null,"thresholds":null}`},
		{name: "null list is named", body: `{"allowed_channels":null,"manager_emails":null}`,
			want: engine.PolicyUpdate{Policy: engine.PolicyPatch{AllowedChannels: new([]engine.Channel), ManagerEmails: new([]string)}}},
		{name: "empty list", body: `{"sms_countries":[]}`,
			want: engine.PolicyUpdate{Policy: engine.PolicyPatch{SMSCountries: &[]string{}}}},
		{name: "groups", body: `{"groups":{"staff":{"mode":"off","sms_countries":null},"patients":{}}}`,
			want: engine.PolicyUpdate{Groups: groups(map[string]engine.PolicyPatch{
				"staff": {Mode: new(engine.ModeOff), SMSCountries: new([]string)}, "patients": {}})}},
		{name: "groups null drops every group", body: `{"groups":null}`,
			want: engine.PolicyUpdate{Groups: groups(map[string]engine.PolicyPatch{})}},
		{name: "GET answer sent back", body: `{"mode":"optional","groups":{},"effective_groups":{"staff":{"mode":"off"}}}`,
			want: engine.PolicyUpdate{Policy: engine.PolicyPatch{Mode: new(engine.ModeOptional)}, Groups: groups(map[string]engine.PolicyPatch{})}},
		{name: "effective_groups of any shape", body: `{"effective_groups":"x"}`},

		{name: "empty body", body: ``, code: "bad_json", msg: "request body is empty; send a JSON object"},
		{name: "null body", body: `null`, code: "bad_json"},
		{name: "not an object", body: `[1]`, code: "bad_json", msg: "the body must be a JSON object"},
		{name: "trailing data", body: `{"mode":"off"} {}`, code: "bad_json", msg: "trailing data after the JSON object"},
		{name: "not json", body: `{"mode":`, code: "bad_json"},
		{name: "unknown field", body: `{"mood":"required"}`, code: "unknown_field", field: "mood", msg: `unknown field "mood"`},
		{name: "required_since is internal", body: `{"required_since":"x"}`, code: "unknown_field", field: "required_since", msg: `unknown field "required_since"`},
		{name: "required_since named first", body: `{"mood":1,"required_since":"x"}`, code: "unknown_field", field: "required_since"},
		{name: "unknown threshold", body: `{"thresholds":{"warn":3}}`, code: "unknown_field", field: "warn"},
		{name: "grace as string", body: `{"grace_logins":"5"}`, code: "validation_failed", field: "grace_logins", msg: "grace_logins: must be an integer"},
		{name: "grace fraction", body: `{"grace_logins":2.5}`, code: "validation_failed", field: "grace_logins"},
		{name: "threshold as string", body: `{"thresholds":{"challenge":"high"}}`, code: "validation_failed", field: "thresholds.challenge", msg: "thresholds.challenge: must be an integer"},
		{name: "thresholds as number", body: `{"thresholds":5}`, code: "validation_failed", field: "thresholds", msg: "thresholds: must be an object"},
		{name: "channels as string", body: `{"allowed_channels":"sms"}`, code: "validation_failed", field: "allowed_channels", msg: "allowed_channels: must be a list"},
		{name: "channel as number", body: `{"allowed_channels":[1]}`, code: "validation_failed", field: "allowed_channels", msg: "allowed_channels: must be a string"},
		{name: "mode as number", body: `{"mode":1}`, code: "validation_failed", field: "mode", msg: "mode: must be a string"},
		{name: "kill switch as string", body: `{"sms_disabled":"yes"}`, code: "validation_failed", field: "sms_disabled", msg: "sms_disabled: must be true or false"},
		{name: "groups as list", body: `{"groups":[]}`, code: "validation_failed", field: "groups", msg: "groups: must be an object"},
		{name: "group unknown field", body: `{"groups":{"staff":{"colour":"red"}}}`, code: "validation_failed", field: "groups.staff", msg: `groups.staff: unknown field "colour"`},
		{name: "group nests groups", body: `{"groups":{"staff":{"groups":{}}}}`, code: "validation_failed", field: "groups.staff", msg: `groups.staff: unknown field "groups"`},
		{name: "group sets required_since", body: `{"groups":{"staff":{"required_since":"x"}}}`, code: "validation_failed", field: "groups.staff"},
		{name: "group type error", body: `{"groups":{"staff":{"grace_logins":"3"}}}`, code: "validation_failed", field: "groups.staff", msg: "groups.staff: grace_logins: must be an integer"},
		{name: "group nested type error", body: `{"groups":{"staff":{"thresholds":{"deny":"x"}}}}`, code: "validation_failed", field: "groups.staff", msg: "groups.staff: thresholds.deny: must be an integer"},
		{name: "group not an object", body: `{"groups":{"staff":"required"}}`, code: "validation_failed", field: "groups.staff", msg: "groups.staff: the body must be a JSON object"},
		{name: "group null", body: `{"groups":{"staff":null}}`, code: "validation_failed", field: "groups.staff", msg: "groups.staff: the body must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := decodePolicy([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("decodePolicy(%s) = %v, want accepted", tt.body, err)
				}
				if !reflect.DeepEqual(u, tt.want) {
					t.Errorf("decodePolicy(%s) = %s, want %s", tt.body, updateString(u), updateString(tt.want))
				}
				return
			}
			e := engine.AsError(err)
			if err == nil || e.Kind != engine.KindInvalid || e.Code != tt.code {
				t.Fatalf("decodePolicy(%s) = %v, want code %s", tt.body, err, tt.code)
			}
			if tt.field != "" && e.Meta["field"] != tt.field {
				t.Errorf("decodePolicy(%s): field %v, want %q", tt.body, e.Meta["field"], tt.field)
			}
			if tt.msg != "" && e.Msg != tt.msg {
				t.Errorf("decodePolicy(%s): message %q, want %q", tt.body, e.Msg, tt.msg)
			}
		})
	}
}

// updateString shows an update with its pointers followed (nil lists as
// null, absent fields left out).
func updateString(u engine.PolicyUpdate) string {
	b, _ := json.Marshal(struct {
		engine.PolicyPatch
		Groups *map[string]engine.PolicyPatch `json:"groups,omitempty"`
	}{u.Policy, u.Groups})
	return string(b)
}
