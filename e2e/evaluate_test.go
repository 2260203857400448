package e2e_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
)

// Login evaluation over the real HTTP API: decisions, signals, what is and
// is not learned, velocity, and the validation of every input field.

// The contexts: the documentation ranges of geoiptest.DemoNetworks.
const (
	evalIPGB    = "198.51.100.20" // GB
	evalIPGB2   = "198.51.100.21" // GB, same /24
	evalIPAU    = "192.0.2.20"    // AU
	evalIPStuff = "203.0.113.99"  // US: the credential-stuffing source
	evalUA      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
)

// evalPatience bounds every wait for something asynchronous (a mail); the
// tests poll against it and never sleep for a fixed time.
const evalPatience = 20 * time.Second

var evalCode = regexp.MustCompile(`\b\d{4,10}\b`)

type evalSite struct {
	*apptest.Env
	app, mgr string
}

// newEvalSite starts a stepupd on the given Redis whose Country database is
// the demo table, with one tenant.
func newEvalSite(t *testing.T, redis string) evalSite {
	t.Helper()
	geo := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	env := apptest.New(t, apptest.Options{Redis: redis, Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = geo
		c.Limits.ChallengesPerIPHour = 1000
	}})
	_, app, mgr := env.Tenant(t, "acme")
	return evalSite{Env: env, app: app, mgr: mgr}
}

func (s evalSite) evaluate(t *testing.T, user, ip, device string) map[string]any {
	t.Helper()
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app,
		map[string]any{"user_id": user, "ip": ip, "user_agent": evalUA, "device_id": device})
	evalCheckShape(t, ev)
	return ev
}

func (s evalSite) failed(t *testing.T, user, ip string) {
	t.Helper()
	r := s.Do(t, "POST", "/v1/logins/failed", s.app, map[string]any{"user_id": user, "ip": ip, "user_agent": evalUA})
	if r.Status != 204 || len(r.Raw) != 0 {
		t.Fatalf("POST /v1/logins/failed: %d %s, want 204 without a body", r.Status, r.Raw)
	}
}

// mailCode waits for a code mail to addr among the mails after the first
// seen ones and returns its code.
func (s evalSite) mailCode(t *testing.T, addr string, seen int) string {
	t.Helper()
	deadline := time.Now().Add(evalPatience)
	for time.Now().Before(deadline) {
		msgs := s.SMTP.Messages()
		for i := len(msgs) - 1; i >= seen; i-- {
			if slices.Contains(msgs[i].To, addr) && strings.Contains(msgs[i].Subject, "verification code") {
				if code := evalCode.FindString(msgs[i].Text); code != "" {
					return code
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no code mail to %s within %s (%d mails)", addr, evalPatience, len(s.SMTP.Messages()))
	return ""
}

// enrollEmail gives user an address and enrols it as the e-mail factor.
func (s evalSite) enrollEmail(t *testing.T, user string) {
	t.Helper()
	addr := user + "@example.test"
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.app, map[string]any{"email": addr})
	seen := len(s.SMTP.Messages())
	st := s.Must(t, 201, "POST", "/v1/users/"+user+"/email-factor", s.app, nil)
	ch := evalObj(st, "challenge")
	if ch["channel"] != "email" || ch["purpose"] != "enroll_email" {
		t.Fatalf("e-mail enrolment: %v", st)
	}
	res := s.Must(t, 200, "POST", "/v1/challenges/"+evalStr(ch, "id")+"/verify", s.app, map[string]any{"code": s.mailCode(t, addr, seen)})
	if res["verified"] != true || res["purpose"] != "enroll_email" {
		t.Fatalf("enrolment verify: %v", res)
	}
	if u := s.Must(t, 200, "GET", "/v1/users/"+user, s.app, nil); u["enrolled"] != true {
		t.Fatalf("after enrolment: %v", u)
	}
}

// evalCheckShape checks what every evaluation answer holds.
func evalCheckShape(t *testing.T, ev map[string]any) {
	t.Helper()
	if !strings.HasPrefix(evalStr(ev, "login_id"), "lg_") {
		t.Errorf("login_id %v", ev["login_id"])
	}
	switch ev["decision"] {
	case "allow", "challenge", "deny", "enroll":
	default:
		t.Errorf("decision %v", ev["decision"])
	}
	r := evalObj(ev, "risk")
	score, ok := r["score"].(float64)
	if !ok || score < 0 || score > 100 || score != float64(int(score)) {
		t.Errorf("risk.score %v, want an integer 0-100", r["score"])
	}
	if want := map[bool]string{true: "medium", false: "low"}[score >= 50]; r["level"] != want {
		t.Errorf("risk.level %v for score %v, want %s under the default thresholds", r["level"], score, want)
	}
	sigs, ok := r["signals"].([]any)
	if !ok {
		t.Fatalf("risk.signals %v is not a list", r["signals"])
	}
	for _, s := range sigs {
		d := evalStr(s.(map[string]any), "detail")
		if regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|:[0-9a-f]*:`).MatchString(d) {
			t.Errorf("signal %v shows an address", s)
		}
	}
	if (ev["decision"] == "challenge") != (ev["challenge"] != nil) {
		t.Errorf("decision %v with challenge %v", ev["decision"], ev["challenge"])
	}
	if _, ok := ev["enrollment"].(map[string]any); !ok {
		t.Errorf("enrollment %v", ev["enrollment"])
	}
}

func evalObj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func evalStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func evalScore(ev map[string]any) int { return int(evalObj(ev, "risk")["score"].(float64)) }

func evalSignals(ev map[string]any) []string {
	var out []string
	for _, s := range evalObj(ev, "risk")["signals"].([]any) {
		out = append(out, evalStr(s.(map[string]any), "name"))
	}
	return out
}

func evalSignal(ev map[string]any, name string) (map[string]any, bool) {
	for _, s := range evalObj(ev, "risk")["signals"].([]any) {
		if m := s.(map[string]any); m["name"] == name {
			return m, true
		}
	}
	return nil, false
}

// TestEvaluate walks the decisions on a single Redis and on a cluster.
func TestEvaluate(t *testing.T) {
	for _, kind := range []string{apptest.Single, apptest.Cluster} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := newEvalSite(t, kind)

			t.Run("first login is allowed with no_history", func(t *testing.T) {
				ev := s.evaluate(t, "alice", evalIPGB, "laptop")
				if ev["decision"] != "allow" || !slices.Equal(evalSignals(ev), []string{"no_history"}) || ev["challenge"] != nil {
					t.Fatalf("first login: %v", ev)
				}
				if e := evalObj(ev, "enrollment"); e["suggested"] != true || e["required"] != false {
					t.Errorf("enrollment %v, want suggested (optional mode, no 2FA)", e)
				}
			})

			t.Run("familiar logins are allowed and low", func(t *testing.T) {
				for i, ip := range []string{evalIPGB, evalIPGB, evalIPGB2, evalIPGB} {
					ev := s.evaluate(t, "alice", ip, "laptop")
					r := evalObj(ev, "risk")
					if ev["decision"] != "allow" || r["level"] != "low" || slices.Contains(evalSignals(ev), "no_history") {
						t.Errorf("familiar login %d: %v", i, ev)
					}
				}
			})

			s.enrollEmail(t, "alice")

			t.Run("a familiar login of the enrolled user is allowed", func(t *testing.T) {
				ev := s.evaluate(t, "alice", evalIPGB, "laptop")
				if ev["decision"] != "allow" || evalObj(ev, "risk")["level"] != "low" || evalObj(ev, "enrollment")["suggested"] != false {
					t.Errorf("familiar login: %v", ev)
				}
			})

			var first map[string]any
			t.Run("new country and new device are challenged", func(t *testing.T) {
				seen := len(s.SMTP.Messages())
				ev := s.evaluate(t, "alice", evalIPAU, "stranger")
				first = ev
				// Equal weights (the unseen penalty for either feature) are
				// ordered by name.
				if ev["decision"] != "challenge" || evalScore(ev) < 70 ||
					!slices.Equal(evalSignals(ev), []string{"new_country", "new_device"}) {
					t.Fatalf("suspicious login: %v", ev)
				}
				if sig, _ := evalSignal(ev, "new_country"); sig["detail"] != "AU" {
					t.Errorf("new_country %v, want detail AU", sig)
				}
				ch := evalObj(ev, "challenge")
				if ch["channel"] != "email" || !strings.HasPrefix(evalStr(ch, "id"), "ch_") || evalStr(ch, "expires_at") == "" {
					t.Errorf("challenge %v", ch)
				}
				s.mailCode(t, "alice@example.test", seen) // the code goes out
			})
			if first == nil {
				t.FailNow()
			}

			var second map[string]any
			var seen int
			t.Run("a challenged login never verified teaches nothing", func(t *testing.T) {
				seen = len(s.SMTP.Messages())
				ev := s.evaluate(t, "alice", evalIPAU, "stranger")
				second = ev
				if ev["decision"] != "challenge" || evalScore(ev) != evalScore(first) ||
					!slices.Equal(evalSignals(ev), evalSignals(first)) {
					t.Errorf("same context again: %v, want the same challenge as %v", ev, first)
				}
			})

			t.Run("a verified challenge teaches the context", func(t *testing.T) {
				if second == nil || second["challenge"] == nil {
					t.Skip("no challenge to verify")
				}
				ch := evalObj(second, "challenge")
				res := s.Must(t, 200, "POST", "/v1/challenges/"+evalStr(ch, "id")+"/verify", s.app,
					map[string]any{"code": s.mailCode(t, "alice@example.test", seen)})
				if res["verified"] != true || evalObj(res, "result")["login_id"] != second["login_id"] {
					t.Fatalf("verify: %v", res)
				}
				ev := s.evaluate(t, "alice", evalIPAU, "stranger")
				if sig := evalSignals(ev); slices.Contains(sig, "new_country") || slices.Contains(sig, "new_device") ||
					evalScore(ev) >= evalScore(first) {
					t.Errorf("after the verified login: %v, want no new_country/new_device and a lower score than %d", ev, evalScore(first))
				}
			})

			t.Run("an unenrolled user is allowed with enrolment suggested", func(t *testing.T) {
				for range 3 {
					s.evaluate(t, "bob", evalIPGB, "bob-phone")
				}
				ev := s.evaluate(t, "bob", evalIPAU, "stranger")
				if ev["decision"] != "allow" || ev["challenge"] != nil || evalObj(ev, "enrollment")["suggested"] != true {
					t.Errorf("unenrolled user from a new country: %v", ev)
				}
				if !slices.Contains(evalSignals(ev), "new_country") {
					t.Errorf("signals %v lack new_country: the risk is still reported", evalSignals(ev))
				}
			})

			t.Run("failed passwords for the user", func(t *testing.T) {
				for range 3 {
					s.evaluate(t, "carol", evalIPGB, "carol-laptop")
				}
				for range 4 {
					s.failed(t, "carol", evalIPStuff)
				}
				if ev := s.evaluate(t, "carol", evalIPGB, "carol-laptop"); slices.Contains(evalSignals(ev), "failed_password_burst") {
					t.Errorf("after 4 failed passwords: %v, want no burst yet", evalSignals(ev))
				}
				s.failed(t, "carol", evalIPStuff)
				ev := s.evaluate(t, "carol", evalIPGB, "carol-laptop")
				sig, ok := evalSignal(ev, "failed_password_burst")
				if !ok || sig["detail"] != "5 failed passwords" {
					t.Errorf("after 5 failed passwords: %v, want failed_password_burst", ev)
				}
			})

			t.Run("failed passwords from one IP across users", func(t *testing.T) {
				for i := range 19 {
					s.failed(t, fmt.Sprintf("stuffed-%02d", i), evalIPStuff)
				}
				// carol failed from there too: 20 users in all now.
				ev := s.evaluate(t, "dave", evalIPStuff, "dave-laptop")
				sig, ok := evalSignal(ev, "ip_failed_many_users")
				if !ok || !strings.HasPrefix(evalStr(sig, "detail"), "20 ") {
					t.Errorf("another user from the IP: %v, want ip_failed_many_users (20)", ev)
				}
				if slices.Contains(evalSignals(ev), "failed_password_burst") {
					t.Errorf("dave has no failed password: %v", evalSignals(ev))
				}
				if ev := s.evaluate(t, "dave", evalIPGB, "dave-laptop"); slices.Contains(evalSignals(ev), "ip_failed_many_users") {
					t.Errorf("from another IP: %v", evalSignals(ev))
				}
			})
		})
	}
}

// TestEvaluateStuffingThreshold: 19 users failing from an IP is not yet
// credential stuffing, the 20th is.
func TestEvaluateStuffingThreshold(t *testing.T) {
	s := newEvalSite(t, apptest.Embedded)
	for i := range 19 {
		s.failed(t, fmt.Sprintf("victim-%02d", i), evalIPStuff)
	}
	// The same user again does not count twice.
	s.failed(t, "victim-00", evalIPStuff)
	if ev := s.evaluate(t, "erin", evalIPStuff, "erin-laptop"); slices.Contains(evalSignals(ev), "ip_failed_many_users") {
		t.Errorf("19 users: %v, want no ip_failed_many_users yet", evalSignals(ev))
	}
	s.failed(t, "victim-19", evalIPStuff)
	if ev := s.evaluate(t, "frank", evalIPStuff, "frank-laptop"); !slices.Contains(evalSignals(ev), "ip_failed_many_users") {
		t.Errorf("20 users: %v, want ip_failed_many_users", evalSignals(ev))
	}
}

// TestEvaluateBadInput: every field of an evaluation is validated, and the
// error names it.
func TestEvaluateBadInput(t *testing.T) {
	s := newEvalSite(t, apptest.Embedded)
	ok := func(m map[string]any) map[string]any {
		b := map[string]any{"user_id": "u-42", "ip": evalIPGB, "user_agent": evalUA, "device_id": "d1"}
		for k, v := range m {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"user_id missing", ok(map[string]any{"user_id": nil}), 400, "validation_failed", "user_id"},
		{"user_id empty", ok(map[string]any{"user_id": ""}), 400, "validation_failed", "user_id"},
		{"user_id 129 characters", ok(map[string]any{"user_id": strings.Repeat("u", 129)}), 400, "validation_failed", "user_id"},
		{"user_id with NUL", ok(map[string]any{"user_id": "u\x0042"}), 400, "validation_failed", "user_id"},
		{"user_id with a newline", ok(map[string]any{"user_id": "u\n42"}), 400, "validation_failed", "user_id"},
		{"user_id with DEL", ok(map[string]any{"user_id": "u\x7f42"}), 400, "validation_failed", "user_id"},
		{"user_id with an escape", ok(map[string]any{"user_id": "u\x1b[31m"}), 400, "validation_failed", "user_id"},
		{"user_id a number", `{"user_id":42,"ip":"198.51.100.20"}`, 400, "validation_failed", "user_id"},
		{"ip not an address", ok(map[string]any{"ip": "not-an-ip"}), 400, "invalid_ip", "ip"},
		{"ip missing", ok(map[string]any{"ip": nil}), 400, "invalid_ip", "ip"},
		{"ip with a zone", ok(map[string]any{"ip": "fe80::1%eth0"}), 400, "invalid_ip", "ip"},
		{"ip a CIDR", ok(map[string]any{"ip": "198.51.100.0/24"}), 400, "invalid_ip", "ip"},
		{"user_agent over 1024 bytes", ok(map[string]any{"user_agent": strings.Repeat("a", 1025)}), 400, "validation_failed", "user_agent"},
		{"device_id over 256 bytes", ok(map[string]any{"device_id": strings.Repeat("d", 257)}), 400, "validation_failed", "device_id"},
		{"device_token over 128 bytes", ok(map[string]any{"device_token": strings.Repeat("t", 129)}), 400, "validation_failed", "device_token"},
		{"unknown field", ok(map[string]any{"password": "hunter2"}), 400, "unknown_field", "password"},
		{"bad JSON", `{"user_id":"u-42","ip":`, 400, "bad_json", ""},
		{"not JSON", `user_id=u-42`, 400, "bad_json", ""},
		{"empty body", "", 400, "bad_json", ""},
		{"trailing data", `{"user_id":"u-42","ip":"198.51.100.20"} {}`, 400, "bad_json", ""},
		// The limits themselves are accepted.
		{"user_id 128 characters", ok(map[string]any{"user_id": strings.Repeat("u", 128)}), 200, "", ""},
		{"user_id with spaces and unicode", ok(map[string]any{"user_id": "Zoë Smith (ops)"}), 200, "", ""},
		{"user_agent 1024 bytes", ok(map[string]any{"user_agent": strings.Repeat("a", 1024)}), 200, "", ""},
		{"user_agent empty", ok(map[string]any{"user_agent": ""}), 200, "", ""},
		{"device_id 256 bytes", ok(map[string]any{"device_id": strings.Repeat("d", 256)}), 200, "", ""},
		{"device_id missing", ok(map[string]any{"device_id": nil}), 200, "", ""},
		{"IPv6", ok(map[string]any{"ip": "2001:db8::1"}), 200, "", ""},
		{"IPv4-mapped IPv6", ok(map[string]any{"ip": "::ffff:198.51.100.20"}), 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, "POST", "/v1/logins/evaluate", s.app, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Raw)
			}
			if tc.status == 200 {
				evalCheckShape(t, r.Body)
				return
			}
			e := evalObj(r.Body, "error")
			if e["code"] != tc.code || evalStr(e, "message") == "" {
				t.Errorf("error %v, want code %s", r.Body, tc.code)
			}
			if tc.field != "" && e["field"] != tc.field {
				t.Errorf("error %v, want field %s", e, tc.field)
			}
			if r.Body["login_id"] != nil {
				t.Errorf("an error answer with a login: %s", r.Raw)
			}
		})
	}

	// The failed-password report validates the same fields.
	for _, tc := range []struct {
		body        map[string]any
		code, field string
	}{
		{map[string]any{"user_id": "", "ip": evalIPGB}, "validation_failed", "user_id"},
		{map[string]any{"user_id": strings.Repeat("u", 129), "ip": evalIPGB}, "validation_failed", "user_id"},
		{map[string]any{"user_id": "u\x01", "ip": evalIPGB}, "validation_failed", "user_id"},
		{map[string]any{"user_id": "u-42", "ip": "not-an-ip"}, "invalid_ip", "ip"},
		{map[string]any{"user_id": "u-42", "ip": evalIPGB, "user_agent": strings.Repeat("a", 1025)}, "validation_failed", "user_agent"},
		{map[string]any{"user_id": "u-42", "ip": evalIPGB, "device_id": "d1"}, "unknown_field", "device_id"},
	} {
		r := s.Do(t, "POST", "/v1/logins/failed", s.app, tc.body)
		if e := evalObj(r.Body, "error"); r.Status != 400 || e["code"] != tc.code || e["field"] != tc.field {
			t.Errorf("failed %v: %d %s, want 400 %s on %s", tc.body, r.Status, r.Raw, tc.code, tc.field)
		}
	}

	// Only an app key may evaluate.
	if r := s.Do(t, "POST", "/v1/logins/evaluate", "", ok(nil)); r.Status != 401 {
		t.Errorf("without a key: %d %s", r.Status, r.Raw)
	}
	if r := s.Do(t, "POST", "/v1/logins/evaluate", s.mgr, ok(nil)); r.Status != 401 && r.Status != 403 {
		t.Errorf("with a manager key: %d %s", r.Status, r.Raw)
	}
}
