package e2e_test

// Acceptance tests of "Notifications and audit" (SPEC sections 7 and 8):
// every user-facing change mails the user (and, for admin actions, the
// managers) over a real SMTP dialogue — STARTTLS and AUTH against the
// in-process smtptest server, sent by go-mail from the delivery worker —
// with the state in a real redis-server. Mails are matched by envelope
// recipient and subject and checked for a phrase in both the text and the
// HTML part; the golden files in notify/testdata pin the exact bytes.

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/store/keyspace"
)

const (
	ntfUA        = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	ntfIP        = "192.0.2.77" // AU in the demo GeoIP table
	ntfMaskedIP  = "192.0.2.x"
	ntfGBIP      = "198.51.100.23" // GB
	ntfPhone1    = "+61491570156"
	ntfPhone2    = "+61491570157"
	ntfSMTPUser  = "stepup-mailer"
	ntfSMTPPass  = "correct horse battery staple"
	ntfPublicURL = "https://stepup.example.test" // apptest's public_url
	ntfFrom      = "security@example.test"       // apptest's mail.from
	ntfOrg       = "acme"                        // tenant name and sender name
	ntfWait      = 20 * time.Second
)

// ntfEnv is a stepupd on a real redis-server, mailing over STARTTLS with
// AUTH, with a Country database of the documentation ranges, and one tenant.
type ntfEnv struct {
	*apptest.Env
	Tenant, AppKey, MgrKey string
}

func ntfStart(t *testing.T, configure func(*config.Config)) *ntfEnv {
	t.Helper()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSStartTLS, Username: ntfSMTPUser, Password: ntfSMTPPass})
	geo := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	env := apptest.New(t, apptest.Options{Redis: apptest.Single, SMTP: srv, Configure: func(c *config.Config) {
		c.Mail.SMTP.TLS = "starttls"
		c.Mail.SMTP.Username = ntfSMTPUser
		c.Mail.SMTP.Password = ntfSMTPPass
		// The config has no CA bundle for SMTP; the server's certificate
		// is self-signed for 127.0.0.1.
		c.Mail.SMTP.TLSInsecureSkipVerify = true
		c.GeoIP.CountryDB = geo
		// Tests send more codes to one number than an hour's real limit.
		c.Limits.SMSPerNumberHour = 1000
		c.Limits.SMSPerUserHour = 1000
		c.Limits.ChallengesPerIPHour = 1000
		if configure != nil {
			configure(c)
		}
	}})
	id, app, mgr := env.Tenant(t, ntfOrg)
	return &ntfEnv{Env: env, Tenant: id, AppKey: app, MgrKey: mgr}
}

// ---- small JSON helpers ----

func ntfObj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func ntfStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func ntfStrings(v any) []string {
	var out []string
	for _, x := range ntfSlice(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func ntfSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// ---- user and factor helpers ----

func (e *ntfEnv) putUser(t *testing.T, user, email string) {
	t.Helper()
	body := map[string]any{"display_name": "User " + user}
	if email != "" {
		body["email"] = email
	}
	e.Must(t, 200, "PUT", "/v1/users/"+user, e.AppKey, body)
}

// verifySMS verifies the challenge id with the next code sent to phone
// after the first seen Twilio messages.
func (e *ntfEnv) verifySMS(t *testing.T, id, phone string, seen int, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"code": e.SMSCode(t, phone, seen)}
	for k, v := range extra {
		body[k] = v
	}
	return e.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", e.AppKey, body)
}

// enrollSMS turns SMS 2FA on for a user without a factor and returns the
// backup codes.
func (e *ntfEnv) enrollSMS(t *testing.T, user, phone string) []string {
	t.Helper()
	seen := len(e.Twilio.Messages())
	st := e.Must(t, 201, "POST", "/v1/users/"+user+"/sms", e.AppKey, map[string]any{"phone": phone, "ip": ntfIP, "user_agent": ntfUA})
	res := e.verifySMS(t, ntfStr(ntfObj(st, "challenge"), "id"), phone, seen, nil)
	codes := ntfStrings(ntfObj(res, "result")["backup_codes"])
	if res["purpose"] != "enroll_sms" || len(codes) != 10 {
		t.Fatalf("SMS enrolment of %s: %v", user, res)
	}
	return codes
}

// stepSMS starts a lifecycle call that asks for a code on the user's SMS
// factor and verifies it; it returns the verification's answer.
func (e *ntfEnv) stepSMS(t *testing.T, path, phone string, body map[string]any) map[string]any {
	t.Helper()
	seen := len(e.Twilio.Messages())
	st := e.Must(t, 201, "POST", path, e.AppKey, body)
	ch := ntfObj(st, "challenge")
	if ch["channel"] != "sms" {
		t.Fatalf("POST %s: challenge on %v, want sms: %v", path, ch["channel"], st)
	}
	return e.verifySMS(t, ntfStr(ch, "id"), phone, seen, nil)
}

func (e *ntfEnv) evaluate(t *testing.T, user, ip, device, token string) map[string]any {
	t.Helper()
	body := map[string]any{"user_id": user, "ip": ip, "user_agent": ntfUA}
	if device != "" {
		body["device_id"] = device
	}
	if token != "" {
		body["device_token"] = token
	}
	return e.Must(t, 200, "POST", "/v1/logins/evaluate", e.AppKey, body)
}

// loginRemember makes a challenged login (a cold start: the user has no
// history yet) and verifies it by SMS with remember_device; it returns the
// device token.
func (e *ntfEnv) loginRemember(t *testing.T, user, phone, device string) string {
	t.Helper()
	seen := len(e.Twilio.Messages())
	ev := e.evaluate(t, user, ntfIP, device, "")
	if ev["decision"] != "challenge" {
		t.Fatalf("first login of %s: decision %v, want challenge: %v", user, ev["decision"], ev)
	}
	res := e.verifySMS(t, ntfStr(ntfObj(ev, "challenge"), "id"), phone, seen, map[string]any{"remember_device": true})
	tok := ntfStr(ntfObj(res, "result"), "device_token")
	if tok == "" {
		t.Fatalf("verified login of %s with remember_device: no device_token: %v", user, res)
	}
	return tok
}

func (e *ntfEnv) setManagers(t *testing.T, addrs ...string) {
	t.Helper()
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"manager_emails": addrs})
}

// ---- mail helpers ----

func ntfMatch(m smtptest.Message, to, subject string) bool {
	if m.Subject != subject {
		return false
	}
	return slices.ContainsFunc(m.To, func(a string) bool { return strings.EqualFold(a, to) })
}

func ntfCount(srv *smtptest.Server, to, subject string) int {
	n := 0
	for _, m := range srv.Messages() {
		if ntfMatch(m, to, subject) {
			n++
		}
	}
	return n
}

func ntfInbox(srv *smtptest.Server) string {
	var b strings.Builder
	for _, m := range srv.Messages() {
		fmt.Fprintf(&b, "\n  %v %q", m.To, m.Subject)
	}
	return b.String()
}

// waitMail waits for the mail to `to` with this subject (the newest one)
// and checks what every mail of stepup must be: sent over TLS after AUTH,
// from the tenant's sender name and mail.from, to that one recipient, with
// a text and an HTML part.
func (e *ntfEnv) waitMail(t *testing.T, to, subject string) smtptest.Message {
	t.Helper()
	m := ntfWaitMail(t, e.SMTP, to, subject)
	if strings.TrimSpace(m.HTML) == "" {
		t.Errorf("mail %q to %s has no HTML part", subject, to)
	}
	return m
}

func ntfWaitMail(t testing.TB, srv *smtptest.Server, to, subject string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(ntfWait)
	for {
		msgs := srv.Messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			if m := msgs[i]; ntfMatch(m, to, subject) {
				ntfCheckEnvelope(t, m, to)
				return m
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no mail to %s with subject %q within %v; inbox:%s", to, subject, ntfWait, ntfInbox(srv))
		}
		_, _ = srv.WaitFor(len(msgs)+1, left) // wakes on the next arrival
	}
}

func ntfCheckEnvelope(t testing.TB, m smtptest.Message, to string) {
	t.Helper()
	if m.ParseErr != nil {
		t.Errorf("mail %q to %s does not parse: %v", m.Subject, to, m.ParseErr)
	}
	if !m.TLS || m.AuthUser != ntfSMTPUser {
		t.Errorf("mail %q to %s: TLS %v, AUTH user %q; want STARTTLS and AUTH as %q", m.Subject, to, m.TLS, m.AuthUser, ntfSMTPUser)
	}
	if len(m.To) != 1 || !strings.EqualFold(m.To[0], to) || len(m.HeaderTo) != 1 || !strings.EqualFold(m.HeaderTo[0], to) {
		t.Errorf("mail %q: envelope to %v, header to %v; want only %s", m.Subject, m.To, m.HeaderTo, to)
	}
	if m.FromName != ntfOrg || m.FromAddress != ntfFrom || m.From != ntfFrom {
		t.Errorf("mail %q to %s: from %q <%s> (envelope %s), want %q <%s>", m.Subject, to, m.FromName, m.FromAddress, m.From, ntfOrg, ntfFrom)
	}
	if strings.TrimSpace(m.Text) == "" {
		t.Errorf("mail %q to %s has no text part", m.Subject, to)
	}
}

// ntfHTMLText is the text an HTML part shows: tags dropped, entities
// decoded, runs of white space collapsed.
func ntfHTMLText(h string) string {
	h = ntfBlockRE.ReplaceAllString(h, " ") // table cells and paragraphs are separate words
	return strings.Join(strings.Fields(html.UnescapeString(ntfTagRE.ReplaceAllString(h, ""))), " ")
}

var (
	ntfTagRE   = regexp.MustCompile(`<[^>]*>`)
	ntfBlockRE = regexp.MustCompile(`(?i)</?(td|th|tr|p|br|div|li|table|h[1-6])\b[^>]*>`)
)

// wantPhrase checks that both parts of m say phrase.
func ntfWantPhrase(t testing.TB, m smtptest.Message, phrases ...string) {
	t.Helper()
	shown := ntfHTMLText(m.HTML)
	for _, p := range phrases {
		if !strings.Contains(m.Text, p) {
			t.Errorf("mail %q: text part lacks %q:\n%s", m.Subject, p, m.Text)
		}
		if !strings.Contains(shown, p) {
			t.Errorf("mail %q: HTML part lacks %q:\n%s", m.Subject, p, m.HTML)
		}
	}
}

var ntfReportRE = regexp.MustCompile(regexp.QuoteMeta(ntfPublicURL) + `/v1/report/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// reportLink returns the "this wasn't me" link of a user's mail, checking
// it is the same in the text and the HTML part.
func ntfReportLink(t testing.TB, m smtptest.Message) string {
	t.Helper()
	links := ntfReportRE.FindAllString(m.Text, -1)
	if len(links) != 1 {
		t.Errorf("mail %q: want one \"this wasn't me\" link (%s/v1/report/<token>) in the text, found %d:\n%s", m.Subject, ntfPublicURL, len(links), m.Text)
		return ""
	}
	if !strings.Contains(m.HTML, `href="`+links[0]+`"`) {
		t.Errorf("mail %q: the HTML part does not link to %s:\n%s", m.Subject, links[0], m.HTML)
	}
	return links[0]
}

// aliceLink puts alice with her address, enrols her phone and returns the
// "this wasn't me" link of the mail that tells her.
func (e *ntfEnv) aliceLink(t *testing.T) string {
	t.Helper()
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	_, link := e.userMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	if link == "" {
		t.FailNow()
	}
	return link
}

// userMail waits for the user's mail about a change and checks its phrases,
// the "this wasn't me" link, and that no full IP address is shown.
func (e *ntfEnv) userMail(t *testing.T, to, subject string, phrases ...string) (smtptest.Message, string) {
	t.Helper()
	m := e.waitMail(t, to, subject)
	ntfWantPhrase(t, m, phrases...)
	link := ntfReportLink(t, m)
	for _, ip := range []string{ntfIP, ntfGBIP} {
		if strings.Contains(m.Text, ip) || strings.Contains(m.HTML, ip) {
			t.Errorf("mail %q shows the full IP %s", m.Subject, ip)
		}
	}
	return m, link
}

// queueIdle waits until every shard's job stream and retry set is empty:
// all queued mails and SMS were sent or dead-lettered.
func (e *ntfEnv) queueIdle(t testing.TB) {
	t.Helper()
	ntfQueueIdle(t, e.Env)
}

func ntfQueueIdle(t testing.TB, env *apptest.Env) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(ntfWait)
	for {
		pipe := env.App.Redis.Pipeline()
		var lens []interface{ Val() int64 }
		for s := range keyspace.Shards {
			lens = append(lens, pipe.XLen(ctx, keyspace.Queue(s)), pipe.ZCard(ctx, keyspace.Delay(s)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("queue length: %v", err)
		}
		var n int64
		for _, l := range lens {
			n += l.Val()
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery queue still holds %d jobs after %v", n, ntfWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- audit helpers ----

// events reads the audit log with the manager key.
func (e *ntfEnv) events(t *testing.T, query string) ([]map[string]any, string) {
	t.Helper()
	body := e.Must(t, 200, "GET", "/v1/admin/events"+query, e.MgrKey, nil)
	var out []map[string]any
	for _, x := range ntfSlice(body["events"]) {
		out = append(out, x.(map[string]any))
	}
	return out, ntfStr(body, "next_cursor")
}

// event returns the newest audit event of a type for a user ("" for a
// tenant event), failing the test when there is none.
func (e *ntfEnv) event(t *testing.T, user, typ string) map[string]any {
	t.Helper()
	q := "?type=" + typ + "&limit=1"
	if user != "" {
		q += "&user_id=" + user
	}
	evs, _ := e.events(t, q)
	if len(evs) == 0 {
		t.Fatalf("no %s event for user %q in the audit log", typ, user)
	}
	return evs[0]
}

// userEvent checks the audit event of a user's own change made from ntfIP.
func (e *ntfEnv) userEvent(t *testing.T, user, typ string) map[string]any {
	t.Helper()
	ev := e.event(t, user, typ)
	if ev["user_id"] != user || ev["type"] != typ || ev["actor"] != "user" || ev["ip"] != ntfMaskedIP || ev["country"] != "AU" ||
		ev["tenant"] != e.Tenant || ntfStr(ev, "id") == "" || ntfStr(ev, "at") == "" {
		t.Errorf("%s event: %v; want user_id %s, actor user, ip %s, country AU, tenant %s", typ, ev, user, ntfMaskedIP, e.Tenant)
	}
	if d := ntfObj(ev, "details"); d["mail"] != "queued" {
		t.Errorf("%s event of a user with an address: details.mail = %v, want queued", typ, d["mail"])
	}
	return ev
}

// ==== one test per user-facing event ====

func TestNotifySMSEnrolled(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	m, _ := e.userMail(t, "alice@example.test", "Two-factor authentication by text message was turned on",
		"Two-factor authentication is now on for your acme account, with sign-in codes sent by text message", "Hi User alice")
	// The number is masked in the mail, never shown in full.
	if strings.Contains(m.Text, "491570156") || strings.Contains(m.HTML, "491570156") || !strings.Contains(m.Text, "156") {
		t.Errorf("sms_enrolled mail does not show the number masked:\n%s", m.Text)
	}
	ntfWantPhrase(t, m, "Australia", "Chrome 124 on Windows 10")
	ev := e.userEvent(t, "alice", "sms_enrolled")
	if p := ntfStr(ntfObj(ev, "details"), "phone"); p == "" || strings.Contains(p, "491570156") {
		t.Errorf("sms_enrolled details.phone = %q, want the masked number", p)
	}
}

func TestNotifyTOTPEnabled(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	st := e.Must(t, 201, "POST", "/v1/users/alice/totp", e.AppKey, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	secret := ntfStr(st, "secret")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("TOTP code for secret %q: %v", secret, err)
	}
	res := e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(ntfObj(st, "challenge"), "id")+"/verify", e.AppKey, map[string]any{"code": code})
	if res["purpose"] != "enroll_totp" {
		t.Fatalf("TOTP enrolment: %v", res)
	}
	e.userMail(t, "alice@example.test", "An authenticator app was added to your account",
		"An authenticator app now protects your acme account")
	e.userEvent(t, "alice", "totp_enabled")
}

func TestNotifyTOTPReset(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	// Step-ups go to SMS first, so the reset's step-up does not need a
	// second TOTP code from the same 30-second window.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"allowed_channels": []string{"sms", "totp", "email"}})
	enroll := func(wantType string) {
		t.Helper()
		res := e.stepSMS(t, "/v1/users/alice/totp", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
		r := ntfObj(res, "result")
		next := ntfObj(r, "next_challenge")
		secret := ntfStr(r, "secret")
		if next == nil || secret == "" {
			t.Fatalf("TOTP step-up: %v", res)
		}
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(next, "id")+"/verify", e.AppKey, map[string]any{"code": code})
		e.userEvent(t, "alice", wantType)
	}
	enroll("totp_enabled")
	e.waitMail(t, "alice@example.test", "An authenticator app was added to your account")
	enroll("totp_reset")
	e.userMail(t, "alice@example.test", "Your authenticator app for two-factor authentication was reset",
		"The authenticator app of your acme account was set up again with a new key")
}

func TestNotifyEmailFactorEnabled(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	st := e.Must(t, 201, "POST", "/v1/users/alice/email-factor", e.AppKey, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	ch := ntfObj(st, "challenge")
	if ch["channel"] != "email" {
		t.Fatalf("e-mail factor challenge: %v", st)
	}
	// The code itself travels by mail, through the same queue and SMTP.
	cm := ntfWaitMail(t, e.SMTP, "alice@example.test", "Your acme verification code")
	code := regexp.MustCompile(`verification code is (\d{6})`).FindStringSubmatch(cm.Text)
	if code == nil {
		t.Fatalf("code mail has no code:\n%s", cm.Text)
	}
	e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(ch, "id")+"/verify", e.AppKey, map[string]any{"code": code[1]})
	e.userMail(t, "alice@example.test", "Sign-in codes by e-mail were turned on",
		"Your acme account can now receive sign-in codes by e-mail")
	e.userEvent(t, "alice", "email_factor_enabled")
}

func TestNotify2FADisabled(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.stepSMS(t, "/v1/users/alice/2fa/disable", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	e.userMail(t, "alice@example.test", "Two-factor authentication was turned off for your account",
		"Two-factor authentication was turned off for your acme account", "your password alone protects the account")
	e.userEvent(t, "alice", "2fa_disabled")
	if u := e.Must(t, 200, "GET", "/v1/users/alice", e.AppKey, nil); u["enrolled"] != false {
		t.Errorf("after disabling: %v", u)
	}
}

func TestNotifyPhoneChanged(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	// Dual confirmation: the old number, then the new one.
	res := e.stepSMS(t, "/v1/users/alice/phone-change", ntfPhone1, map[string]any{"new_phone": ntfPhone2, "ip": ntfIP, "user_agent": ntfUA})
	next := ntfObj(ntfObj(res, "result"), "next_challenge")
	if next == nil {
		t.Fatalf("old number verified: no next_challenge: %v", res)
	}
	seen := len(e.Twilio.Messages())
	e.verifySMS(t, ntfStr(next, "id"), ntfPhone2, 0, nil)
	e.userMail(t, "alice@example.test", "Your phone number for two-factor authentication was changed",
		"The phone number that receives your acme sign-in codes was changed from")
	ev := e.userEvent(t, "alice", "phone_changed")
	if d := ntfObj(ev, "details"); !strings.HasSuffix(ntfStr(d, "old_phone"), "156") || !strings.HasSuffix(ntfStr(d, "new_phone"), "157") {
		t.Errorf("phone_changed details: %v", d)
	}
	// The old number hears of it too.
	deadline := time.Now().Add(ntfWait)
	for {
		var notice string
		for _, m := range e.Twilio.Messages()[seen:] {
			if m.To == ntfPhone1 && strings.Contains(m.Body, "phone number was changed") {
				notice = m.Body
			}
		}
		if notice != "" {
			if !strings.Contains(notice, "acme") || strings.Contains(notice, "491570157") {
				t.Errorf("notice SMS to the old number: %q", notice)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notice SMS to the old number %s within %v", ntfPhone1, ntfWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNotifyBackupCodesRegenerated(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	res := e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	if n := len(ntfStrings(ntfObj(res, "result")["backup_codes"])); n != 10 {
		t.Fatalf("regenerated %d backup codes: %v", n, res)
	}
	e.userMail(t, "alice@example.test", "New backup codes were created for your account",
		"backup codes was created for your acme account", "The codes you had before no longer work")
	e.userEvent(t, "alice", "backup_codes_regenerated")
}

func TestNotifyBackupCodeUsed(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	codes := e.enrollSMS(t, "alice", ntfPhone1)
	ev := e.evaluate(t, "alice", ntfIP, "laptop", "")
	if ev["decision"] != "challenge" {
		t.Fatalf("first login: %v", ev)
	}
	res := e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(ntfObj(ev, "challenge"), "id")+"/verify", e.AppKey, map[string]any{"code": codes[3]})
	if ntfObj(res, "result")["backup_codes_left"] != 9.0 {
		t.Errorf("backup code login: %v", res)
	}
	m, _ := e.userMail(t, "alice@example.test", "A backup code was used to sign in to your account",
		"A backup code was used to sign in to your acme account")
	// The mail says how many codes are left (notify's detail "remaining").
	ntfWantPhrase(t, m, "you have 9 left")
	e.userEvent(t, "alice", "backup_code_used")
}

// A backup code that confirms a change (here: new backup codes) is not a
// sign-in; the mail says what it was used for (SPEC.md section 7: each
// mail says what changed), so the user is not told someone signed in.
func TestNotifyBackupCodeUsedForAChange(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	codes := e.enrollSMS(t, "alice", ntfPhone1)
	st := e.Must(t, 201, "POST", "/v1/users/alice/backup-codes", e.AppKey, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	res := e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(ntfObj(st, "challenge"), "id")+"/verify", e.AppKey, map[string]any{"code": codes[2]})
	if res["purpose"] != "backup_codes" {
		t.Fatalf("backup code for new backup codes: %v", res)
	}
	m, _ := e.userMail(t, "alice@example.test", "A backup code was used to confirm a change to your account",
		"A backup code was used to confirm a change to your acme account")
	if strings.Contains(m.Text, "sign in") || strings.Contains(ntfHTMLText(m.HTML), "sign in") {
		t.Errorf("mail about a backup code used for a change speaks of a sign-in:\n%s", m.Text)
	}
	if d := ntfObj(e.userEvent(t, "alice", "backup_code_used"), "details"); d["used_for"] != "change" {
		t.Errorf("backup_code_used details = %v, want used_for change", d)
	}
}

func TestNotifyDevicesForgotten(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.loginRemember(t, "alice", ntfPhone1, "laptop")
	r := e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", e.AppKey, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	if r["forgotten"] != 1.0 {
		t.Errorf("password changed: %v, want 1 device forgotten", r)
	}
	e.userMail(t, "alice@example.test", "Your account no longer remembers your devices",
		"Your acme account no longer remembers the device where you chose to skip sign-in codes",
		"This happened because your password was changed")
	ev := e.event(t, "alice", "devices_forgotten")
	if d := ntfObj(ev, "details"); d["reason"] != "password_changed" || d["count"] != "1" || d["mail"] != "queued" || ev["user_id"] != "alice" {
		t.Errorf("devices_forgotten event: %v", ev)
	}
	if ds := e.Must(t, 200, "GET", "/v1/users/alice/devices", e.AppKey, nil); len(ntfSlice(ds["devices"])) != 0 {
		t.Errorf("devices after the password change: %v", ds)
	}
}

func TestNotifyAdminReset(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	managers := []string{"boss@example.test", "deputy@example.test"}
	e.setManagers(t, managers...)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	u := e.Must(t, 200, "POST", "/v1/admin/users/alice/reset", e.MgrKey, map[string]any{"reason": "lost her phone on the train"})
	if u["enrolled"] != false {
		t.Errorf("after the reset: %v", u)
	}
	e.userMail(t, "alice@example.test", "An administrator reset two-factor authentication on your account",
		"An administrator of acme reset two-factor authentication on your account", "lost her phone on the train")
	for _, to := range managers {
		m := e.waitMail(t, to, "Two-factor authentication was reset for user alice")
		ntfWantPhrase(t, m, "reset two-factor authentication for user alice", "lost her phone on the train")
		if ntfReportRE.MatchString(m.Text) {
			t.Errorf("a manager's mail carries the user's \"this wasn't me\" link:\n%s", m.Text)
		}
	}
	e.queueIdle(t)
	for _, to := range append([]string{"alice@example.test"}, managers...) {
		subj := "Two-factor authentication was reset for user alice"
		if to == "alice@example.test" {
			subj = "An administrator reset two-factor authentication on your account"
		}
		if n := ntfCount(e.SMTP, to, subj); n != 1 {
			t.Errorf("%d mails %q to %s, want 1", n, subj, to)
		}
	}
	ev := e.event(t, "alice", "admin_reset")
	if ev["actor"] != "manager" || ntfObj(ev, "details")["reason"] != "lost her phone on the train" || ntfObj(ev, "details")["mail"] != "queued" {
		t.Errorf("admin_reset event: %v", ev)
	}
}

func TestNotifyTenantModeOff(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	for _, u := range []string{"alice", "carol", "dave"} {
		e.putUser(t, u, u+"@example.test")
	}
	e.enrollSMS(t, "alice", ntfPhone1)
	e.enrollSMS(t, "carol", ntfPhone2)
	// dave has no factor: nothing changes for him, so he gets no mail.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"mode": "off"})
	const subj = "acme switched off two-factor authentication"
	for _, u := range []string{"alice", "carol"} {
		m := e.waitMail(t, u+"@example.test", subj)
		ntfWantPhrase(t, m, "acme switched off two-factor authentication for all accounts", "Hi User "+u)
		ev := e.event(t, u, "tenant_mode_off")
		if ev["actor"] != "manager" || ntfObj(ev, "details")["mail"] != "queued" {
			t.Errorf("tenant_mode_off event of %s: %v", u, ev)
		}
	}
	e.queueIdle(t)
	for _, u := range []string{"alice", "carol", "dave"} {
		want := 1
		if u == "dave" {
			want = 0
		}
		if n := ntfCount(e.SMTP, u+"@example.test", subj); n != want {
			t.Errorf("%d mode-off mails to %s, want %d", n, u, want)
		}
	}
	if evs, _ := e.events(t, "?type=tenant_mode_off&user_id=dave"); len(evs) != 0 {
		t.Errorf("tenant_mode_off event for a user without 2FA: %v", evs)
	}
}

// Monitor mode asks nobody for a code, so switching it on is, for an
// enrolled user, 2FA switched off: a stolen manager key cannot disarm
// everyone unnoticed. A group's override counts for that group's users.
func TestNotifyMonitorModeIsModeOff(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	for _, u := range []string{"alice", "carol"} {
		e.putUser(t, u, u+"@example.test")
	}
	e.enrollSMS(t, "alice", ntfPhone1)
	e.enrollSMS(t, "carol", ntfPhone2)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"groups": map[string]any{"staff": map[string]any{"enforcement": "monitor"}}})
	e.Must(t, 200, "PUT", "/v1/users/carol", e.AppKey, map[string]any{"group": "staff"})
	// carol joined a monitored group, which is no policy change: only a
	// change of the policy tells. Now the whole tenant goes to monitor.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"enforcement": "monitor"})
	const subj = "acme switched off two-factor authentication"
	m := e.waitMail(t, "alice@example.test", subj)
	ntfWantPhrase(t, m, "Hi User alice")
	if ev := e.event(t, "alice", "tenant_mode_off"); ntfObj(ev, "details")["enforcement"] != "monitor" {
		t.Errorf("tenant_mode_off event of alice: %v", ev)
	}
	// The same policy again, and carol's group, already monitored: no mail.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"enforcement": "monitor"})
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "alice@example.test", subj); n != 1 {
		t.Errorf("%d mode-off mails to alice, want 1", n)
	}
	if n := ntfCount(e.SMTP, "carol@example.test", subj); n != 0 {
		t.Errorf("%d mode-off mails to carol, whose group was monitored already, want 0", n)
	}
}

func TestNotifyLoginDenied(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"blocked_countries": []string{"GB"}})
	ev := e.evaluate(t, "alice", ntfGBIP, "stranger", "")
	if ev["decision"] != "deny" {
		t.Fatalf("login from GB with GB blocked: %v", ev)
	}
	m, _ := e.userMail(t, "alice@example.test", "A sign-in to your account was blocked",
		"We blocked a sign-in to your acme account because it looked risky")
	ntfWantPhrase(t, m, "United Kingdom")
	a := e.event(t, "alice", "login_denied")
	if a["actor"] != "user" || a["ip"] != "198.51.100.x" || a["country"] != "GB" || ntfObj(a, "details")["mail"] != "queued" {
		t.Errorf("login_denied event: %v", a)
	}
}

func TestNotifyPolicyChanged(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	managers := []string{"boss@example.test", "deputy@example.test"}
	e.setManagers(t, managers...)
	subj := "The two-factor policy of acme was changed"
	for _, to := range managers {
		e.waitMail(t, to, subj)
	}
	e.queueIdle(t)
	e.SMTP.Clear()
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"remember_device_days": 7, "blocked_countries": []string{"GB"}})
	for _, to := range managers {
		m := e.waitMail(t, to, subj)
		ntfWantPhrase(t, m, "A manager changed the two-factor policy of acme")
		// The before/after difference, field by field.
		for _, part := range []struct{ name, body string }{{"text", m.Text}, {"HTML", ntfHTMLText(m.HTML)}} {
			if strings.Contains(part.body, "No setting changed") ||
				!regexp.MustCompile(`remember_device_days\W[\s\S]{0,200}\b30\b[\s\S]{0,200}\b7\b`).MatchString(part.body) ||
				!regexp.MustCompile(`blocked_countries[\s\S]{0,300}GB`).MatchString(part.body) {
				t.Errorf("policy_changed mail to %s: the %s part does not show remember_device_days 30 → 7 and blocked_countries → GB:\n%s", to, part.name, part.body)
			}
		}
	}
	ev := e.event(t, "", "policy_changed")
	if ev["actor"] != "manager" || ev["user_id"] != nil || !strings.Contains(ntfStr(ntfObj(ev, "details"), "changes"), "remember_device_days") {
		t.Errorf("policy_changed event: %v", ev)
	}
}

// TestNotifyMailSaysWhereFrom: a user's mail says from which network,
// country and device the change came (SPEC 7), the network masked.
func TestNotifyMailSaysWhereFrom(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	m := e.waitMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	ntfWantPhrase(t, m, "Australia", "Chrome 124 on Windows 10", ntfMaskedIP)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"blocked_countries": []string{"GB"}})
	e.evaluate(t, "alice", ntfGBIP, "", "")
	m = e.waitMail(t, "alice@example.test", "A sign-in to your account was blocked")
	ntfWantPhrase(t, m, "United Kingdom", "198.51.100.x")
}

// ==== "this wasn't me" ====

func (e *ntfEnv) report(t *testing.T, link string) apptest.Response {
	t.Helper()
	path := strings.TrimPrefix(link, ntfPublicURL)
	req, err := http.NewRequest("POST", e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return apptest.Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
}

func TestReportLinkSecuresTheAccount(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	managers := []string{"boss@example.test", "deputy@example.test"}
	e.setManagers(t, managers...)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	tok := e.loginRemember(t, "alice", ntfPhone1, "laptop")
	thresholds := ntfObj(e.Must(t, 200, "GET", "/v1/admin/policy", e.MgrKey, nil), "thresholds")

	// Familiar logins go straight through: the remembered device, and the
	// same context without the token (the verified login taught history).
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", tok); ev["decision"] != "allow" {
		t.Fatalf("login on the remembered device: %v", ev)
	}
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "allow" {
		t.Fatalf("familiar login: %v", ev)
	}

	// A change the user did not make: new backup codes.
	e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	_, link := e.userMail(t, "alice@example.test", "New backup codes were created for your account")
	if link == "" {
		t.FailNow()
	}
	path := strings.TrimPrefix(link, ntfPublicURL)

	// Opening the link (a GET, as mail scanners do) changes nothing.
	if r := e.Do(t, "GET", path, "", nil); r.Status != 200 || !strings.Contains(string(r.Raw), "<form method=\"post\"") {
		t.Errorf("GET %s: %d %s", path, r.Status, r.Raw)
	}
	if ds := e.Must(t, 200, "GET", "/v1/users/alice/devices", e.AppKey, nil); len(ntfSlice(ds["devices"])) != 1 {
		t.Errorf("a GET of the report link forgot devices: %v", ds)
	}

	r := e.report(t, link)
	if r.Status != 200 || !strings.Contains(string(r.Raw), `"reported":true`) {
		t.Fatalf("POST %s: %d %s, want 200 {\"reported\":true}", path, r.Status, r.Raw)
	}
	r = e.report(t, link)
	if r.Status != 410 || !strings.Contains(string(r.Raw), `"code":"report_link_invalid"`) {
		t.Errorf("second POST of the link: %d %s, want 410 report_link_invalid", r.Status, r.Raw)
	}
	// A link whose signature was tampered with is refused the same way.
	if r := e.report(t, link[:len(link)-2]+"AA"); r.Status != 410 || !strings.Contains(string(r.Raw), "report_link_invalid") {
		t.Errorf("tampered link: %d %s, want 410 report_link_invalid", r.Status, r.Raw)
	}

	// The remembered devices are gone ...
	if ds := e.Must(t, 200, "GET", "/v1/users/alice/devices", e.AppKey, nil); len(ntfSlice(ds["devices"])) != 0 {
		t.Errorf("devices after the report: %v", ds)
	}
	if u := e.Must(t, 200, "GET", "/v1/users/alice", e.AppKey, nil); u["remembered_devices"] != 0.0 {
		t.Errorf("user after the report: %v", u)
	}
	// ... and the next login is challenged whatever its score.
	seen := len(e.Twilio.Messages())
	ev := e.evaluate(t, "alice", ntfIP, "laptop", tok)
	score, _ := ntfObj(ev, "risk")["score"].(float64)
	if ev["decision"] != "challenge" {
		t.Fatalf("first login after the report: %v, want a challenge", ev)
	}
	if th, _ := thresholds["challenge"].(float64); score >= th {
		t.Errorf("the login after the report scored %v (challenge threshold %v); it should be a familiar, low-risk login", score, th)
	}
	e.verifySMS(t, ntfStr(ntfObj(ev, "challenge"), "id"), ntfPhone1, seen, nil)
	// The forced challenge is spent once answered.
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "allow" {
		t.Errorf("login after the forced challenge was answered: %v, want allow", ev)
	}

	// The audit log has it ...
	rep := e.event(t, "alice", "report_received")
	if rep["user_id"] != "alice" || rep["actor"] != "user" || ntfObj(rep, "details")["devices_forgotten"] != "1" {
		t.Errorf("report_received event: %v", rep)
	}
	// ... and the managers are told.
	for _, to := range managers {
		m := e.waitMail(t, to, "User alice reported activity that wasn't theirs")
		ntfWantPhrase(t, m, "User alice opened the", "This wasn't me", "forgotten the user's remembered devices")
	}
	e.queueIdle(t)
	for _, to := range managers {
		if n := ntfCount(e.SMTP, to, "User alice reported activity that wasn't theirs"); n != 1 {
			t.Errorf("%d report mails to %s, want 1 (the second POST must not mail again)", n, to)
		}
	}
}

// TestReportLinkInEveryChangeMail collects the links of several kinds of
// change mails: each is distinct and each works exactly once.
func TestReportLinkInEveryChangeMail(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.loginRemember(t, "alice", ntfPhone1, "laptop")
	e.Must(t, 200, "POST", "/v1/users/alice/events/signed-out-everywhere", e.AppKey, nil)
	e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, nil)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"blocked_countries": []string{"GB"}})
	e.evaluate(t, "alice", ntfGBIP, "", "")
	e.stepSMS(t, "/v1/users/alice/2fa/disable", ntfPhone1, nil)
	var links []string
	for _, subj := range []string{
		"Two-factor authentication by text message was turned on",
		"Your account no longer remembers your devices",
		"New backup codes were created for your account",
		"A sign-in to your account was blocked",
		"Two-factor authentication was turned off for your account",
	} {
		_, link := e.userMail(t, "alice@example.test", subj)
		links = append(links, link)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(links)))) != len(links) {
		t.Errorf("report links are not distinct: %v", links)
	}
	for _, l := range links {
		if r := e.report(t, l); r.Status != 200 {
			t.Errorf("first use of %s: %d %s", l, r.Status, r.Raw)
		}
		if r := e.report(t, l); r.Status != 410 {
			t.Errorf("second use of %s: %d %s, want 410", l, r.Status, r.Raw)
		}
	}
	if evs, _ := e.events(t, "?user_id=alice&type=report_received"); len(evs) != len(links) {
		t.Errorf("%d report_received events, want %d", len(evs), len(links))
	}
}

// ==== delivery: the SMTP server down, a refused recipient ====

func TestNotifySMTPDownThenBack(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, func(c *config.Config) {
		// apptest retries within 50–500 ms; allow enough tries to outlast
		// the outage below however slowly the race detector runs.
		c.Delivery.MaxAttempts = 200
	})
	e.setManagers(t, "boss@example.test")
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.loginRemember(t, "alice", ntfPhone1, "laptop")
	e.waitMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	e.queueIdle(t)
	before := len(e.SMTP.Messages())

	e.SMTP.Stop()
	// Two changes while the mail server is down; the SMS codes still flow.
	e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", e.AppKey, nil)
	// Wait until the worker has failed a mail three times: that raises the
	// "deliveries keep failing" alert, itself a mail that waits.
	deadline := time.Now().Add(ntfWait)
	for {
		if evs, _ := e.events(t, "?type=alert_delivery_failing"); len(evs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert_delivery_failing event within %v while the SMTP server is down", ntfWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(e.SMTP.Messages()); n != before {
		t.Fatalf("%d mails arrived while the server was down", n-before)
	}
	if err := e.SMTP.Start(); err != nil {
		t.Fatal(err)
	}

	want := []struct{ to, subject string }{
		{"alice@example.test", "New backup codes were created for your account"},
		{"alice@example.test", "Your account no longer remembers your devices"},
		{"boss@example.test", "Alert: E-mail deliveries keep failing"},
	}
	for _, w := range want {
		e.waitMail(t, w.to, w.subject)
	}
	e.queueIdle(t)
	got := map[string]int{}
	for _, m := range e.SMTP.Messages()[before:] {
		got[strings.Join(m.To, ",")+" | "+m.Subject]++
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%d copies of %s after the outage, want 1", n, k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("mails after the outage: %v, want exactly %v", got, want)
	}
	if dl, err := delivery.DeadLetters(context.Background(), e.App.Redis, 64, 100); err != nil || len(dl) != 0 {
		t.Errorf("dead letters after the outage: %v %v, want none", dl, err)
	}
}

func TestNotifyRejectedRecipientIsNotRetried(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	const bad = "gone@example.test"
	managers := []string{"boss@example.test", bad, "deputy@example.test"}
	e.setManagers(t, managers...)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	for _, to := range managers {
		e.waitMail(t, to, "The two-factor policy of acme was changed")
	}
	e.waitMail(t, "alice@example.test", "Two-factor authentication by text message was turned on")
	e.queueIdle(t)

	e.SMTP.Reject(bad) // 550 to RCPT TO from now on
	conns, msgs := e.SMTP.Connections(), len(e.SMTP.Messages())
	e.Must(t, 200, "POST", "/v1/admin/users/alice/reset", e.MgrKey, map[string]any{"reason": "support ticket 4711"})

	// The other recipients' mails arrive.
	e.waitMail(t, "alice@example.test", "An administrator reset two-factor authentication on your account")
	e.waitMail(t, "boss@example.test", "Two-factor authentication was reset for user alice")
	e.waitMail(t, "deputy@example.test", "Two-factor authentication was reset for user alice")
	e.queueIdle(t)

	dl, err := delivery.DeadLetters(context.Background(), e.App.Redis, 64, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) == 0 {
		t.Fatalf("no dead letter for the mail refused with 550")
	}
	for _, d := range dl {
		if d.Kind != "notify" || d.Tenant != e.Tenant || d.Attempt != 0 || !strings.Contains(d.Error, "550") {
			t.Errorf("dead letter %+v: want a notify job of tenant %s dead-lettered at its first attempt with the 550", d, e.Tenant)
		}
	}
	// One SMTP connection per job, none for a retry: every connection
	// since the reject either delivered a mail or was the refused one.
	delivered := len(e.SMTP.Messages()) - msgs
	if c := e.SMTP.Connections() - conns; c != delivered+len(dl) {
		t.Errorf("%d SMTP connections for %d delivered mails and %d refused ones: a refused mail was retried", c, delivered, len(dl))
	}
	for _, m := range e.SMTP.Messages()[msgs:] {
		if slices.Contains(m.To, bad) {
			t.Errorf("mail %q reached the refused address", m.Subject)
		}
	}
	for _, to := range []string{"alice@example.test", "boss@example.test", "deputy@example.test"} {
		subj := "Two-factor authentication was reset for user alice"
		if to == "alice@example.test" {
			subj = "An administrator reset two-factor authentication on your account"
		}
		if n := ntfCount(e.SMTP, to, subj); n != 1 {
			t.Errorf("%d copies of %q to %s, want 1", n, subj, to)
		}
	}
}
