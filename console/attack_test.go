package console_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
)

// Text an end user or a host app controls (user id, display name,
// e-mail, user agent, a manager's reason) is shown escaped on every page.
func TestAttackXSS(t *testing.T) {
	e := newEnv(t, nil)
	const evil = `<img src=x onerror=alert(1)>`
	uid := "x" + evil
	e.Must(t, 200, "PUT", "/v1/users/"+url.PathEscape(uid), e.appKey, map[string]any{"display_name": evil, "email": "a@example.test"})
	e.Must(t, 200, "POST", "/v1/logins/evaluate", e.appKey, map[string]any{"user_id": uid, "ip": "192.0.2.10",
		"user_agent": evil, "device_id": evil})
	b := e.browser(t)
	tok := b.mustSignIn(e.mgrKey)
	pages := []page{
		b.get("/console/users?user=" + url.QueryEscape(uid)),
		b.post("/console/users/reset", url.Values{"csrf": {tok}, "user": {uid}, "reason": {evil}}),
		b.post("/console/users/disable-all", url.Values{"csrf": {tok}, "group": {evil}, "reason": {evil}}),
		b.post("/console/policy", url.Values{"csrf": {tok}, "mode": {evil}, "return_urls": {evil}, "logo_url": {evil}, "accent_color": {evil}, "groups": {evil}}),
		b.get("/console/audit"),
		b.get("/console/audit?user=" + url.QueryEscape(uid)),
		b.get("/console/audit/rows?after=2000-01-01T00:00:00Z"),
		b.get("/console/users?user=" + url.QueryEscape(evil+"nobody")),
	}
	for i, p := range pages {
		if strings.Contains(p.body, "<img") {
			t.Errorf("page %d (%d) shows raw HTML: %s", i, p.status, p.body)
		}
	}
}

// Signing in again ends the session the browser held before.
func TestAttackSignInAgainEndsOldSession(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	b.mustSignIn(e.mgrKey)
	u, _ := url.Parse(e.URL + "/console/")
	var old string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "stepup_console" {
			old = c.Value
		}
	}
	b.mustSignIn(e.mgrKey)
	thief := e.browser(t)
	thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "stepup_console", Value: old, Path: "/console"}})
	if p := thief.get("/console/policy"); p.status != http.StatusSeeOther {
		t.Fatalf("the session before the new sign-in still works: %d", p.status)
	}
}

// Nothing secret reaches the log: not a key typed at sign-in (right or
// wrong), not the session id, not the CSRF token.
func TestAttackNoSecretsLogged(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	wrong := "su_manager_TYPO" + strings.Repeat("q", 30)
	b.signIn(wrong)
	b.signIn(e.appKey)
	tok := b.mustSignIn(e.mgrKey)
	b.post("/console/users/reset", url.Values{"csrf": {tok}, "user": {"alice"}, "reason": {"lost phone"}})
	b.post("/console/policy", url.Values{"csrf": {tok}, "mode": {"bogus"}})
	b.post("/console/operations/sms", url.Values{"csrf": {tok}, "sms": {"off"}})
	b.get("/console/audit?since=bad")
	u, _ := url.Parse(e.URL + "/console/")
	secrets := map[string]string{"wrong key": wrong, "app key": e.appKey, "manager key": e.mgrKey, "csrf": tok}
	for _, c := range b.c.Jar.Cookies(u) {
		secrets[c.Name] = c.Value
	}
	b.post("/console/signout", url.Values{"csrf": {tok}})
	logs := e.Logs.String()
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the %s reached the log", name)
		}
	}
	evs := e.Must(t, 200, "GET", "/v1/admin/events", e.mgrKey, nil)["events"].([]any)
	kinds := map[string]bool{}
	for _, ev := range evs {
		ev := ev.(map[string]any)
		if ev["actor"] == "manager" {
			kinds[ev["type"].(string)] = true
			if ev["actor_label"] != "mgr" {
				t.Errorf("%v audited with label %v", ev["type"], ev["actor_label"])
			}
		}
	}
	if !kinds["admin_reset"] || !kinds["policy_changed"] {
		t.Errorf("manager actions audited: %v", kinds)
	}
}

// The audit log's live tail polls on its own; an unattended console left
// on it must still end after 30 minutes idle, not live on for 12 hours.
func TestAttackLiveTailDoesNotKeepSessionAlive(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	b.mustSignIn(e.mgrKey)
	if p := b.get("/console/audit"); p.status != http.StatusOK {
		t.Fatalf("audit: %d", p.status)
	}
	rows := "/console/audit/rows?after=" + url.QueryEscape(e.clock.Now().UTC().Format(time.RFC3339Nano))
	for range 5 {
		e.clock.Add(5 * time.Minute)
		if p := b.get(rows); p.status != http.StatusOK {
			t.Fatalf("a poll within the idle time: %d", p.status)
		}
	}
	e.clock.Add(6 * time.Minute)
	if p := b.get(rows); p.status != http.StatusSeeOther {
		t.Fatalf("31 minutes of polling only, still signed in: %d", p.status)
	}
	if p := b.get("/console/policy"); p.status != http.StatusSeeOther || p.location != "/console/signin" {
		t.Fatalf("after the idle time: %d %q", p.status, p.location)
	}
}

// Behind a proxy that terminates TLS (an https public URL), the console
// still tells browsers to use only https: without HSTS a network attacker
// can strip TLS from the first visit and read the manager key typed in.
func TestAttackHSTSBehindTLSProxy(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.PublicURL = "https://stepup.example.test" })
	p := e.browser(t).get("/console/signin")
	if got := p.header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Fatalf("Strict-Transport-Security %q", got)
	}
}

// Events past the first page stay reachable: otherwise whoever holds a
// manager key hides an action from the console by making 50 more.
func TestAttackAuditOlderEventsReachable(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 55 {
		e.Must(t, 200, "PUT", "/v1/admin/policy", e.mgrKey, map[string]any{"sms_disabled": i%2 == 0})
		e.clock.Add(time.Second)
	}
	b := e.browser(t)
	b.mustSignIn(e.mgrKey)
	first := b.get("/console/audit")
	m := regexp.MustCompile(`<a href="(/console/audit\?[^"]*)">Older events</a>`).FindStringSubmatch(first.body)
	if m == nil {
		t.Fatalf("no link to older events (status %d)", first.status)
	}
	older := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	at := regexp.MustCompile(`data-at="([^"]+)"`)
	top1, top2 := at.FindStringSubmatch(first.body), at.FindStringSubmatch(older.body)
	if older.status != http.StatusOK || top2 == nil || top1[1] == top2[1] {
		t.Fatalf("the older events' link %q shows the first page again (status %d)", m[1], older.status)
	}
}

// A policy page opened before a change made elsewhere (another manager,
// stepupctl, the operations page's SMS kill switch in an incident) must
// not silently undo that change when saved: the form sends every field,
// so a stale one would turn SMS back on. The save is refused in words and
// the page shows the policy as it now is.
func TestAttackStalePolicyFormDoesNotUndo(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	b.mustSignIn(e.mgrKey)
	p := b.get("/console/policy")
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`).FindAllStringSubmatch(p.body, -1) {
		form.Add(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)".*?<option value="([^"]*)" selected`).FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], m[2])
	}
	form["allowed_channels"] = []string{"sms", "totp", "email"}
	form.Set("groups", "{}")
	// Meanwhile, another manager pulls the SMS kill switch.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.mgrKey, map[string]any{"sms_disabled": true, "trusted_networks": []string{"10.0.0.0/8"}})
	form.Set("grace_logins", "2")
	got := b.post("/console/policy", form)
	pol := e.Must(t, 200, "GET", "/v1/admin/policy", e.mgrKey, nil)
	if pol["sms_disabled"] != true || fmt.Sprint(pol["trusted_networks"]) != "[10.0.0.0/8]" {
		t.Fatalf("a stale policy form (%d) undid a change made since: sms_disabled %v, trusted_networks %v", got.status, pol["sms_disabled"], pol["trusted_networks"])
	}
	if got.status != http.StatusConflict || !strings.Contains(got.body, "changed since you opened this page") || !strings.Contains(got.body, "10.0.0.0/8") {
		t.Fatalf("the refused save: %d, want 409 saying so and showing the current policy: %s", got.status, got.body)
	}
	// Saved again from the page as it now is, it goes through.
	fresh := regexp.MustCompile(`name="version" value="([^"]+)"`).FindStringSubmatch(got.body)
	if fresh == nil {
		t.Fatal("no version in the page")
	}
	form.Set("version", fresh[1])
	form.Set("sms_disabled", "on")
	form.Set("trusted_networks", "10.0.0.0/8")
	form.Set("groups", `{"staff": {"mode": "required", "trusted_networks": ["192.0.2.0/24"]}}`)
	// Saved, and saved again from the page the save answers.
	for i := range 2 {
		p := b.post("/console/policy", form)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Policy saved") {
			t.Fatalf("save %d from a fresh page: %d", i, p.status)
		}
		form.Set("version", regexp.MustCompile(`name="version" value="([^"]+)"`).FindStringSubmatch(p.body)[1])
	}
}

// Signing out ends the session on the server: a copy of its cookie (taken
// from the manager's machine, a proxy log) no longer works, though the
// browser that signed out forgot it anyway.
func TestAttackSignOutEndsCopiedCookie(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser(t)
	tok := b.mustSignIn(e.mgrKey)
	u, _ := url.Parse(e.URL + "/console/")
	thief := e.browser(t)
	thief.c.Jar.SetCookies(u, b.c.Jar.Cookies(u))
	if p := thief.get("/console/policy"); p.status != http.StatusOK {
		t.Fatalf("the copied cookie before sign-out: %d", p.status)
	}
	if p := b.post("/console/signout", url.Values{"csrf": {tok}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	if p := thief.get("/console/policy"); p.status != http.StatusSeeOther || p.location != "/console/signin" {
		t.Fatalf("the copied cookie after sign-out: %d %q", p.status, p.location)
	}
}
