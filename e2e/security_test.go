package e2e_test

// Regression tests of issue 12 (security hardening), each played as the
// attacker would, through the HTTP API on a real redis-server with the
// Twilio and SMTP test servers.

import (
	"encoding/base64"
	"strings"
	"testing"
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
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	_, link := e.userMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	if link == "" {
		t.FailNow()
	}
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
