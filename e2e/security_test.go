package e2e_test

// Regression tests of issue 12 (security hardening), each played as the
// attacker would, through the HTTP API on a real redis-server with the
// Twilio and SMTP test servers.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// secEvilUA is a user agent whose app name, as ua-parser captures it,
// is a phishing sentence with a link.
const secEvilUA = "Click https://evil.example/fix to secure your account/1 CFNetwork/1.0 Darwin/20.0"

// TestSecurityUserAgentTextStaysOutOfMails: a user agent's free text never
// reaches the tenant's genuine mail (text or HTML part) nor the audit
// event; the device is named in neutral words instead.
func TestSecurityUserAgentTextStaysOutOfMails(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	seen := len(e.Twilio.Messages())
	st := e.Must(t, 201, "POST", "/v1/users/alice/sms", e.AppKey, map[string]any{"phone": ntfPhone1, "ip": ntfIP, "user_agent": secEvilUA})
	e.verifySMS(t, ntfStr(ntfObj(st, "challenge"), "id"), ntfPhone1, seen, nil)
	m := e.waitMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	for _, part := range []struct{ name, body string }{{"text", m.Text}, {"HTML", m.HTML}, {"shown HTML", ntfHTMLText(m.HTML)}} {
		for _, bad := range []string{"evil.example", "Click", "https://evil"} {
			if strings.Contains(part.body, bad) {
				t.Errorf("the %s part of the mail quotes the user agent (%q):\n%s", part.name, bad, part.body)
			}
		}
	}
	ntfWantPhrase(t, m, "Unknown browser")
	ev := e.userEvent(t, "alice", "sms_enrolled")
	for _, k := range []string{"browser", "os"} {
		if v := ntfStr(ev, k); strings.Contains(v, "evil") || strings.Contains(v, "Click") || strings.ContainsAny(v, "/:\n") {
			t.Errorf("sms_enrolled event: %s = %q quotes the user agent", k, v)
		}
	}
	if ev["browser"] != "Unknown browser" {
		t.Errorf("sms_enrolled event: browser = %v, want Unknown browser", ev["browser"])
	}
}

// secSpellings returns every text that the lenient base64url decoder reads
// as the same bytes as s: the last character's unused low bits varied.
func secSpellings(t *testing.T, s string) []string {
	t.Helper()
	want, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out []string
	for _, c := range alphabet {
		v := s[:len(s)-1] + string(c)
		if got, err := base64.RawURLEncoding.DecodeString(v); err == nil && string(got) == string(want) {
			out = append(out, v)
		}
	}
	return out
}

// TestSecurityReportLinkSpellingsAreOneLink: once a "this wasn't me" link
// was used, no other spelling of the same token works (the last base64
// character of the MAC has four unused bits: sixteen spellings).
func TestSecurityReportLinkSpellingsAreOneLink(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	link := e.aliceLink(t)
	prefix, token, _ := strings.Cut(link, "/v1/report/")
	body, mac, _ := strings.Cut(token, ".")
	var links []string
	for _, b := range secSpellings(t, body) {
		for _, m := range secSpellings(t, mac) {
			if b+"."+m != token {
				links = append(links, prefix+"/v1/report/"+b+"."+m)
			}
		}
	}
	if len(links) < 15 {
		t.Fatalf("only %d other spellings of %s; the test expects at least the MAC's 15", len(links), token)
	}
	if r := e.report(t, link); r.Status != 200 {
		t.Fatalf("first use of the link: %d %s", r.Status, r.Raw)
	}
	for _, l := range links {
		if r := e.report(t, l); r.Status != 410 || !strings.Contains(string(r.Raw), "report_link_invalid") {
			t.Errorf("another spelling of the used link %s: %d %s, want 410 report_link_invalid", l, r.Status, r.Raw)
		}
	}
	if evs, _ := e.events(t, "?user_id=alice&type=report_received"); len(evs) != 1 {
		t.Errorf("%d report_received events, want 1", len(evs))
	}
}

// TestSecurityReplacedManagersAreTold: a manager key that replaces the
// manager list cannot do so unnoticed by the managers it removes.
func TestSecurityReplacedManagersAreTold(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	old := []string{"boss@example.test", "deputy@example.test"}
	e.setManagers(t, old...)
	subj := "The two-factor policy of acme was changed"
	for _, to := range old {
		e.waitMail(t, to, subj)
	}
	e.queueIdle(t)
	e.SMTP.Clear()

	const intruder = "intruder@evil.example"
	e.setManagers(t, intruder, "Boss@example.test")
	for _, to := range append(old, intruder) {
		m := e.waitMail(t, to, subj)
		ntfWantPhrase(t, m, "manager_emails")
	}
	e.queueIdle(t)
	for _, to := range append(old, intruder) {
		if n := ntfCount(e.SMTP, to, subj); n != 1 {
			t.Errorf("%d policy mails to %s, want 1", n, to)
		}
	}
}

// TestSecuritySMTPFailureHidesTheRecipient: a mail server refusing an
// address leaves no full address in the log or the dead letter, and the
// managers' alert and its audit event carry an error class, not the
// server's reply.
func TestSecuritySMTPFailureHidesTheRecipient(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	const bad = "gone.manager@example.test"
	e.setManagers(t, "boss@example.test", bad)
	e.waitMail(t, "boss@example.test", "The two-factor policy of acme was changed")
	e.queueIdle(t)

	e.SMTP.Reject(bad)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"remember_device_days": 7})
	e.waitMail(t, "boss@example.test", "The two-factor policy of acme was changed")
	alert := e.waitMail(t, "boss@example.test", "Alert: E-mail deliveries keep failing")
	e.queueIdle(t)

	dl, err := delivery.DeadLetters(context.Background(), e.App.Redis, 64, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) == 0 {
		t.Fatal("no dead letter for the refused address")
	}
	for _, d := range dl {
		if strings.Contains(d.Error, bad) || !strings.Contains(d.Error, "550") || !strings.Contains(d.Error, "@example.test") {
			t.Errorf("dead letter error %q: want the 550 and a masked recipient, not %s", d.Error, bad)
		}
	}
	if logs := e.Logs.String(); strings.Contains(logs, bad) {
		t.Errorf("the log holds the full recipient %s:\n%s", bad, logs)
	}
	ev := e.event(t, "", "alert_delivery_failing")
	if got := ntfObj(ev, "details")["last_error"]; got != "recipient_rejected" {
		t.Errorf("alert_delivery_failing event: last_error = %v, want the class recipient_rejected", got)
	}
	for _, part := range []string{alert.Text, alert.HTML} {
		if strings.Contains(part, bad) || strings.Contains(part, "550") {
			t.Errorf("alert mail quotes the server's reply or the address:\n%s", part)
		}
	}
	ntfWantPhrase(t, alert, "recipient_rejected")
}

// secDo sends a request with extra header lines (each value its own line).
func secDo(t *testing.T, env *apptest.Env, method, path, key string, header http.Header) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return apptest.Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
}

func secEnv(t *testing.T, configure func(*config.Config)) (*apptest.Env, string) {
	t.Helper()
	env := apptest.New(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"}
		if configure != nil {
			configure(c)
		}
	}})
	_, _, mgr := env.Tenant(t, "acme")
	return env, mgr
}

// TestSecurityForwardedForLinesAreJoined: a client's own X-Forwarded-For
// line does not hide the line the trusted proxy appended.
func TestSecurityForwardedForLinesAreJoined(t *testing.T) {
	t.Parallel()
	env, mgr := secEnv(t, nil)
	h := http.Header{"X-Forwarded-For": {"198.51.100.7", "203.0.113.9, 10.0.0.3"}}
	if r := secDo(t, env, "GET", "/v1/admin/policy", mgr, h); r.Status != 200 {
		t.Fatalf("GET /v1/admin/policy: %d %s", r.Status, r.Raw)
	}
	logs := env.Logs.String()
	if !strings.Contains(logs, `"client":"203.0.113.9"`) || strings.Contains(logs, `"client":"198.51.100.7"`) {
		t.Errorf("access log: want client 203.0.113.9 (the right-most untrusted address of both lines):\n%s", logs)
	}
}

// TestSecurityBadKeysAreThrottled: the 21st bad key from one address in a
// minute is refused with 429 and Retry-After, even with a spoofed first
// X-Forwarded-For line that changes every time, while a good key from
// another address still works.
func TestSecurityBadKeysAreThrottled(t *testing.T) {
	t.Parallel()
	env, mgr := secEnv(t, nil)
	attacker := func(i int) http.Header {
		return http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i), "203.0.113.9"}}
	}
	for i := range 20 {
		if r := secDo(t, env, "GET", "/v1/admin/policy", fmt.Sprintf("su_manager_guess%02d", i), attacker(i)); r.Status != 401 {
			t.Fatalf("bad key %d: %d %s, want 401", i+1, r.Status, r.Raw)
		}
	}
	r := secDo(t, env, "GET", "/v1/admin/policy", "su_manager_guess20", attacker(20))
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Raw), "too_many_auth_failures") {
		t.Fatalf("21st bad key in a minute: %d (Retry-After %q) %s, want 429 too_many_auth_failures with Retry-After", r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
	// While throttled, even a good key from that address is not checked.
	if r := secDo(t, env, "GET", "/v1/admin/policy", mgr, attacker(21)); r.Status != 429 {
		t.Errorf("a key from the throttled address: %d, want 429", r.Status)
	}
	// Another client is not affected.
	other := http.Header{"X-Forwarded-For": {"192.0.2.50"}}
	if r := secDo(t, env, "GET", "/v1/admin/policy", mgr, other); r.Status != 200 {
		t.Errorf("good key from another address: %d %s, want 200", r.Status, r.Raw)
	}
	// A second stepupd on the same Redis throttles the address at once.
	env2 := apptest.New(t, apptest.Options{Redis: apptest.Single, RedisAddrs: env.Addrs, Twilio: env.Twilio, SMTP: env.SMTP,
		Configure: func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} }})
	if r := secDo(t, env2, "GET", "/v1/admin/policy", "su_manager_guess22", attacker(22)); r.Status != 429 {
		t.Errorf("bad key on a second stepupd: %d %s, want 429", r.Status, r.Raw)
	}
	if r := secDo(t, env2, "GET", "/v1/admin/policy", mgr, other); r.Status != 200 {
		t.Errorf("good key from another address on a second stepupd: %d %s, want 200", r.Status, r.Raw)
	}
}

// TestSecurityMetricsToken: with metrics.token set, /metrics wants it.
func TestSecurityMetricsToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-token-0123456789"
	env, mgr := secEnv(t, func(c *config.Config) { c.Metrics.Token = token })
	for _, key := range []string{"", "wrong", mgr} {
		if r := secDo(t, env, "GET", "/metrics", key, nil); r.Status != 401 || strings.Contains(string(r.Raw), "stepup_http_requests_total") {
			t.Errorf("GET /metrics with key %q: %d, want 401", key, r.Status)
		}
	}
	if r := secDo(t, env, "GET", "/metrics", token, nil); r.Status != 200 || !strings.Contains(string(r.Raw), "stepup_http_requests_total") {
		t.Errorf("GET /metrics with the token: %d", r.Status)
	}
	open, _ := secEnv(t, nil)
	if r := secDo(t, open, "GET", "/metrics", "", nil); r.Status != 200 {
		t.Errorf("GET /metrics without a configured token: %d, want 200 (open)", r.Status)
	}
}
