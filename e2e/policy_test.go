package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
)

// The policy and admin tests (policy_test.go, admin_test.go) drive the
// account manager's side of section 6 of the spec: the tenant policy, its
// groups, what every field does to a login or a lifecycle call, and the
// admin actions. Every helper here is prefixed with pol so it cannot clash
// with the helpers of the package's other files.

const (
	// polUA is a desktop Chrome; polUAPhone a mobile Safari.
	polUA      = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	polUAPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

	// The demo GeoIP table: 192.0.2.0/24 AU, 198.51.100.0/24 GB,
	// 203.0.113.0/24 US, 2001:db8::/32 DE.
	polIPAU = "192.0.2.10"
	polIPGB = "198.51.100.7"
	polIPUS = "203.0.113.9"
	polIPDE = "2001:db8:5::9"

	// polPhoneUK is a valid UK mobile (not the drama range, which
	// libphonenumber refuses); engine's TestPolicyTestPhones pins it.
	polPhoneUK = "+447400123456"
)

// polPhone returns the i-th number of Australia's fictional mobile range.
func polPhone(i int) string { return fmt.Sprintf("+61491570%03d", 100+i) }

// polStart starts stepupd on a real redis-server with the demo GeoIP
// table, so countries are known.
func polStart(t *testing.T) *apptest.Env {
	t.Helper()
	return polStartOn(t, apptest.Single)
}

// polStartOn is polStart on a kind of Redis (apptest.Single, Cluster or
// Embedded).
func polStartOn(t *testing.T, redis string) *apptest.Env {
	t.Helper()
	country := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	return apptest.New(t, apptest.Options{Redis: redis, Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = country
	}})
}

// polTenant is a tenant with its keys.
type polTenant struct{ ID, App, Mgr string }

func polNewTenant(t *testing.T, env *apptest.Env, name string) polTenant {
	t.Helper()
	id, app, mgr := env.Tenant(t, name)
	return polTenant{ID: id, App: app, Mgr: mgr}
}

// polPut changes the tenant's policy and returns the answer.
func polPut(t *testing.T, env *apptest.Env, tn polTenant, body any) map[string]any {
	t.Helper()
	return env.Must(t, 200, "PUT", "/v1/admin/policy", tn.Mgr, body)
}

// polObj returns m[key] as an object (nil if it is not one).
func polObj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

// polErr checks an error answer: status, code and (when not "") field.
func polErr(t *testing.T, r apptest.Response, status int, code, field string) {
	t.Helper()
	e := polObj(r.Body, "error")
	if r.Status != status || e == nil || e["code"] != code {
		t.Errorf("answer %d %s, want %d %s", r.Status, r.Raw, status, code)
		return
	}
	if field != "" && e["field"] != field {
		t.Errorf("error names field %v, want %q: %s", e["field"], field, r.Raw)
	}
}

// polLogin is a login from ip with a device id, and optionally a
// remembered-device token.
type polLogin struct {
	User, IP, Device, Token, UA string
}

func polEval(t *testing.T, env *apptest.Env, tn polTenant, l polLogin) map[string]any {
	t.Helper()
	if l.UA == "" {
		l.UA = polUA
	}
	body := map[string]any{"user_id": l.User, "ip": l.IP, "user_agent": l.UA, "device_id": l.Device}
	if l.Token != "" {
		body["device_token"] = l.Token
	}
	return env.Must(t, 200, "POST", "/v1/logins/evaluate", tn.App, body)
}

// polSignals lists the names of an evaluation's signals.
func polSignals(ev map[string]any) []string {
	var out []string
	sigs, _ := polObj(ev, "risk")["signals"].([]any)
	for _, s := range sigs {
		if m, ok := s.(map[string]any); ok {
			out = append(out, fmt.Sprint(m["name"]))
		}
	}
	return out
}

func polSignalDetail(ev map[string]any, name string) (string, bool) {
	sigs, _ := polObj(ev, "risk")["signals"].([]any)
	for _, s := range sigs {
		if m, ok := s.(map[string]any); ok && m["name"] == name {
			d, _ := m["detail"].(string)
			return d, true
		}
	}
	return "", false
}

func polScore(ev map[string]any) float64 {
	s, _ := polObj(ev, "risk")["score"].(float64)
	return s
}

// polGrace returns enrollment.grace_logins_left, or -1 when absent.
func polGrace(m map[string]any) float64 {
	if g, ok := m["grace_logins_left"].(float64); ok {
		return g
	}
	return -1
}

// polEnrollSMS enrols phone as the user's SMS factor and returns the
// first backup codes.
func polEnrollSMS(t *testing.T, env *apptest.Env, tn polTenant, user, phone string) []string {
	t.Helper()
	seen := len(env.Twilio.Messages())
	st := env.Must(t, 201, "POST", "/v1/users/"+user+"/sms", tn.App, map[string]any{"phone": phone})
	id, _ := polObj(st, "challenge")["id"].(string)
	code := env.SMSCode(t, phone, seen)
	res := env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": code})
	return polCodes(t, res)
}

// polEnrollTOTP enrols an authenticator app and returns the first backup
// codes.
func polEnrollTOTP(t *testing.T, env *apptest.Env, tn polTenant, user string) []string {
	t.Helper()
	st := env.Must(t, 201, "POST", "/v1/users/"+user+"/totp", tn.App, nil)
	id, _ := polObj(st, "challenge")["id"].(string)
	secret, _ := st["secret"].(string)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": code})
	return polCodes(t, res)
}

func polCodes(t *testing.T, res map[string]any) []string {
	t.Helper()
	raw, _ := polObj(res, "result")["backup_codes"].([]any)
	var codes []string
	for _, c := range raw {
		codes = append(codes, fmt.Sprint(c))
	}
	if len(codes) == 0 {
		t.Fatalf("no backup codes in %v", res)
	}
	return codes
}

// polPassChallenge answers a login's SMS challenge and returns the
// verification's result.
func polPassChallenge(t *testing.T, env *apptest.Env, tn polTenant, ev map[string]any, phone string, seen int, remember bool) map[string]any {
	t.Helper()
	if ev["decision"] != "challenge" {
		t.Fatalf("not challenged: %v", ev)
	}
	id, _ := polObj(ev, "challenge")["id"].(string)
	code := env.SMSCode(t, phone, seen)
	res := env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": code, "remember_device": remember})
	return polObj(res, "result")
}

// polVerifyLogin answers a login's challenge with code (a backup code
// fits any channel) and returns the verification's result.
func polVerifyLogin(t *testing.T, env *apptest.Env, tn polTenant, ev map[string]any, code string, remember bool) map[string]any {
	t.Helper()
	if ev["decision"] != "challenge" {
		t.Fatalf("not challenged: %v", ev)
	}
	id, _ := polObj(ev, "challenge")["id"].(string)
	res := env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": code, "remember_device": remember})
	return polObj(res, "result")
}

// polMail waits for a mail to addr whose subject contains subject.
func polMail(t *testing.T, env *apptest.Env, addr, subject string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range env.SMTP.Messages() {
			if slices.Contains(m.To, addr) && strings.Contains(m.Subject, subject) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, m := range env.SMTP.Messages() {
		got = append(got, fmt.Sprintf("%v %q", m.To, m.Subject))
	}
	t.Errorf("no mail to %s with subject %q within 10s; got %v", addr, subject, got)
}

// TestPolicyDefaults: a fresh tenant's policy is the documented default.
func TestPolicyDefaults(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	p := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil)
	th := polObj(p, "thresholds")
	if p["mode"] != "optional" || p["challenge"] != "risk_based" || p["grace_logins"] != 5.0 || p["remember_device_days"] != 30.0 ||
		th["challenge"] != 50.0 || th["deny"] != 101.0 {
		t.Errorf("defaults: %v", p)
	}
	var chans []string
	for _, c := range p["allowed_channels"].([]any) {
		chans = append(chans, c.(string))
	}
	slices.Sort(chans)
	if !slices.Equal(chans, []string{"email", "passkey", "sms", "totp"}) {
		t.Errorf("allowed_channels %v, want all four", p["allowed_channels"])
	}
	for _, f := range []string{"sms_countries", "trusted_networks", "blocked_networks", "blocked_countries", "manager_emails"} {
		if l, ok := p[f].([]any); !ok || len(l) != 0 {
			t.Errorf("%s = %v, want []", f, p[f])
		}
	}
	if g, ok := p["effective_groups"].(map[string]any); !ok || len(g) != 0 {
		t.Errorf("effective_groups = %v, want {}", p["effective_groups"])
	}
	if g, ok := p["groups"].(map[string]any); !ok || len(g) != 0 {
		t.Errorf("groups = %v, want {}", p["groups"])
	}
	if _, ok := p["required_since"]; ok {
		t.Errorf("GET shows the internal required_since: %s", p)
	}
}

// TestPolicyValidation: each field is checked; a bad value is a 400
// validation_failed naming the field and changes nothing.
func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	cases := []struct {
		name  string
		body  string
		code  string // "" = accepted
		field string
	}{
		{"mode", `{"mode":"sometimes"}`, "validation_failed", "mode"},
		{"mode empty", `{"mode":""}`, "validation_failed", "mode"},
		{"mode ok", `{"mode":"required"}`, "", ""},
		{"challenge", `{"challenge":"always"}`, "validation_failed", "challenge"},
		{"challenge ok", `{"challenge":"every_login"}`, "", ""},
		{"grace negative", `{"grace_logins":-1}`, "validation_failed", "grace_logins"},
		{"grace 101", `{"grace_logins":101}`, "validation_failed", "grace_logins"},
		{"grace 0", `{"grace_logins":0}`, "", ""},
		{"grace 100", `{"grace_logins":100}`, "", ""},
		{"grace as string", `{"grace_logins":"5"}`, "validation_failed", "grace_logins"},
		{"threshold challenge = deny", `{"thresholds":{"challenge":60,"deny":60}}`, "validation_failed", "thresholds.challenge"},
		{"threshold challenge > deny", `{"thresholds":{"challenge":80,"deny":60}}`, "validation_failed", "thresholds.challenge"},
		{"threshold challenge negative", `{"thresholds":{"challenge":-1}}`, "validation_failed", "thresholds.challenge"},
		{"threshold deny 102", `{"thresholds":{"deny":102}}`, "validation_failed", "thresholds.deny"},
		{"threshold as string", `{"thresholds":{"deny":"never"}}`, "validation_failed", "thresholds.deny"},
		{"thresholds ok", `{"thresholds":{"challenge":40,"deny":90}}`, "", ""},
		{"thresholds back to default", `{"thresholds":{"challenge":50,"deny":101}}`, "", ""},
		{"remember negative", `{"remember_device_days":-1}`, "validation_failed", "remember_device_days"},
		{"remember 0", `{"remember_device_days":0}`, "", ""},
		{"channels unknown", `{"allowed_channels":["sms","voice"]}`, "validation_failed", "allowed_channels"},
		{"channels repeated", `{"allowed_channels":["sms","totp","sms"]}`, "validation_failed", "allowed_channels"},
		{"channels empty", `{"allowed_channels":[]}`, "validation_failed", "allowed_channels"},
		{"channels ok", `{"allowed_channels":["totp","sms"]}`, "", ""},
		{"sms country lower case", `{"sms_countries":["au"]}`, "validation_failed", "sms_countries"},
		{"sms country alpha-3", `{"sms_countries":["AUS"]}`, "validation_failed", "sms_countries"},
		{"sms countries ok", `{"sms_countries":["AU","NZ"]}`, "", ""},
		{"blocked country", `{"blocked_countries":["ru"]}`, "validation_failed", "blocked_countries"},
		{"blocked countries ok", `{"blocked_countries":["KP"]}`, "", ""},
		{"trusted network", `{"trusted_networks":["198.51.100.0/33"]}`, "validation_failed", "trusted_networks"},
		{"trusted host name", `{"trusted_networks":["office.example.com"]}`, "validation_failed", "trusted_networks"},
		{"trusted ok", `{"trusted_networks":["198.51.100.0/24","192.0.2.1","2001:db8::/48"]}`, "", ""},
		{"blocked network", `{"blocked_networks":["300.1.2.0/24"]}`, "validation_failed", "blocked_networks"},
		{"blocked networks ok", `{"blocked_networks":["203.0.113.0/25"]}`, "", ""},
		{"manager email", `{"manager_emails":["it-team"]}`, "validation_failed", "manager_emails"},
		{"manager emails ok", `{"manager_emails":["it@example.test"]}`, "", ""},
		{"cold start", `{"cold_start":"deny"}`, "validation_failed", "cold_start"},
		{"cold start ok", `{"cold_start":"allow"}`, "", ""},
		{"group name", `{"groups":{"Night Staff":{}}}`, "validation_failed", "groups"},
		{"group mode", `{"groups":{"staff":{"mode":"bad"}}}`, "validation_failed", "groups.staff.mode"},
		{"group channels", `{"groups":{"staff":{"allowed_channels":["pigeon"]}}}`, "validation_failed", "groups.staff.allowed_channels"},
		{"group grace", `{"groups":{"staff":{"grace_logins":500}}}`, "validation_failed", "groups.staff.grace_logins"},
		{"group thresholds", `{"groups":{"staff":{"thresholds":{"challenge":99,"deny":20}}}}`, "validation_failed", "groups.staff.thresholds.challenge"},
		{"group countries", `{"groups":{"patients":{"sms_countries":["gb"]}}}`, "validation_failed", "groups.patients.sms_countries"},
		{"groups ok", `{"groups":{"staff":{"mode":"required"},"patients":{"allowed_channels":["sms","email"]}}}`, "", ""},
		{"unknown field", `{"colour":"red"}`, "unknown_field", "colour"},
		{"unknown threshold", `{"thresholds":{"warn":30}}`, "unknown_field", ""},
		{"internal field", `{"required_since":"x"}`, "unknown_field", "required_since"},
		{"not JSON", `{"mode":`, "bad_json", ""},
		{"empty body", ``, "bad_json", ""},
	}
	for _, tc := range cases {
		before := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil)
		r := env.Do(t, "PUT", "/v1/admin/policy", tn.Mgr, tc.body)
		if tc.code == "" {
			if r.Status != 200 {
				t.Errorf("%s: %s refused: %d %s", tc.name, tc.body, r.Status, r.Raw)
			}
			continue
		}
		t.Run(tc.name, func(t *testing.T) { polErr(t, r, 400, tc.code, tc.field) })
		after := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil)
		if b, a := fmt.Sprint(before), fmt.Sprint(after); b != a {
			t.Errorf("%s: a refused PUT changed the policy:\n%s\n%s", tc.name, b, a)
		}
	}
	// A group override with an unknown field is refused, naming the group.
	r := env.Do(t, "PUT", "/v1/admin/policy", tn.Mgr, `{"groups":{"staff":{"colour":"red"}}}`)
	if f, _ := polObj(r.Body, "error")["field"].(string); r.Status != 400 || !strings.HasPrefix(f, "groups.staff") {
		t.Errorf("unknown field in a group: %d %s", r.Status, r.Raw)
	}
}

// TestPolicyMerge: fields present replace the current ones, the others
// stay; groups, when present, replace every group. Policy changes are
// mailed to the manager e-mails and audited.
func TestPolicyMerge(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	p := polPut(t, env, tn, map[string]any{"mode": "required", "grace_logins": 3, "manager_emails": []string{"it@example.test"},
		"groups": map[string]any{"staff": map[string]any{"challenge": "every_login"}, "patients": map[string]any{"mode": "optional"}}})
	if p["mode"] != "required" || p["grace_logins"] != 3.0 || len(polObj(p, "effective_groups")) != 2 {
		t.Fatalf("after first PUT: %v", p)
	}
	p = polPut(t, env, tn, map[string]any{"grace_logins": 4})
	eg := polObj(p, "effective_groups")
	if p["mode"] != "required" || p["grace_logins"] != 4.0 || len(polObj(p, "groups")) != 2 ||
		polObj(eg, "staff")["grace_logins"] != 4.0 || polObj(eg, "staff")["challenge"] != "every_login" ||
		polObj(eg, "patients")["mode"] != "optional" || polObj(eg, "staff")["mode"] != "required" {
		t.Errorf("after partial PUT: %v", p)
	}
	p = polPut(t, env, tn, map[string]any{"groups": map[string]any{"night": map[string]any{"mode": "off"}}})
	if g := polObj(p, "groups"); len(g) != 1 || g["night"] == nil || len(polObj(p, "effective_groups")) != 1 {
		t.Errorf("groups not replaced: %v", p["groups"])
	}
	if got := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil); fmt.Sprint(got) != fmt.Sprint(p) {
		t.Errorf("GET %v\nPUT answered %v", got, p)
	}
	// The GET answer sent back is accepted as is.
	raw, _ := json.Marshal(p)
	polPut(t, env, tn, string(raw))

	polMail(t, env, "it@example.test", "policy")
	evs := env.Must(t, 200, "GET", "/v1/admin/events?type=policy_changed", tn.Mgr, nil)
	if n := len(evs["events"].([]any)); n != 3 {
		t.Errorf("%d policy_changed events, want 3: %v", n, evs)
	}
}

// TestPolicyModeOff: with 2FA off every login is allowed, risk is still
// reported and the history still learns; enrolled users are told by mail.
func TestPolicyModeOff(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	for _, u := range []string{"alice", "carl"} {
		env.Must(t, 200, "PUT", "/v1/users/"+u, tn.App, map[string]any{"email": u + "@example.test"})
	}
	polEnrollSMS(t, env, tn, "alice", polPhone(1))
	polEnrollSMS(t, env, tn, "carl", polPhone(2))
	polMail(t, env, "alice@example.test", "text message")

	polPut(t, env, tn, map[string]any{"mode": "off"})
	polMail(t, env, "alice@example.test", "switched off")

	login := polLogin{User: "alice", IP: polIPGB, Device: "phone", UA: polUAPhone}
	for i := 0; i < 3; i++ {
		ev := polEval(t, env, tn, login)
		if ev["decision"] != "allow" || ev["challenge"] != nil || polObj(ev, "risk")["level"] == nil || polObj(ev, "risk")["score"] == nil {
			t.Errorf("login %d in mode off: %v", i, ev)
		}
		if i == 0 && !slices.Contains(polSignals(ev), "no_history") {
			t.Errorf("first login's risk not reported: %v", ev)
		}
		if polObj(ev, "enrollment")["suggested"] == true || polObj(ev, "enrollment")["required"] == true {
			t.Errorf("mode off suggests or requires enrolment: %v", ev)
		}
	}
	// An unenrolled user is allowed without a banner.
	if ev := polEval(t, env, tn, polLogin{User: "nobody", IP: polIPUS, Device: "x"}); ev["decision"] != "allow" || polObj(ev, "enrollment")["suggested"] == true {
		t.Errorf("unenrolled user in mode off: %v", ev)
	}

	polPut(t, env, tn, map[string]any{"mode": "optional"})
	ev := polEval(t, env, tn, login)
	if ev["decision"] != "allow" || polScore(ev) >= 50 {
		t.Errorf("after mode off the learned context is not familiar: %v", ev)
	}
	// carl, never seen, is challenged: the difference is what alice's
	// logins taught while 2FA was off.
	if ev := polEval(t, env, tn, polLogin{User: "carl", IP: polIPGB, Device: "phone", UA: polUAPhone}); ev["decision"] != "challenge" {
		t.Errorf("control user without history: %v", ev)
	}
}

// TestPolicyModeOptional: unenrolled users get the banner; enrolled users
// are challenged on risk only.
func TestPolicyModeOptional(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	ev := polEval(t, env, tn, polLogin{User: "bob", IP: polIPAU, Device: "laptop"})
	en := polObj(ev, "enrollment")
	if ev["decision"] != "allow" || en["suggested"] != true || en["required"] != false || polGrace(en) != -1 {
		t.Errorf("unenrolled user: %v", ev)
	}
	phone := polPhone(3)
	polEnrollSMS(t, env, tn, "dora", phone)
	home := polLogin{User: "dora", IP: polIPAU, Device: "laptop"}
	seen := len(env.Twilio.Messages())
	polPassChallenge(t, env, tn, polEval(t, env, tn, home), phone, seen, false) // cold start
	ev = polEval(t, env, tn, home)
	if ev["decision"] != "allow" || polObj(ev, "enrollment")["suggested"] != false {
		t.Errorf("enrolled user, familiar context: %v", ev)
	}
	ev = polEval(t, env, tn, polLogin{User: "dora", IP: polIPGB, Device: "phone", UA: polUAPhone})
	if ev["decision"] != "challenge" || !slices.Contains(polSignals(ev), "new_country") {
		t.Errorf("enrolled user, new country and device: %v", ev)
	}
	// Users may turn 2FA off in optional mode.
	env.Must(t, 201, "POST", "/v1/users/dora/2fa/disable", tn.App, nil)
}

// TestPolicyModeRequired: grace logins count down, then enrolment is
// required; a new required period starts a fresh count.
func TestPolicyModeRequired(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"mode": "required", "grace_logins": 3})
	env.Must(t, 200, "PUT", "/v1/users/carol", tn.App, map[string]any{"email": "carol@example.test"})
	u := env.Must(t, 200, "GET", "/v1/users/carol", tn.App, nil)
	if u["mode"] != "required" || polGrace(u) != 3 {
		t.Errorf("before any login: %v", u)
	}
	login := polLogin{User: "carol", IP: polIPAU, Device: "laptop"}
	for _, want := range []float64{2, 1, 0} {
		ev := polEval(t, env, tn, login)
		en := polObj(ev, "enrollment")
		if ev["decision"] != "allow" || en["required"] != true || polGrace(en) != want {
			t.Errorf("grace login, want %v left: %v", want, ev)
		}
		if u := env.Must(t, 200, "GET", "/v1/users/carol", tn.App, nil); polGrace(u) != want {
			t.Errorf("GET user shows grace_logins_left %v, want %v", u["grace_logins_left"], want)
		}
	}
	for i := 0; i < 2; i++ {
		ev := polEval(t, env, tn, login)
		en := polObj(ev, "enrollment")
		if ev["decision"] != "enroll" || en["required"] != true || polGrace(en) != 0 || ev["challenge"] != nil {
			t.Errorf("after the grace logins: %v", ev)
		}
	}

	// Back to optional, then required again: a fresh count.
	polPut(t, env, tn, map[string]any{"mode": "optional"})
	ev := polEval(t, env, tn, login)
	if en := polObj(ev, "enrollment"); ev["decision"] != "allow" || en["required"] != false || en["suggested"] != true {
		t.Errorf("optional again: %v", ev)
	}
	polPut(t, env, tn, map[string]any{"mode": "required"})
	if u := env.Must(t, 200, "GET", "/v1/users/carol", tn.App, nil); polGrace(u) != 3 {
		t.Errorf("new required period: GET user shows %v grace logins, want 3", u["grace_logins_left"])
	}
	if ev := polEval(t, env, tn, login); ev["decision"] != "allow" || polGrace(polObj(ev, "enrollment")) != 2 {
		t.Errorf("first login of the new required period: %v", ev)
	}
	// Changing another field keeps the period.
	polPut(t, env, tn, map[string]any{"mode": "required", "cold_start": "allow"})
	if ev := polEval(t, env, tn, login); polGrace(polObj(ev, "enrollment")) != 1 {
		t.Errorf("a policy edit within required restarted the count: %v", ev)
	}
	// Raising grace_logins gives more, not a fresh count.
	polPut(t, env, tn, map[string]any{"grace_logins": 5})
	if ev := polEval(t, env, tn, login); polGrace(polObj(ev, "enrollment")) != 2 {
		t.Errorf("grace_logins raised to 5 after 3 used: %v", ev)
	}

	// Enrolling ends the duty.
	polEnrollSMS(t, env, tn, "carol", polPhone(4))
	u = env.Must(t, 200, "GET", "/v1/users/carol", tn.App, nil)
	if u["enrolled"] != true || polGrace(u) != -1 {
		t.Errorf("enrolled user: %v", u)
	}
	if ev := polEval(t, env, tn, login); ev["decision"] == "enroll" {
		t.Errorf("enrolled user asked to enrol: %v", ev)
	}
	// grace_logins 0: straight to enrol.
	polPut(t, env, tn, map[string]any{"grace_logins": 0})
	if ev := polEval(t, env, tn, polLogin{User: "newbie", IP: polIPAU, Device: "d"}); ev["decision"] != "enroll" || polGrace(polObj(ev, "enrollment")) != 0 {
		t.Errorf("grace_logins 0: %v", ev)
	}
}

// TestPolicyRequiredGraceNotRestartedByOtherGroup: a user whose policy
// stayed `required` keeps the grace logins used, whatever another group
// does.
func TestPolicyRequiredGraceNotRestartedByOtherGroup(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"mode": "required", "grace_logins": 2,
		"groups": map[string]any{"patients": map[string]any{"mode": "optional"}}})
	env.Must(t, 200, "PUT", "/v1/users/dave", tn.App, map[string]any{"email": "dave@example.test"})
	login := polLogin{User: "dave", IP: polIPAU, Device: "laptop"}
	polEval(t, env, tn, login)
	polEval(t, env, tn, login)
	if ev := polEval(t, env, tn, login); ev["decision"] != "enroll" {
		t.Fatalf("after 2 grace logins: %v", ev)
	}
	// The patients group becomes required; dave (no group) was required
	// all along.
	polPut(t, env, tn, map[string]any{"groups": map[string]any{"patients": map[string]any{"mode": "required"}}})
	if u := env.Must(t, 200, "GET", "/v1/users/dave", tn.App, nil); polGrace(u) != 0 {
		t.Errorf("dave's grace logins after another group switched to required: %v, want 0", u["grace_logins_left"])
	}
	if ev := polEval(t, env, tn, login); ev["decision"] != "enroll" {
		t.Errorf("dave, required all along, got fresh grace logins when the patients group switched to required: %v", ev)
	}
}

// TestPolicyRequiredForbidsDisable: under `required` a user cannot turn
// 2FA off, not even with a disable challenge started before the switch.
func TestPolicyRequiredForbidsDisable(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	phone := polPhone(5)
	polEnrollSMS(t, env, tn, "erin", phone)
	seen := len(env.Twilio.Messages())
	st := env.Must(t, 201, "POST", "/v1/users/erin/2fa/disable", tn.App, nil)
	code := env.SMSCode(t, phone, seen)

	polPut(t, env, tn, map[string]any{"mode": "required"})
	r := env.Do(t, "POST", "/v1/challenges/"+polObj(st, "challenge")["id"].(string)+"/verify", tn.App, map[string]any{"code": code})
	polErr(t, r, 403, "policy_requires_2fa", "")
	polErr(t, env.Do(t, "POST", "/v1/users/erin/2fa/disable", tn.App, nil), 403, "policy_requires_2fa", "")
	if u := env.Must(t, 200, "GET", "/v1/users/erin", tn.App, nil); u["enrolled"] != true {
		t.Errorf("erin lost 2FA under required: %v", u)
	}
}

// TestPolicyEveryLoginAndRememberedDevices: every_login challenges a
// familiar login; a remembered device skips it within the policy's
// lifetime; lowering remember_device_days shortens existing tokens. The
// user has an authenticator app (no SMS, so no sending limits) and answers
// with backup codes.
func TestPolicyEveryLoginAndRememberedDevices(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"challenge": "every_login"})
	codes := polEnrollTOTP(t, env, tn, "frank")
	home := polLogin{User: "frank", IP: polIPAU, Device: "laptop"}

	res := polVerifyLogin(t, env, tn, polEval(t, env, tn, home), codes[0], true)
	token, _ := res["device_token"].(string)
	if token == "" {
		t.Fatalf("verify with remember_device gave no device_token: %v", res)
	}
	// Familiar (the verified login was learned) and still challenged.
	ev := polEval(t, env, tn, home)
	if ev["decision"] != "challenge" || polObj(ev, "risk")["level"] != "low" {
		t.Errorf("every_login, familiar context: %v", ev)
	}
	// The remembered device skips it.
	withToken := home
	withToken.Token = token
	ev = polEval(t, env, tn, withToken)
	if ev["decision"] != "allow" || !slices.Contains(polSignals(ev), "remembered_device") {
		t.Errorf("remembered device: %v", ev)
	}
	// Only on its own device.
	other := withToken
	other.Device = "someone-elses-laptop"
	if ev := polEval(t, env, tn, other); ev["decision"] != "challenge" {
		t.Errorf("token on another device: %v", ev)
	}

	// Lowered to 1 day: the minutes-old token still works, and the
	// device's advertised expiry follows the shorter lifetime.
	polPut(t, env, tn, map[string]any{"remember_device_days": 1})
	if ev := polEval(t, env, tn, withToken); ev["decision"] != "allow" {
		t.Errorf("token after lowering to 1 day: %v", ev)
	}
	devs := env.Must(t, 200, "GET", "/v1/users/frank/devices", tn.App, nil)["devices"].([]any)
	if len(devs) != 1 {
		t.Fatalf("devices: %v", devs)
	}
	d := devs[0].(map[string]any)
	first, err1 := time.Parse(time.RFC3339, d["first_seen"].(string))
	exp, err2 := time.Parse(time.RFC3339, d["expires_at"].(string))
	if err1 != nil || err2 != nil || exp.After(first.Add(24*time.Hour+time.Second)) {
		t.Errorf("after remember_device_days 1 the device shows first_seen %v, expires_at %v: the token is honoured only until first_seen + 1 day", d["first_seen"], d["expires_at"])
	}

	// Lowered to 0: no device is remembered any more.
	polPut(t, env, tn, map[string]any{"remember_device_days": 0})
	if ev := polEval(t, env, tn, withToken); ev["decision"] != "challenge" || slices.Contains(polSignals(ev), "remembered_device") {
		t.Errorf("token with remember_device_days 0: %v", ev)
	}
	res = polVerifyLogin(t, env, tn, polEval(t, env, tn, home), codes[1], true)
	if _, ok := res["device_token"]; ok {
		t.Errorf("remember_device_days 0 and still a device_token: %v", res)
	}
	if u := env.Must(t, 200, "GET", "/v1/users/frank", tn.App, nil); u["remembered_devices"] != 0.0 {
		t.Errorf("remember_device_days 0: GET user counts %v remembered devices that are not honoured", u["remembered_devices"])
	}
}

// TestPolicyGroups: staff (required, every login, TOTP only) and patients
// (optional, SMS or e-mail) live side by side.
func TestPolicyGroups(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "clinic")
	polPut(t, env, tn, map[string]any{"groups": map[string]any{
		"staff":    map[string]any{"mode": "required", "challenge": "every_login", "allowed_channels": []string{"totp"}},
		"patients": map[string]any{"mode": "optional", "allowed_channels": []string{"sms", "email"}},
	}})
	p := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil)
	eg := polObj(p, "effective_groups")
	staff, patients := polObj(eg, "staff"), polObj(eg, "patients")
	if staff["mode"] != "required" || staff["challenge"] != "every_login" || fmt.Sprint(staff["allowed_channels"]) != "[totp]" ||
		staff["grace_logins"] != 5.0 || staff["remember_device_days"] != 30.0 {
		t.Errorf("effective staff policy: %v", staff)
	}
	if patients["mode"] != "optional" || patients["challenge"] != "risk_based" || fmt.Sprint(patients["allowed_channels"]) != "[sms email]" {
		t.Errorf("effective patients policy: %v", patients)
	}
	if p["mode"] != "optional" {
		t.Errorf("base mode changed: %v", p["mode"])
	}

	u := env.Must(t, 200, "PUT", "/v1/users/gina", tn.App, map[string]any{"group": "staff", "email": "gina@example.test"})
	if u["group"] != "staff" || u["mode"] != "required" {
		t.Errorf("staff user: %v", u)
	}
	env.Must(t, 200, "PUT", "/v1/users/hank", tn.App, map[string]any{"group": "patients", "email": "hank@example.test"})
	polErr(t, env.Do(t, "PUT", "/v1/users/ivan", tn.App, map[string]any{"group": "nurses"}), 422, "unknown_group", "group")

	// Unenrolled: the staff member counts grace logins, the patient does not.
	gina := polLogin{User: "gina", IP: polIPAU, Device: "clinic-pc"}
	ev := polEval(t, env, tn, gina)
	if en := polObj(ev, "enrollment"); ev["decision"] != "allow" || en["required"] != true || polGrace(en) != 4 {
		t.Errorf("unenrolled staff: %v", ev)
	}
	hank := polLogin{User: "hank", IP: polIPAU, Device: "hank-phone", UA: polUAPhone}
	ev = polEval(t, env, tn, hank)
	if en := polObj(ev, "enrollment"); ev["decision"] != "allow" || en["required"] != false || en["suggested"] != true || polGrace(en) != -1 {
		t.Errorf("unenrolled patient: %v", ev)
	}

	// Channels per group.
	polErr(t, env.Do(t, "POST", "/v1/users/gina/sms", tn.App, map[string]any{"phone": polPhone(7)}), 422, "channel_not_allowed", "")
	polErr(t, env.Do(t, "POST", "/v1/users/gina/email-factor", tn.App, nil), 422, "channel_not_allowed", "")
	polErr(t, env.Do(t, "POST", "/v1/users/hank/totp", tn.App, nil), 422, "channel_not_allowed", "")
	codes := polEnrollTOTP(t, env, tn, "gina")
	polEnrollSMS(t, env, tn, "hank", polPhone(8))

	// Staff: every login is challenged, on the authenticator app, even
	// the familiar one.
	ev = polEval(t, env, tn, gina)
	if ev["decision"] != "challenge" || polObj(ev, "challenge")["channel"] != "totp" {
		t.Errorf("enrolled staff, familiar context: %v", ev)
	} else {
		id := polObj(ev, "challenge")["id"].(string)
		env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": codes[0]})
	}
	// Patient: risk-based, the familiar context passes.
	if ev := polEval(t, env, tn, hank); ev["decision"] != "allow" {
		t.Errorf("enrolled patient, familiar context: %v", ev)
	}
	// Staff may not turn 2FA off; patients may.
	polErr(t, env.Do(t, "POST", "/v1/users/gina/2fa/disable", tn.App, nil), 403, "policy_requires_2fa", "")
	env.Must(t, 201, "POST", "/v1/users/hank/2fa/disable", tn.App, nil)

	// Leaving the group gives the base policy back.
	u = env.Must(t, 200, "PUT", "/v1/users/gina", tn.App, map[string]any{"group": ""})
	if u["mode"] != "optional" || u["group"] != nil {
		t.Errorf("gina without a group: %v", u)
	}
	// Removing a group from the policy: its members follow the base.
	polPut(t, env, tn, map[string]any{"groups": map[string]any{"staff": map[string]any{"mode": "required"}}})
	if u := env.Must(t, 200, "GET", "/v1/users/hank", tn.App, nil); u["mode"] != "optional" {
		t.Errorf("member of a removed group: %v", u)
	}
	env.Must(t, 201, "POST", "/v1/users/hank/totp", tn.App, nil)
}

// TestPolicyChannelsAndCountries: allowed_channels and sms_countries gate
// enrolment.
func TestPolicyChannelsAndCountries(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	env.Must(t, 200, "PUT", "/v1/users/jo", tn.App, map[string]any{"email": "jo@example.test"})

	polPut(t, env, tn, map[string]any{"allowed_channels": []string{"totp"}})
	polErr(t, env.Do(t, "POST", "/v1/users/jo/sms", tn.App, map[string]any{"phone": polPhone(9)}), 422, "channel_not_allowed", "")
	polErr(t, env.Do(t, "POST", "/v1/users/jo/email-factor", tn.App, nil), 422, "channel_not_allowed", "")
	env.Must(t, 201, "POST", "/v1/users/jo/totp", tn.App, nil)

	polPut(t, env, tn, map[string]any{"allowed_channels": []string{"sms", "totp", "email"}, "sms_countries": []string{"AU"}})
	r := env.Do(t, "POST", "/v1/users/kim/sms", tn.App, map[string]any{"phone": polPhoneUK})
	polErr(t, r, 422, "phone_country_not_allowed", "")
	env.Must(t, 201, "POST", "/v1/users/kim/sms", tn.App, map[string]any{"phone": "+61491570156"})

	// The same UK number is fine where GB is allowed: it is the country
	// rule, not the number, that refuses it.
	polPut(t, env, tn, map[string]any{"sms_countries": []string{"AU", "GB"}})
	env.Must(t, 201, "POST", "/v1/users/lee/sms", tn.App, map[string]any{"phone": polPhoneUK})

	// A phone change to a country outside the list is refused too.
	polEnrollSMS(t, env, tn, "max", polPhone(10))
	polPut(t, env, tn, map[string]any{"sms_countries": []string{"AU"}})
	polErr(t, env.Do(t, "POST", "/v1/users/max/phone-change", tn.App, map[string]any{"new_phone": polPhoneUK}), 422, "phone_country_not_allowed", "")
}

// TestPolicyNetworksAndThresholds: trusted networks force allow, blocked
// networks and countries force deny (remembered device or not), and the
// deny threshold denies on score.
func TestPolicyNetworksAndThresholds(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	phone := polPhone(11)
	env.Must(t, 200, "PUT", "/v1/users/ivy", tn.App, map[string]any{"email": "ivy@example.test"})
	polEnrollSMS(t, env, tn, "ivy", phone)
	home := polLogin{User: "ivy", IP: polIPAU, Device: "laptop"}
	seen := len(env.Twilio.Messages())
	res := polPassChallenge(t, env, tn, polEval(t, env, tn, home), phone, seen, true)
	token, _ := res["device_token"].(string)
	away := polLogin{User: "ivy", IP: polIPGB, Device: "phone", UA: polUAPhone}
	if ev := polEval(t, env, tn, away); ev["decision"] != "challenge" {
		t.Fatalf("new country and device: %v", ev)
	}

	// Trusted: allowed with the signal, even a new context, even with
	// every_login.
	polPut(t, env, tn, map[string]any{"trusted_networks": []string{"198.51.100.0/24"}, "challenge": "every_login"})
	ev := polEval(t, env, tn, away)
	if ev["decision"] != "allow" || !slices.Contains(polSignals(ev), "trusted_network") {
		t.Errorf("trusted network: %v", ev)
	}
	polPut(t, env, tn, map[string]any{"challenge": "risk_based"})

	// Blocked network: denied, even from the familiar place with a
	// remembered device.
	polPut(t, env, tn, map[string]any{"blocked_networks": []string{"192.0.2.0/24"}})
	withToken := home
	withToken.Token = token
	ev = polEval(t, env, tn, withToken)
	if ev["decision"] != "deny" || !slices.Contains(polSignals(ev), "blocked_network") || ev["challenge"] != nil {
		t.Errorf("blocked network: %v", ev)
	}
	// Blocked beats trusted.
	polPut(t, env, tn, map[string]any{"blocked_networks": []string{"198.51.100.7"}})
	if ev := polEval(t, env, tn, away); ev["decision"] != "deny" {
		t.Errorf("network both trusted and blocked: %v", ev)
	}
	polPut(t, env, tn, map[string]any{"blocked_networks": []string{}, "trusted_networks": []string{}})

	// Blocked country: denied for enrolled and unenrolled users alike.
	polPut(t, env, tn, map[string]any{"blocked_countries": []string{"US"}})
	ev = polEval(t, env, tn, polLogin{User: "ivy", IP: polIPUS, Device: "laptop"})
	if d, ok := polSignalDetail(ev, "blocked_country"); ev["decision"] != "deny" || !ok || d != "US" {
		t.Errorf("blocked country: %v", ev)
	}
	if ev := polEval(t, env, tn, polLogin{User: "walk-in", IP: polIPUS, Device: "kiosk"}); ev["decision"] != "deny" {
		t.Errorf("blocked country, unenrolled user: %v", ev)
	}
	if ev := polEval(t, env, tn, withToken); ev["decision"] != "allow" {
		t.Errorf("remembered device from an unblocked country: %v", ev)
	}
	evs := env.Must(t, 200, "GET", "/v1/admin/events?type=login_denied&user_id=ivy", tn.Mgr, nil)["events"].([]any)
	if len(evs) < 2 {
		t.Errorf("login_denied events for ivy: %v", evs)
	}
	polMail(t, env, "ivy@example.test", "sign-in to your account was blocked")
	polPut(t, env, tn, map[string]any{"blocked_countries": []string{}})

	// The deny threshold: a new country and device (challenged at the
	// default thresholds) is denied once deny is at its score.
	tablet := polLogin{User: "ivy", IP: polIPDE, Device: "tablet", UA: polUAPhone}
	first := polEval(t, env, tn, tablet)
	score := polScore(first)
	if first["decision"] != "challenge" || score < 2 {
		t.Fatalf("new device and country at default thresholds: %v", first)
	}
	polPut(t, env, tn, map[string]any{"thresholds": map[string]any{"challenge": 1, "deny": score}})
	ev = polEval(t, env, tn, tablet)
	if ev["decision"] != "deny" || polObj(ev, "risk")["level"] != "high" {
		t.Errorf("score %v with deny threshold %v: %v", polScore(ev), score, ev)
	}
}

// TestPolicyColdStart: an enrolled user without history is challenged by
// default and allowed with cold_start allow.
func TestPolicyColdStart(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polEnrollSMS(t, env, tn, "nia", polPhone(12))
	polEnrollSMS(t, env, tn, "ola", polPhone(13))
	if ev := polEval(t, env, tn, polLogin{User: "nia", IP: polIPAU, Device: "d"}); ev["decision"] != "challenge" ||
		!slices.Contains(polSignals(ev), "no_history") {
		t.Errorf("cold start, default: %v", ev)
	}
	polPut(t, env, tn, map[string]any{"cold_start": "allow"})
	if ev := polEval(t, env, tn, polLogin{User: "ola", IP: polIPAU, Device: "d"}); ev["decision"] != "allow" {
		t.Errorf("cold start allow: %v", ev)
	}
}

// TestPolicyTrustedNetworkEnrollment: a trusted network decides the risk,
// not the user's enrolment duty, which the answer still reports.
func TestPolicyTrustedNetworkEnrollment(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"trusted_networks": []string{"192.0.2.0/24"}})
	office := polLogin{User: "otto", IP: polIPAU, Device: "office-pc"}
	ev := polEval(t, env, tn, office)
	if ev["decision"] != "allow" || !slices.Contains(polSignals(ev), "trusted_network") {
		t.Fatalf("trusted network: %v", ev)
	}
	// Spec §3: suggested is true for a user without 2FA in optional mode.
	if polObj(ev, "enrollment")["suggested"] != true {
		t.Errorf("optional mode, unenrolled user on a trusted network: enrollment %v, want suggested true", polObj(ev, "enrollment"))
	}
	polPut(t, env, tn, map[string]any{"mode": "required", "grace_logins": 1})
	ev = polEval(t, env, tn, office)
	if ev["decision"] != "allow" || polObj(ev, "enrollment")["required"] != true {
		t.Errorf("required mode, unenrolled user on a trusted network: %v, want enrollment.required true", ev)
	}
}

// TestPolicySMSKillSwitch: sms_disabled stops SMS enrolment with 503.
func TestPolicySMSKillSwitch(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"sms_disabled": true})
	polErr(t, env.Do(t, "POST", "/v1/users/pia/sms", tn.App, map[string]any{"phone": polPhone(70)}), 503, "sms_disabled", "")
	polPut(t, env, tn, map[string]any{"sms_disabled": false})
	env.Must(t, 201, "POST", "/v1/users/pia/sms", tn.App, map[string]any{"phone": polPhone(70)})
}

// polPutAsync PUTs a policy from any goroutine (apptest's Do may call
// t.Fatal, which only the test's goroutine may) and returns "" or what
// went wrong.
func polPutAsync(env *apptest.Env, tn polTenant, body any) string {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("PUT", env.URL+"/v1/admin/policy", bytes.NewReader(b))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+tn.Mgr)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Sprintf("%s: %d %s", b, res.StatusCode, raw)
	}
	return ""
}

// TestPolicyConcurrentPuts: merge semantics hold under concurrency — two
// managers changing different fields at the same time both get their
// change (no lost update).
func TestPolicyConcurrentPuts(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	for round := 0; round < 10; round++ {
		grace, days := 10+round, 40+round
		bodies := []map[string]any{
			{"grace_logins": grace},
			{"remember_device_days": days},
			{"sms_countries": []string{"AU", fmt.Sprintf("A%c", 'A'+round)}},
			{"blocked_countries": []string{fmt.Sprintf("B%c", 'A'+round)}},
			{"manager_emails": []string{fmt.Sprintf("m%d@example.test", round)}},
			{"trusted_networks": []string{fmt.Sprintf("10.%d.0.0/16", round)}},
			{"blocked_networks": []string{fmt.Sprintf("172.16.%d.0/24", round)}},
			{"thresholds": map[string]any{"challenge": 30 + round}},
		}
		done := make(chan string, len(bodies))
		for _, b := range bodies {
			go func() { done <- polPutAsync(env, tn, b) }()
		}
		for range bodies {
			if err := <-done; err != "" {
				t.Fatalf("concurrent PUT: %s", err)
			}
		}
		p := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil)
		var lost []string
		check := func(name string, ok bool) {
			if !ok {
				lost = append(lost, name)
			}
		}
		check("grace_logins", p["grace_logins"] == float64(grace))
		check("remember_device_days", p["remember_device_days"] == float64(days))
		check("sms_countries", fmt.Sprint(p["sms_countries"]) == fmt.Sprintf("[AU A%c]", 'A'+round))
		check("blocked_countries", fmt.Sprint(p["blocked_countries"]) == fmt.Sprintf("[B%c]", 'A'+round))
		check("manager_emails", fmt.Sprint(p["manager_emails"]) == fmt.Sprintf("[m%d@example.test]", round))
		check("trusted_networks", fmt.Sprint(p["trusted_networks"]) == fmt.Sprintf("[10.%d.0.0/16]", round))
		check("blocked_networks", fmt.Sprint(p["blocked_networks"]) == fmt.Sprintf("[172.16.%d.0/24]", round))
		check("thresholds.challenge", polObj(p, "thresholds")["challenge"] == float64(30+round))
		if len(lost) > 0 {
			t.Fatalf("round %d: 8 concurrent PUTs of different fields, these changes were lost: %v\npolicy: %v", round, lost, p)
		}
	}
}
