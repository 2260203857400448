package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// decodeTargets are the request types decodeBytes fills, by name.
var decodeTargets = []struct {
	name       string
	new        func() any
	allowEmpty bool
}{
	{"evaluate", func() any { return &evaluateReq{} }, false},
	{"failed", func() any { return &failedReq{} }, false},
	{"verify", func() any { return &verifyReq{} }, false},
	{"switch", func() any { return &switchReq{} }, false},
	{"put_user", func() any { return &putUserReq{} }, false},
	{"sms", func() any { return &smsReq{} }, false},
	{"phone_change", func() any { return &phoneChangeReq{} }, false},
	{"actor", func() any { return &actorReq{} }, true},
	{"resend", func() any { return &struct{}{} }, true},
	{"history", func() any { return &historyReq{} }, false},
	{"tenant", func() any { return &createTenantReq{} }, false},
	{"key", func() any { return &createKeyReq{} }, false},
	{"reset", func() any { return &resetReq{} }, false},
	{"disable_all", func() any { return &disableAllReq{} }, false},
	{"policy", func() any { return &policyBody{} }, false},
}

// decodeCodes are the only codes a decoding failure may carry.
var decodeCodes = map[string]bool{"bad_json": true, "unknown_field": true, "validation_failed": true}

// FuzzDecode checks that no body, however malformed, panics the decoder,
// and that every failure is a 400 with one of the decoding codes.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `1`, `{`, `}`, `{}}`, `{} {}`, `{}]`, `{"a":1}`,
		`{"user_id":"u-42","ip":"203.0.113.9","user_agent":"Mozilla/5.0","device_id":"d","device_token":"t"}`,
		`{"user_id":5}`, `{"user_id":"u","user_id":"v"}`, `{"code":"123456","remember_device":true}`,
		`{"remember_device":"yes"}`, `{"email":null,"group":""}`, `{"phone":"+61491570156","ip":"1.2.3.4"}`,
		`{"logins":[{"ip":"1.2.3.4","at":"2026-01-02T15:04:05Z"}]}`, `{"logins":[{"at":"yesterday"}]}`,
		`{"logins":[{"at":1}]}`, `{"kind":"app","label":"\u0000"}`, `{"channel":"sms"}`,
		`{"mode":"required","groups":{"staff":{"mode":"off"}}}`, "\xff\xfe{}", `{"a":` + strings.Repeat(`[`, 10000),
		`{"user_id":"` + strings.Repeat("x", 70000) + `"}`, `{"user_id":1e999}`, `{"remember_device":1}`,
		`{"user_id":"\ud800"}`, `{"user_id":"\ud83d\ude00"}`, `{"user_id":"\\udc00"}`,
	} {
		for i := range decodeTargets {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		target := decodeTargets[int(which)%len(decodeTargets)]
		err := decodeBytes(b, target.new(), target.allowEmpty)
		if target.name == "policy" {
			_, err = decodePolicy(b) // the groups too
		}
		if err == nil {
			return
		}
		var e *engine.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %q: error %T %v is not an *engine.Error", target.name, b, err, err)
		}
		if e.Kind != engine.KindInvalid || statusOf[e.Kind] != 400 {
			t.Fatalf("%s: %q: kind %v (status %d), want invalid (400)", target.name, b, e.Kind, statusOf[e.Kind])
		}
		if !decodeCodes[e.Code] {
			t.Fatalf("%s: %q: code %q, want one of bad_json, unknown_field, validation_failed", target.name, b, e.Code)
		}
		if e.Code != "bad_json" {
			if _, ok := e.Meta["field"].(string); !ok {
				t.Fatalf("%s: %q: %s without a field", target.name, b, e.Code)
			}
		}
		// The error must survive the trip to JSON (what writeError sends).
		if _, err := json.Marshal(errorBody{Error: map[string]any{"code": e.Code, "message": e.Msg}}); err != nil {
			t.Fatalf("%s: %q: error body does not marshal: %v", target.name, b, err)
		}
	})
}

// TestDecodeBytes pins the decoder's answers; each row is one request body
// a client might send.
func TestDecodeBytes(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		allowEmpty bool
		code       string // "" = accepted
		field      string
	}{
		{"object", `{"user_id":"u","ip":"1.2.3.4"}`, false, "", ""},
		{"empty refused", ``, false, "bad_json", ""},
		{"blank refused", " \n\t", false, "bad_json", ""},
		{"empty allowed", ``, true, "", ""},
		{"not json", `{`, false, "bad_json", ""},
		{"garbage", `user_id=u`, false, "bad_json", ""},
		{"trailing object", `{} {}`, false, "bad_json", ""},
		{"trailing text", `{} x`, false, "bad_json", ""},
		{"unknown field", `{"user_id":"u","colour":"red"}`, false, "unknown_field", "colour"},
		{"wrong type", `{"user_id":5}`, false, "validation_failed", "user_id"},
		{"wrong nested type", `{"logins":[{"ip":7}]}`, false, "validation_failed", "logins.ip"},
		// Malformed bodies that only a strict decoder refuses.
		{"trailing brace", `{}}`, false, "bad_json", ""},
		{"trailing bracket", `{}]`, false, "bad_json", ""},
		{"array", `[]`, false, "bad_json", ""},
		{"string", `"x"`, false, "bad_json", ""},
		{"null", `null`, false, "bad_json", ""},
		// JSON is UTF-8: a bad byte is refused, not swapped for U+FFFD.
		{"not utf-8", "{\"user_id\":\"bob\xff\"}", false, "bad_json", ""},
		// Nor is an escaped half of a UTF-16 pair: "\ud800" and "\udc00"
		// would both decode as U+FFFD, two ids as one.
		{"lone high surrogate", `{"user_id":"bob\ud800"}`, false, "bad_json", ""},
		{"lone low surrogate", `{"user_id":"bob\uDC00"}`, false, "bad_json", ""},
		{"high surrogate then text", `{"user_id":"\ud800x\udc00"}`, false, "bad_json", ""},
		{"two high surrogates", `{"user_id":"\ud83d\ud83d"}`, false, "bad_json", ""},
		{"surrogate at the end", `{"user_id":"\ud83d`, false, "bad_json", ""},
		{"surrogate in a name", `{"\udfff":1}`, false, "bad_json", ""},
		{"surrogate pair", `{"user_id":"bob\ud83d\ude00"}`, false, "", ""},
		{"escaped backslash then u", `{"user_id":"bob\\ud800"}`, false, "", ""},
		{"escaped quote then surrogate pair", `{"user_id":"\"\uD83D\uDE00\\"}`, false, "", ""},
		{"replacement character itself", `{"user_id":"bob\ufffd"}`, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v evaluateReq
			var target any = &v
			if strings.Contains(tt.body, "logins") {
				target = &historyReq{}
			}
			err := decodeBytes([]byte(tt.body), target, tt.allowEmpty)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("decodeBytes(%q) = %v, want accepted", tt.body, err)
				}
				return
			}
			e := engine.AsError(err)
			if err == nil || e.Code != tt.code {
				t.Fatalf("decodeBytes(%q) = %v, want code %s", tt.body, err, tt.code)
			}
			if tt.field != "" && e.Meta["field"] != tt.field {
				t.Errorf("decodeBytes(%q): field %v, want %q", tt.body, e.Meta["field"], tt.field)
			}
		})
	}
	// A body accepted with allowEmpty=false is always one JSON object.
	for _, s := range []string{`{}`, ` {"ip":"x"} `} {
		if err := decodeBytes([]byte(s), &evaluateReq{}, false); err != nil {
			t.Errorf("decodeBytes(%q) = %v", s, err)
		}
		if !json.Valid(bytes.TrimSpace([]byte(s))) {
			t.Errorf("%q is not JSON", s)
		}
	}
}
