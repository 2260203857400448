package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/client"
	"github.com/stepup-auth/stepup/internal/apptest"
)

const (
	phone   = "+61491570156"
	phone2  = "+61491570157"
	loginIP = "203.0.113.7"
	chrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

// server is a running stepupd with one tenant.
type server struct {
	t      *testing.T
	env    *apptest.Env
	tenant string
	appKey string
	mgrKey string
	app    *client.Client // the host app's side of a scenario
}

func newServer(t *testing.T) *server {
	t.Helper()
	env := apptest.New(t, apptest.Options{})
	id, appKey, mgrKey := env.Tenant(t, "acme")
	return &server{t: t, env: env, tenant: id, appKey: appKey, mgrKey: mgrKey, app: client.New(env.URL, appKey)}
}

// result is one run of stepupctl.
type result struct {
	out, err string
	code     int
}

// ctl runs stepupctl with key against s.
func (s *server) ctl(key string, args ...string) result {
	s.t.Helper()
	return runCtl(s.t, nil, append([]string{"--url", s.env.URL, "--key", key}, args...)...)
}

func (s *server) mgr(args ...string) result { s.t.Helper(); return s.ctl(s.mgrKey, args...) }
func (s *server) op(args ...string) result  { s.t.Helper(); return s.ctl(apptest.OperatorKey, args...) }

func runCtl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, env, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// ok fails the test unless r succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	return r
}

// field returns the value of a "name   value" line of a kv table.
func field(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `  +(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", name, out)
	}
	return strings.TrimSpace(m[1])
}

// enrolSMS registers user and enrols phone by SMS, as the host app would.
func (s *server) enrolSMS(user, to string) {
	t := s.t
	t.Helper()
	ctx := t.Context()
	if _, err := s.app.PutUser(ctx, user, client.UserUpdate{Email: client.Ptr(user + "@example.test")}); err != nil {
		t.Fatal(err)
	}
	seen := len(s.env.Twilio.Messages())
	st, err := s.app.StartSMS(ctx, user, to, client.Actor{IP: loginIP, UserAgent: chrome})
	if err != nil {
		t.Fatal(err)
	}
	code := s.env.SMSCode(t, to, seen)
	if _, err := s.app.Verify(ctx, st.Challenge.ID, client.VerifyRequest{Code: code}); err != nil {
		t.Fatal(err)
	}
}

func TestHelpAndUsage(t *testing.T) {
	// None of these reaches a server.
	for _, cm := range commands() {
		r := runCtl(t, nil, append(strings.Fields(cm.path), "--help")...)
		if r.code != 0 || !strings.HasPrefix(r.out, "Usage: stepupctl "+cm.path) || r.err != "" {
			t.Errorf("%s --help: exit %d\n%s%s", cm.path, r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "--url URL") {
			t.Errorf("%s --help does not mention the global flags", cm.path)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"users", "--help"}, {"help", "keys"}, {"help", "users", "reset"}} {
		r := runCtl(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.out, "Usage: stepupctl") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.out, r.err)
		}
	}
	r := runCtl(t, nil, "help", "users", "reset")
	if !strings.Contains(r.out, "--reason text") {
		t.Errorf("help users reset:\n%s", r.out)
	}

	env := []string{"STEPUP_KEY=k", "STEPUP_URL=http://127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"users"}, "no users command given"},
		{[]string{"users", "frob"}, `unknown command "frob"`},
		{[]string{"--bogus", "tenants", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"tenants", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"tenants", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"users", "show"}, "missing argument: want <user-id>"},
		{[]string{"users", "show", "a", "b"}, "too many arguments"},
		{[]string{"users", "show", ""}, "empty argument"},
		{[]string{"users", "reset", "bob"}, "--reason is required"},
		{[]string{"users", "reset", "bob", "--reason", "  "}, "--reason is required"},
		{[]string{"users", "disable-all"}, "--reason is required"},
		{[]string{"keys", "create", "tn_1"}, "--kind is required"},
		{[]string{"keys", "create", "tn_1", "--kind", "operator"}, `--kind "operator": want app or manager`},
		{[]string{"keys", "revoke", "tn_1"}, "missing argument: want <tenant-id> <key-id>"},
		{[]string{"events", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{[]string{"events", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"events", "--since", "-5m"}, `--since "-5m"`},
		{[]string{"events", "-f", "--cursor", "x"}, "takes no --cursor"},
		{[]string{"policy", "set"}, "nothing to change"},
		{[]string{"policy", "set", "--grace-logins", "many"}, `invalid value "many" for flag -grace-logins`},
		{[]string{"-o", "yaml", "policy", "get"}, `-o "yaml": want table or json`},
		{[]string{"policy", "get", "--url", "ftp://x"}, `--url "ftp://x"`},
	} {
		r := runCtl(t, env, tc.args...)
		if r.code != 2 || !strings.Contains(r.err, tc.want) || r.out != "" {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, r.code, r.err, tc.want)
		}
		if !strings.Contains(r.err, "--help' for usage.") {
			t.Errorf("%q: stderr does not point at --help:\n%s", tc.args, r.err)
		}
	}
	// No key at all.
	r = runCtl(t, nil, "policy", "get")
	if r.code != 2 || !strings.Contains(r.err, "no API key: pass --key or set STEPUP_KEY") {
		t.Errorf("no key: exit %d, %s", r.code, r.err)
	}
	// Nobody listening: a runtime error.
	r = runCtl(t, env, "policy", "get")
	if r.code != 1 || !strings.HasPrefix(r.err, "stepupctl: cannot reach http://127.0.0.1:1: ") {
		t.Errorf("unreachable: exit %d, %s", r.code, r.err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-02T15:04:05Z":      time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"2026-01-02T15:04:05+02:00": time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC),
		"24h":                       now.Add(-24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0s", "-1h", "d", "2026-01-02", "soon"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q): no error", in)
		}
	}
}

func TestBadKeys(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		key  string
		args []string
		want string
	}{
		{"su_manager_nope", []string{"policy", "get"}, "stepupctl: unauthenticated: missing or unknown API key (HTTP 401)\nhint: check --key"},
		{s.appKey, []string{"policy", "get"}, "stepupctl: forbidden: this key may not do that (HTTP 403)\nhint: tenants and keys need the operator key"},
		{s.mgrKey, []string{"tenants", "list"}, "stepupctl: forbidden: this key may not do that (HTTP 403)"},
		{apptest.OperatorKey, []string{"users", "show", "bob"}, "stepupctl: forbidden: this key may not do that (HTTP 403)"},
		{s.mgrKey, []string{"users", "show", "bob"}, "stepupctl: user_not_found: no such user (HTTP 404)"},
		{apptest.OperatorKey, []string{"keys", "list", "tn_nope"}, "stepupctl: tenant_not_found: no such tenant (HTTP 404)"},
		{s.mgrKey, []string{"policy", "set", "--mode", "sometimes"}, "stepupctl: validation_failed: mode: must be off, optional or required (HTTP 400)"},
		{s.mgrKey, []string{"users", "disable-all", "--reason", "x", "--group", "nope"}, "stepupctl: unknown_group: the policy has no group of that name (HTTP 422)"},
	} {
		r := s.ctl(tc.key, tc.args...)
		if r.code != 1 || !strings.HasPrefix(r.err, tc.want) || r.out != "" {
			t.Errorf("%q: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and %q", tc.args, r.code, r.out, r.err, tc.want)
		}
	}
}

func TestEnvironment(t *testing.T) {
	s := newServer(t)
	// STEPUP_URL and STEPUP_KEY stand in for the flags, and the flags win.
	r := runCtl(t, []string{"STEPUP_URL=" + s.env.URL, "STEPUP_KEY=" + s.mgrKey}, "policy", "get").ok(t)
	if field(t, r.out, "mode") != "optional" {
		t.Errorf("policy get:\n%s", r.out)
	}
	r = runCtl(t, []string{"STEPUP_URL=http://127.0.0.1:1", "STEPUP_KEY=wrong"}, "policy", "get", "--url", s.env.URL, "--key", s.mgrKey).ok(t)
	if field(t, r.out, "grace_logins") != "5" {
		t.Errorf("policy get:\n%s", r.out)
	}
}

func TestOperatorCommands(t *testing.T) {
	s := newServer(t)

	r := s.op("tenants", "create", "globex", "--sender-name", "Globex Corp").ok(t)
	id := field(t, r.out, "id")
	if !strings.HasPrefix(id, "tn_") || field(t, r.out, "name") != "globex" || field(t, r.out, "sender_name") != "Globex Corp" {
		t.Fatalf("tenants create:\n%s", r.out)
	}
	if !strings.Contains(r.err, "stepupctl keys create "+id+" --kind manager") {
		t.Errorf("tenants create: no next step on stderr: %q", r.err)
	}
	r = s.op("-o", "json", "tenants", "create", "initech").ok(t)
	var tn client.Tenant
	if err := json.Unmarshal([]byte(r.out), &tn); err != nil || tn.Name != "initech" || tn.SenderName != "initech" {
		t.Fatalf("tenants create -o json: %v\n%s", err, r.out)
	}

	r = s.op("tenants", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if !regexp.MustCompile(`^ID +NAME +SENDER NAME +CREATED$`).MatchString(lines[0]) || len(lines) != 4 {
		t.Fatalf("tenants list:\n%s", r.out)
	}
	if !regexp.MustCompile(`(?m)^` + id + ` +globex +Globex Corp +\d{4}-\d\d-\d\dT`).MatchString(r.out) {
		t.Errorf("tenants list lacks globex:\n%s", r.out)
	}
	r = s.op("tenants", "list", "-o", "json").ok(t)
	var list struct{ Tenants []client.Tenant }
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list.Tenants) != 3 {
		t.Fatalf("tenants list -o json: %v\n%s", err, r.out)
	}

	r = s.op("keys", "create", id, "--kind", "manager", "--label", "ops team").ok(t)
	keyID, secret := field(t, r.out, "id"), field(t, r.out, "secret")
	if !strings.HasPrefix(secret, "su_manager_") || field(t, r.out, "label") != "ops team" || field(t, r.out, "kind") != "manager" {
		t.Fatalf("keys create:\n%s", r.out)
	}
	if !strings.Contains(r.err, "not shown again") {
		t.Errorf("keys create: no warning on stderr: %q", r.err)
	}
	s.ctl(secret, "policy", "get").ok(t)
	r = s.op("keys", "create", id, "--kind=app", "-o", "json").ok(t)
	var nk client.NewKey
	if err := json.Unmarshal([]byte(r.out), &nk); err != nil || nk.Kind != "app" || nk.Secret == "" {
		t.Fatalf("keys create -o json: %v\n%s", err, r.out)
	}

	r = s.op("keys", "list", id).ok(t)
	if !regexp.MustCompile(`(?m)^ID +KIND +LABEL +CREATED\n`).MatchString(r.out) ||
		!regexp.MustCompile(`(?m)^`+keyID+` +manager +ops team +\d{4}-`).MatchString(r.out) ||
		!regexp.MustCompile(`(?m)^`+nk.ID+` +app +- +\d{4}-`).MatchString(r.out) || strings.Contains(r.out, secret) {
		t.Fatalf("keys list:\n%s", r.out)
	}

	r = s.op("keys", "revoke", id, keyID).ok(t)
	if r.out != "Revoked key "+keyID+" of tenant "+id+".\n" {
		t.Errorf("keys revoke: %q", r.out)
	}
	r = s.ctl(secret, "policy", "get")
	if r.code != 1 || !strings.Contains(r.err, "unauthenticated") {
		t.Errorf("revoked key: exit %d %s", r.code, r.err)
	}
	r = s.op("keys", "revoke", id, keyID)
	if r.code != 1 || !strings.HasPrefix(r.err, "stepupctl: key_not_found: no such key (HTTP 404)") {
		t.Errorf("revoke twice: exit %d %s", r.code, r.err)
	}
	r = s.op("-o", "json", "keys", "revoke", id, nk.ID).ok(t)
	if r.out != "" {
		t.Errorf("keys revoke -o json printed %q for a 204", r.out)
	}
}

func TestPolicyCommands(t *testing.T) {
	s := newServer(t)
	mgr := client.New(s.env.URL, s.mgrKey)

	r := s.mgr("policy", "get").ok(t)
	for name, want := range map[string]string{"mode": "optional", "challenge": "risk_based", "grace_logins": "5",
		"allowed_channels": "totp, sms, email, passkey", "sms_countries": "all", "groups": "none", "sms_disabled": "no",
		"enforcement": "enforce"} {
		if got := field(t, r.out, name); got != want {
			t.Errorf("policy get: %s = %q, want %q", name, got, want)
		}
	}

	r = s.mgr("policy", "set", "--mode", "required", "--grace-logins", "3", "--challenge", "every_login",
		"--remember-device-days", "14", "--allowed-channels", "TOTP,sms", "--manager-emails", "a@b.example,c@d.example",
		"--sms-countries", "au,GB", "--thresholds-challenge", "50", "--thresholds-deny", "90",
		"--blocked-countries", "KP", "--trusted-networks", "10.0.0.0/8,192.0.2.1", "--blocked-networks", "198.51.100.0/24",
		"--cold-start", "allow", "--enforcement", "monitor").ok(t)
	for name, want := range map[string]string{"mode": "required", "grace_logins": "3", "challenge": "every_login",
		"remember_device_days": "14", "allowed_channels": "totp, sms", "manager_emails": "a@b.example, c@d.example",
		"sms_countries": "AU, GB", "thresholds.challenge": "50", "thresholds.deny": "90", "blocked_countries": "KP",
		"trusted_networks": "10.0.0.0/8, 192.0.2.1", "blocked_networks": "198.51.100.0/24", "cold_start": "allow",
		"enforcement": "monitor"} {
		if got := field(t, r.out, name); got != want {
			t.Errorf("policy set: %s = %q, want %q", name, got, want)
		}
	}

	// Merge: one flag changes one field; "" clears a list; one threshold alone.
	s.mgr("policy", "set", "--grace-logins", "0", "--sms-countries", "", "--thresholds-challenge", "40").ok(t)
	v, err := mgr.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != "required" || v.Enforcement != client.EnforcementMonitor || v.GraceLogins != 0 || len(v.SMSCountries) != 0 || v.Thresholds != (client.Thresholds{Challenge: 40, Deny: 90}) ||
		!slices.Equal(v.ManagerEmails, []string{"a@b.example", "c@d.example"}) {
		t.Fatalf("after merge: %+v", v)
	}

	// A YAML file with groups; flags win over the file.
	dir := t.TempDir()
	yml := filepath.Join(dir, "policy.yaml")
	write(t, yml, `# acme's policy
mode: off
grace_logins: 2
thresholds: {challenge: 30}
allowed_channels: [sms, totp]
groups:
  staff:
    mode: required
    allowed_channels: [totp]
  patients: {mode: optional, grace_logins: 10}
`)
	r = s.mgr("policy", "set", "-f", yml, "--grace-logins", "4", "--thresholds-deny", "80").ok(t)
	if field(t, r.out, "mode") != "off" || field(t, r.out, "grace_logins") != "4" || field(t, r.out, "allowed_channels") != "sms, totp" ||
		field(t, r.out, "thresholds.challenge") != "30" || field(t, r.out, "thresholds.deny") != "80" {
		t.Errorf("policy set -f:\n%s", r.out)
	}
	if !regexp.MustCompile(`(?m)^GROUP +MODE +ENFORCEMENT +OVERRIDES\npatients +optional +monitor +\{"mode":"optional","grace_logins":10\}\nstaff +required +monitor +\{"mode":"required","allowed_channels":\["totp"\]\}$`).MatchString(r.out) {
		t.Errorf("policy set -f: groups table:\n%s", r.out)
	}

	// A JSON file replaces the groups; -o json prints the API's answer.
	js := filepath.Join(dir, "policy.json")
	write(t, js, `{"mode": "optional", "groups": {"contractors": {"challenge": "every_login"}}}`)
	r = s.mgr("-o", "json", "policy", "set", "--file", js).ok(t)
	var view map[string]any
	if err := json.Unmarshal([]byte(r.out), &view); err != nil {
		t.Fatalf("policy set -o json: %v\n%s", err, r.out)
	}
	groups, _ := view["groups"].(map[string]any)
	eff, _ := view["effective_groups"].(map[string]any)
	if view["mode"] != "optional" || len(groups) != 1 || groups["contractors"] == nil || eff["contractors"] == nil {
		t.Errorf("policy set -o json:\n%s", r.out)
	}
	r = s.mgr("policy", "get", "-o", "json").ok(t)
	if !strings.Contains(r.out, `"effective_groups": {`) || !strings.HasPrefix(r.out, "{\n  \"mode\": \"optional\"") {
		t.Errorf("policy get -o json:\n%s", r.out)
	}

	// Bad files.
	for content, want := range map[string]string{
		"colour: blue\n":     `stepupctl: unknown_field: unknown field "colour" (HTTP 400)`,
		"- mode: off\n":      "want a mapping of policy fields",
		"mode: [unclosed\n":  "not valid YAML or JSON",
		"mode: off\n---\n{}": "more than one YAML document",
		"\n":                 "the file is empty",
	} {
		f := filepath.Join(dir, "bad.yaml")
		write(t, f, content)
		r := s.mgr("policy", "set", "-f", f)
		if r.code != 1 || !strings.Contains(r.err, want) {
			t.Errorf("policy set -f with %q: exit %d, %s; want %q", content, r.code, r.err, want)
		}
	}
	r = s.mgr("policy", "set", "-f", filepath.Join(dir, "missing.yaml"))
	if r.code != 1 || !strings.Contains(r.err, "no such file") {
		t.Errorf("missing file: exit %d, %s", r.code, r.err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestManagerScenario is the account manager's day: require 2FA with three
// grace logins, watch a user's logins count down to enrolment, reset a
// user who lost their phone, and read each action in the audit log.
func TestManagerScenario(t *testing.T) {
	s := newServer(t)
	ctx := t.Context()

	r := s.mgr("policy", "set", "--mode", "required", "--grace-logins", "3", "--manager-emails", "it@acme.example").ok(t)
	if field(t, r.out, "mode") != "required" || field(t, r.out, "grace_logins") != "3" {
		t.Fatalf("policy set:\n%s", r.out)
	}

	if _, err := s.app.PutUser(ctx, "bob", client.UserUpdate{Email: client.Ptr("bob@example.test"), DisplayName: client.Ptr("Bob")}); err != nil {
		t.Fatal(err)
	}
	r = s.mgr("users", "show", "bob").ok(t)
	if field(t, r.out, "grace_logins_left") != "3" || field(t, r.out, "enrolled") != "no" || field(t, r.out, "mode") != "required" ||
		field(t, r.out, "email") != "bob@example.test" {
		t.Fatalf("users show before any login:\n%s", r.out)
	}
	for left := 2; left >= 0; left-- {
		ev, err := s.app.Evaluate(ctx, client.EvaluateRequest{UserID: "bob", IP: loginIP, UserAgent: chrome, DeviceID: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Decision != client.DecisionAllow || !ev.Enrollment.Required || ev.Enrollment.GraceLoginsLeft == nil || *ev.Enrollment.GraceLoginsLeft != left {
			t.Fatalf("login with %d grace logins left: %+v", left, ev)
		}
		r = s.mgr("users", "show", "bob").ok(t)
		if got := field(t, r.out, "grace_logins_left"); got != strconv.Itoa(left) {
			t.Fatalf("users show after a login: grace_logins_left = %s, want %d", got, left)
		}
	}
	ev, err := s.app.Evaluate(ctx, client.EvaluateRequest{UserID: "bob", IP: loginIP, UserAgent: chrome, DeviceID: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Decision != client.DecisionEnroll {
		t.Fatalf("login without grace: %+v, want enroll", ev)
	}

	s.enrolSMS("bob", phone)
	r = s.mgr("users", "show", "bob").ok(t)
	if field(t, r.out, "enrolled") != "yes" || !strings.HasPrefix(field(t, r.out, "factors"), "sms ") || field(t, r.out, "grace_logins_left") != "-" {
		t.Fatalf("users show after enrolling:\n%s", r.out)
	}

	// Bob lost his phone.
	r = s.mgr("users", "reset", "bob", "--reason", "lost phone, identity checked by a call").ok(t)
	if !strings.HasPrefix(r.out, "Reset 2FA of bob: factors, backup codes and remembered devices cleared.\n") ||
		field(t, r.out, "enrolled") != "no" || field(t, r.out, "factors") != "none" {
		t.Fatalf("users reset:\n%s", r.out)
	}
	r = s.mgr("-o", "json", "users", "show", "bob").ok(t)
	var u client.User
	if err := json.Unmarshal([]byte(r.out), &u); err != nil || u.Enrolled || u.UserID != "bob" {
		t.Fatalf("users show -o json: %v\n%s", err, r.out)
	}

	// The audit log has each action.
	r = s.mgr("events").ok(t)
	rows := strings.Split(strings.TrimSpace(r.out), "\n")
	if !regexp.MustCompile(`^AT +TYPE +USER +ACTOR +IP +COUNTRY +DETAILS$`).MatchString(rows[0]) || len(rows) != 4 {
		t.Fatalf("events:\n%s", r.out)
	}
	wantRows := []string{
		`^\S+Z +admin_reset +bob +manager +.*reason="lost phone, identity checked by a call"`,
		`^\S+Z +sms_enrolled +bob +user +203\.0\.113\.x +.*phone=`,
		`^\S+Z +policy_changed +- +manager +.*changes='grace_logins: 5 → 3; manager_emails: \[\] → \["it@acme.example"\]; mode: "optional" → "required"'$`,
	}
	for i, re := range wantRows {
		if !regexp.MustCompile(re).MatchString(rows[i+1]) {
			t.Errorf("events row %d = %q, want %s", i+1, rows[i+1], re)
		}
	}
	r = s.mgr("events", "--user", "bob", "--type", "admin_reset", "--since", "1h").ok(t)
	if n := strings.Count(r.out, "\n"); n != 2 || !strings.Contains(r.out, "lost phone") {
		t.Errorf("events --user bob --type admin_reset:\n%s", r.out)
	}
	r = s.mgr("events", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).ok(t)
	if n := strings.Count(r.out, "\n"); n != 1 {
		t.Errorf("events from the future:\n%s", r.out)
	}

	// Paging: --limit, the cursor on stderr, --cursor; -o json is the API's page.
	r = s.mgr("events", "--limit", "2").ok(t)
	m := regexp.MustCompile(`More events match: add --cursor (\S+)`).FindStringSubmatch(r.err)
	if m == nil || strings.Count(r.out, "\n") != 3 {
		t.Fatalf("events --limit 2:\n%s\nstderr: %s", r.out, r.err)
	}
	r = s.mgr("events", "--limit", "2", "--cursor", m[1]).ok(t)
	if strings.Count(r.out, "\n") != 2 || !strings.Contains(r.out, "policy_changed") || r.err != "" {
		t.Errorf("events --cursor:\n%s\nstderr: %s", r.out, r.err)
	}
	r = s.mgr("events", "--limit", "2", "-o", "json").ok(t)
	var page client.EventPage
	if err := json.Unmarshal([]byte(r.out), &page); err != nil || len(page.Events) != 2 || page.NextCursor != m[1] || page.Events[0].Type != "admin_reset" {
		t.Errorf("events -o json: %v\n%s", err, r.out)
	}
}

func TestDisableAll(t *testing.T) {
	s := newServer(t)
	ctx := t.Context()
	s.mgr("policy", "set", "-f", writeTemp(t, "groups: {staff: {mode: required}}\n")).ok(t)
	s.enrolSMS("ann", phone)
	s.enrolSMS("ben", phone2)
	s.enrolSMS("cat", "+61491570158")
	if _, err := s.app.PutUser(ctx, "ann", client.UserUpdate{Group: client.Ptr("staff")}); err != nil {
		t.Fatal(err)
	}

	r := s.mgr("users", "disable-all", "--reason", "staff move to SSO", "--group", "staff").ok(t)
	if r.out != "Reset 2FA of 1 enrolled user of group staff.\n" {
		t.Errorf("disable-all --group: %q", r.out)
	}
	r = s.mgr("users", "disable-all", "--reason", "moving everyone to SSO").ok(t)
	if r.out != "Reset 2FA of 2 enrolled users.\n" {
		t.Errorf("disable-all: %q", r.out)
	}
	r = s.mgr("users", "disable-all", "--reason", "again", "-o", "json").ok(t)
	if strings.TrimSpace(r.out) != "{\n  \"reset\": 0\n}" {
		t.Errorf("disable-all -o json: %q", r.out)
	}
	r = s.mgr("events", "--type", "admin_reset").ok(t)
	if n := strings.Count(r.out, "admin_reset"); n != 3 || !strings.Contains(r.out, "group=staff") {
		t.Errorf("events --type admin_reset:\n%s", r.out)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, f, content)
	return f
}

// syncBuffer is a bytes.Buffer safe to read while run writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond (for output of the command under test) up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsFollow(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			s := newServer(t)
			mgr := client.New(s.env.URL, s.mgrKey)
			s.mgr("policy", "set", "--grace-logins", "1").ok(t) // printed at the start

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out, errb syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"--url", s.env.URL, "--key", s.mgrKey, "-o", format, "events", "-f", "--interval", "50ms"}, nil, &out, &errb)
			}()
			count := func(s string) int { return strings.Count(out.String(), s) }
			waitFor(t, "the first event", func() bool { return count("policy_changed") == 1 })

			// New events appear once each, oldest first, whatever the number
			// of polls in between.
			if _, err := mgr.UpdatePolicy(ctx, client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{GraceLogins: client.Ptr(2)}}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the second event", func() bool { return count("policy_changed") == 2 })
			s.enrolSMS("fay", phone)
			if _, err := mgr.ResetUser(ctx, "fay", "lost phone"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the reset", func() bool { return count("admin_reset") == 1 })
			time.Sleep(300 * time.Millisecond) // several more polls: nothing is printed twice
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("events -f: exit %d, stderr %s", code, errb.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("events -f did not stop when its context ended")
			}
			got := out.String()
			if count("policy_changed") != 2 || count("sms_enrolled") != 1 || count("admin_reset") != 1 || errb.String() != "" {
				t.Fatalf("events -f printed:\n%s\nstderr: %s", got, errb.String())
			}
			var types []string
			lines := strings.Split(strings.TrimSpace(got), "\n")
			if format == "table" {
				if !strings.HasPrefix(lines[0], "AT ") {
					t.Errorf("no header: %q", lines[0])
				}
				for _, l := range lines[1:] {
					types = append(types, strings.Fields(l)[1])
				}
			} else {
				for _, l := range lines {
					var ev client.Event
					if err := json.Unmarshal([]byte(l), &ev); err != nil {
						t.Fatalf("line %q: %v", l, err)
					}
					types = append(types, ev.Type)
				}
			}
			want := []string{"policy_changed", "policy_changed", "sms_enrolled", "admin_reset"}
			if !slices.Equal(types, want) {
				t.Errorf("order = %v, want %v", types, want)
			}
		})
	}
}

// TestEventsFollowStopsOnRevokedKey: a key revoked while following ends
// the command with the API's error.
func TestEventsFollowStopsOnRevokedKey(t *testing.T) {
	s := newServer(t)
	op := client.New(s.env.URL, apptest.OperatorKey)
	k, err := op.CreateKey(t.Context(), s.tenant, client.KeyManager, "temp")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{"--url", s.env.URL, "--key", k.Secret, "events", "-f", "--interval", "50ms"}, nil, &out, &errb)
	}()
	waitFor(t, "the header", func() bool { return strings.HasPrefix(out.String(), "AT ") })
	if err := op.RevokeKey(t.Context(), s.tenant, k.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errb.String(), "unauthenticated") {
			t.Fatalf("exit %d, stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events -f kept following with a revoked key")
	}
}

func TestPolicyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		// YAML 1.1's off/yes stay strings: "mode: off" means off.
		{"a.yaml", "mode: off\ngrace_logins: 3\nsms_disabled: true\nsms_countries: []\n", `{"grace_logins":3,"mode":"off","sms_countries":[],"sms_disabled":true}`},
		{"b.yml", "groups:\n  7: {mode: required}\n", `{"groups":{"7":{"mode":"required"}}}`},
		{"c.json", `{"thresholds": {"challenge": 45.0, "deny": 90}}`, `{"thresholds":{"challenge":45.0,"deny":90}}`},
		{"d", `{"mode": "required"}`, `{"mode":"required"}`}, // JSON is YAML
	} {
		f := filepath.Join(dir, tc.name)
		write(t, f, tc.content)
		got, err := policyFile(f)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	f := filepath.Join(dir, "e.json")
	write(t, f, `{"mode": "off"} {}`)
	if _, err := policyFile(f); err == nil || !strings.Contains(err.Error(), "trailing data") {
		t.Errorf("trailing JSON: %v", err)
	}
}

func TestOverlay(t *testing.T) {
	u := client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{
		GraceLogins: client.Ptr(4), Thresholds: &client.ThresholdsUpdate{Deny: client.Ptr(80)}, SMSCountries: []string{}}}
	for base, want := range map[string]string{
		`{"mode":"off","grace_logins":2,"thresholds":{"challenge":30}}`: `{"grace_logins":4,"mode":"off","sms_countries":[],"thresholds":{"challenge":30,"deny":80}}`,
		`{"groups":{"a":{"grace_logins":1}}}`:                           `{"grace_logins":4,"groups":{"a":{"grace_logins":1}},"sms_countries":[],"thresholds":{"deny":80}}`,
	} {
		got, err := overlay(json.RawMessage(base), u)
		if err != nil || string(got) != want {
			t.Errorf("overlay(%s) = %s, %v; want %s", base, got, err, want)
		}
	}
}
