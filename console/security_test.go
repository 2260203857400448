package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// Every page without a session sends the browser to the sign-in page, and
// every answer carries the security headers.
func TestPagesNeedASession(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	for _, path := range []string{"/console/overview", "/console/policy", "/console/users?user=alice", "/console/audit", "/console/audit/rows?after=2026-01-01T00:00:00Z", "/console/operations"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || p.location != "/console/signin" {
			t.Errorf("GET %s: %d %q, want a redirect to sign in", path, p.status, p.location)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
			if got := p.header.Get(h); got != want {
				t.Errorf("GET %s: %s %q", path, h, got)
			}
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	for _, path := range []string{"/console/policy", "/console/users/reset", "/console/users/disable-all", "/console/operations/sms", "/console/signout"} {
		if p := b.post(path, url.Values{"csrf": {"x"}}); p.status != http.StatusSeeOther || p.location != "/console/signin" {
			t.Errorf("POST %s: %d %q", path, p.status, p.location)
		}
	}
}

// Only manager keys sign in; the answer says why.
func TestSignIn(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		key    func(*env) string
		status int
		text   string
	}{
		{"manager key", func(e *env) string { return e.mgrKey }, http.StatusSeeOther, ""},
		{"app key", func(e *env) string { return e.appKey }, http.StatusForbidden, "Only a manager key can sign in here"},
		{"operator key", func(*env) string { return apptest.OperatorKey }, http.StatusForbidden, "Only a manager key can sign in here"},
		{"wrong key", func(*env) string { return "su_manager_nope" }, http.StatusUnauthorized, "not valid"},
		{"no key", func(*env) string { return "" }, http.StatusUnauthorized, "Enter your manager key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := e.browser(t).signIn(tc.key(e))
			if p.status != tc.status || !strings.Contains(p.body, tc.text) {
				t.Fatalf("status %d, want %d with %q: %s", p.status, tc.status, tc.text, p.body)
			}
			if tc.status != http.StatusSeeOther {
				return
			}
			var ck string
			for _, v := range p.header.Values("Set-Cookie") {
				if strings.HasPrefix(v, "stepup_console=") {
					ck = v
				}
			}
			for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/console"} {
				if !strings.Contains(ck, attr) {
					t.Errorf("session cookie %q lacks %s", ck, attr)
				}
			}
			if strings.Contains(ck, "Secure") {
				t.Errorf("session cookie %q is Secure on plain HTTP without an https public URL", ck)
			}
			if strings.Contains(e.Logs.String(), e.mgrKey) {
				t.Error("the manager key reached the log")
			}
		})
	}
}

// Behind TLS (an https public URL) the session cookie is Secure.
func TestSecureCookie(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.PublicURL = "https://stepup.example.test" })
	p := e.browser(t).signIn(e.mgrKey)
	if !strings.Contains(strings.Join(p.header.Values("Set-Cookie"), "\n"), "Secure") {
		t.Fatalf("cookies %q are not Secure", p.header.Values("Set-Cookie"))
	}
}

// Failed sign-ins are throttled per address like the API's key checks.
func TestSignInThrottled(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Limits.AuthFailuresPerIPMinute = 3 })
	b := e.browser(t)
	var last page
	for range 5 {
		last = b.signIn("su_manager_guess")
	}
	if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "Too many failed sign-ins") {
		t.Fatalf("after 5 wrong keys: %d", last.status)
	}
	if p := b.signIn(e.mgrKey); p.status != http.StatusTooManyRequests {
		t.Fatalf("a throttled address signed in: %d", p.status)
	}
}

// A change needs the session's CSRF token and a same-origin request.
func TestFormsNeedCSRF(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	tok := b.mustSignIn(e.mgrKey)
	reset := func(form url.Values, hdr map[string]string) page {
		return b.do("POST", "/console/users/reset", form, hdr)
	}
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "user": {"alice"}, "reason": {"lost phone"}}
	}
	same := map[string]string{"Origin": b.url}
	cases := []struct {
		name   string
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"no token", url.Values{"user": {"alice"}, "reason": {"x"}}, same, http.StatusForbidden},
		{"forged token", form(strings.Repeat("A", len(tok))), same, http.StatusForbidden},
		{"another site", form(tok), map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", form(tok), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"right token", form(tok), same, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := reset(tc.form, tc.hdr)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d", p.status, tc.status)
			}
		})
	}
	// Only the last one reset the user.
	evs := e.Must(t, 200, "GET", "/v1/admin/events?type=admin_reset", e.mgrKey, nil)["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("%d resets audited, want 1", len(evs))
	}
	ev := evs[0].(map[string]any)
	if ev["actor"] != "manager" || ev["actor_label"] != "mgr" {
		t.Fatalf("reset audited as %v (%v), want the manager key's label", ev["actor"], ev["actor_label"])
	}
}

// Sessions end when idle, at their absolute expiry, on sign-out, and
// when their key is revoked.
func TestSessionEnds(t *testing.T) {
	cases := []struct {
		name string
		end  func(t *testing.T, e *env, b *browser, tok string)
	}{
		{"idle", func(_ *testing.T, e *env, _ *browser, _ string) { e.clock.Add(31 * time.Minute) }},
		{"absolute", func(_ *testing.T, e *env, b *browser, _ string) {
			for range 12 * 3 {
				e.clock.Add(20 * time.Minute)
				b.get("/console/overview")
			}
		}},
		{"signed out", func(t *testing.T, _ *env, b *browser, tok string) {
			if p := b.post("/console/signout", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther || p.location != "/console/signin" {
				t.Fatalf("sign out: %d %q", p.status, p.location)
			}
		}},
		{"key revoked", func(t *testing.T, e *env, _ *browser, _ string) {
			keys := e.Must(t, 200, "GET", "/v1/tenants/"+e.tenant+"/keys", apptest.OperatorKey, nil)["keys"].([]any)
			for _, k := range keys {
				if k := k.(map[string]any); k["kind"] == "manager" {
					e.Must(t, 204, "DELETE", "/v1/tenants/"+e.tenant+"/keys/"+k["id"].(string), apptest.OperatorKey, nil)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			b := e.browser(t)
			tok := b.mustSignIn(e.mgrKey)
			tc.end(t, e, b, tok)
			if p := b.get("/console/policy"); p.status != http.StatusSeeOther || p.location != "/console/signin" {
				t.Fatalf("after the session ended: %d %q", p.status, p.location)
			}
		})
	}
}

// A manager sees only the own tenant's users and events.
func TestForeignTenant(t *testing.T) {
	e := newEnv(t, nil)
	_, otherApp, _ := e.Tenant(t, "Other")
	e.Must(t, 200, "PUT", "/v1/users/bob", otherApp, map[string]any{"email": "bob@example.test"})
	b := e.browser(t)
	tok := b.mustSignIn(e.mgrKey)
	if p := b.get("/console/users?user=bob"); p.status != http.StatusNotFound {
		t.Fatalf("another tenant's user: %d", p.status)
	}
	// The tenant comes from the session, never from the form.
	p := b.post("/console/users/reset", url.Values{"csrf": {tok}, "user": {"bob"}, "reason": {"x"}, "tenant": {"tn_other"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("reset of another tenant's user: %d", p.status)
	}
}

// TestSignInAndOutAudited: a manager's sign-in to and sign-out of the
// console are audit events with the key's label and the client's
// address, so a stolen manager key in use shows in the log; a refused
// sign-in is none.
func TestSignInAndOutAudited(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	if p := b.signIn("su_manager_not-a-real-key"); p.status != http.StatusUnauthorized {
		t.Fatalf("a wrong key: %d", p.status)
	}
	tok := b.mustSignIn(e.mgrKey)
	if p := b.post("/console/signout", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	for _, typ := range []string{"console_signed_in", "console_signed_out"} {
		got := e.Must(t, 200, "GET", "/v1/admin/events?type="+typ, e.mgrKey, nil)
		evs, _ := got["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("%s: %d events, want 1: %v", typ, len(evs), got)
		}
		ev := evs[0].(map[string]any)
		if ev["actor"] != "manager" || ev["actor_label"] == "" || ev["ip"] == nil {
			t.Errorf("%s: %v, want the manager key's label and the client's address", typ, ev)
		}
	}
}

// A bad lookup or filter is answered 400 with its error in words (the
// engine's limit, not another), never a bare page that only says nothing
// matched.
func TestBadQueriesShownInWords(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	b.mustSignIn(e.mgrKey)
	long := strings.Repeat("x", 200)
	cases := []struct{ path, want string }{
		{"/console/users?user=" + long, "A user ID is 1-128 printable characters."},
		{"/console/audit?user=" + long, "A user ID is 1-128 printable characters."},
		{"/console/audit?since=yesterday", "a date and time, e.g. 2026-01-02T15:04"},
		{"/console/audit?cursor=bogus", "malformed cursor"},
	}
	for _, tc := range cases {
		p := b.get(tc.path)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, tc.want) {
			t.Errorf("GET %s: %d, want 400 saying %q", tc.path, p.status, tc.want)
		}
	}
}

// Every form that changes something refuses a request without the
// session's token or from another site, and changes nothing: the policy,
// a reset, turning 2FA off for everyone, the SMS switch and signing out.
func TestEveryFormNeedsCSRF(t *testing.T) {
	e := newEnv(t, nil)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.mgrKey, map[string]any{"mode": "required"})
	b := e.browser(t)
	tok := b.mustSignIn(e.mgrKey)
	forms := map[string]url.Values{
		"/console/policy":            {"mode": {"off"}, "grace_logins": {"1"}, "thresholds.challenge": {"1"}, "thresholds.deny": {"2"}, "remember_device_days": {"0"}, "sms_per_hour": {"0"}, "allowed_channels": {"email"}},
		"/console/users/reset":       {"user": {"alice"}, "reason": {"x"}},
		"/console/users/disable-all": {"reason": {"x"}},
		"/console/operations/sms":    {"sms": {"off"}},
		"/console/signout":           {},
	}
	for path, form := range forms {
		for name, attack := range map[string]struct {
			csrf string
			hdr  map[string]string
		}{
			"no token":     {"", map[string]string{"Origin": b.url}},
			"forged token": {strings.Repeat("A", len(tok)), map[string]string{"Origin": b.url}},
			"another site": {tok, map[string]string{"Origin": "https://evil.example"}},
			"cross-site":   {tok, map[string]string{"Sec-Fetch-Site": "cross-site"}},
			"same-site":    {tok, map[string]string{"Sec-Fetch-Site": "same-site"}},
			"null origin":  {tok, map[string]string{"Origin": "null"}},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if attack.csrf != "" {
				f.Set("csrf", attack.csrf)
			}
			if p := b.do("POST", path, f, attack.hdr); p.status != http.StatusForbidden {
				t.Errorf("POST %s with %s: %d, want 403", path, name, p.status)
			}
		}
	}
	if pol := e.Must(t, 200, "GET", "/v1/admin/policy", e.mgrKey, nil); pol["mode"] != "required" || pol["sms_disabled"] != false {
		t.Errorf("the policy changed: mode %v, sms_disabled %v", pol["mode"], pol["sms_disabled"])
	}
	if evs := e.Must(t, 200, "GET", "/v1/admin/events?type=admin_reset", e.mgrKey, nil)["events"].([]any); len(evs) != 0 {
		t.Errorf("%d resets audited", len(evs))
	}
	if p := b.get("/console/overview"); p.status != http.StatusOK {
		t.Errorf("the session ended: %d", p.status)
	}
}
