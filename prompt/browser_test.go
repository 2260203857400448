package prompt_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
)

const (
	phone = "+61491570156"
	ua    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)

// host is a fake host app: it records where the browser came back to.
type host struct {
	srv  *httptest.Server
	mu   sync.Mutex
	back []url.Values
}

func newHost(t *testing.T) *host {
	h := &host{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser's favicon
			return
		}
		h.mu.Lock()
		h.back = append(h.back, r.URL.Query())
		h.mu.Unlock()
		_, _ = w.Write([]byte("<!doctype html><title>Host app</title><p>Back at the host app</p>"))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *host) callback() string { return h.srv.URL + "/callback" }

// wait returns the query of the n-th return (1-based) to the host.
func (h *host) wait(t *testing.T, n int) url.Values {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		if len(h.back) >= n {
			q := h.back[n-1]
			h.mu.Unlock()
			return q
		}
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the browser did not come back to the host app (%d returns)", n)
	return nil
}

// site is stepupd with a tenant whose host app is h.
type site struct {
	*apptest.Env
	tenant, app, mgr string
	host             *host
	now              *atomic.Int64 // the engine's clock offset, ns
}

func newSite(t *testing.T) site { return newSiteOn(t, apptest.Embedded) }

// newSiteOn is newSite on a Redis kind of apptest's.
func newSiteOn(t *testing.T, redis string) site {
	var off atomic.Int64
	env := apptest.New(t, apptest.Options{Redis: redis, Localhost: true,
		Clock: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
	tn, app, mgr := env.Tenant(t, "Acme")
	h := newHost(t)
	env.Must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{"challenge": "every_login",
		"return_urls": []string{h.callback()}, "accent_color": "#0b6e4f"})
	return site{Env: env, tenant: tn, app: app, mgr: mgr, host: h, now: &off}
}

// enrolSMS gives user an SMS factor through the API.
func (s site) enrolSMS(t *testing.T, user string) {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.app, map[string]any{"email": user + "@example.test"})
	seen := len(s.Twilio.Messages())
	ch := s.Must(t, 201, "POST", "/v1/users/"+user+"/sms", s.app, map[string]any{"phone": phone})["challenge"].(map[string]any)
	code := s.SMSCode(t, phone, seen)
	s.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", s.app, map[string]any{"code": code})
}

// login evaluates a login of user and asks for its prompt.
func (s site) login(t *testing.T, user, state string) (loginID, promptURL string) {
	t.Helper()
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": user, "ip": "203.0.113.9",
		"user_agent": ua, "device_id": "laptop-1"})
	if ev["decision"] != "challenge" {
		t.Fatalf("evaluate: %v", ev)
	}
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": state})
	return ev["login_id"].(string), p["url"].(string)
}

// enrolLogin is an `enroll` login of user (with an address, user@example.test)
// under a required policy without grace logins, and its prompt.
func (s site) enrolLogin(t *testing.T, user, state string) (loginID, promptURL string) {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"mode": "required", "grace_logins": 0})
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.app, map[string]any{"email": user + "@example.test"})
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": user, "ip": "203.0.113.9", "user_agent": ua})
	if ev["decision"] != "enroll" {
		t.Fatalf("evaluate: %v", ev)
	}
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": state})
	return ev["login_id"].(string), p["url"].(string)
}

// browser starts headless Chromium, or skips where there is none (make
// test installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make test installs it)")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(420, 860))...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// By visible labels and texts, as a person finds them.
func button(text string) chromedp.Search {
	return chromedp.Search(`//button[normalize-space()="` + text + `"]`)
}

func field(label string) chromedp.Search {
	return chromedp.Search(`//input[@id=//label[normalize-space()="` + label + `"]/@for]`)
}

func checkbox(label string) chromedp.Search {
	return chromedp.Search(`//label[normalize-space()="` + label + `"]/input`)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, pageText(t, ctx))
	}
}

func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("page text: %v", err)
	}
	return s
}

// shot checks the page's labels and headings (a11y) and saves it under
// docs/prompt/ when STEPUP_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	a11y(t, ctx, name)
	if os.Getenv("STEPUP_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 makes a PNG; any other quality, a JPEG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "prompt", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPromptSMSLogin completes an SMS login challenge on the hosted page
// with "Remember this device", and exchanges the code once.
func TestPromptSMSLogin(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "alice")
	ctx := browser(t)
	seen := len(s.Twilio.Messages())
	loginID, u := s.login(t, "alice", "xyz-1")
	code := s.SMSCode(t, phone, seen)

	do(t, ctx, "open the prompt", chromedp.Navigate(u), chromedp.WaitVisible(field("Code")))
	text := pageText(t, ctx)
	for _, want := range []string{"Verify it's you", "Acme", "+61", "Send a new code", "Use another method"} {
		if want == "Use another method" {
			continue // alice has only SMS: nothing else to offer
		}
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, code) {
		t.Error("the page shows the code")
	}
	shot(t, ctx, "login-challenge")

	do(t, ctx, "wrong code", chromedp.SendKeys(field("Code"), "000000"), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#status.error")))
	if text := pageText(t, ctx); !strings.Contains(text, "That code is not right") {
		t.Errorf("after a wrong code: %s", text)
	}
	do(t, ctx, "right code", chromedp.SendKeys(field("Code"), code), chromedp.Click(checkbox("Remember this device")),
		chromedp.Click(button("Verify")))
	q := s.host.wait(t, 1)
	if q.Get("state") != "xyz-1" || q.Get("stepup_code") == "" || q.Get("error") != "" {
		t.Fatalf("return: %v", q)
	}

	// A foreign tenant's app key cannot exchange it (and does not burn it).
	_, otherApp, _ := s.Tenant(t, "Other")
	if r := s.Do(t, "POST", "/v1/prompts/exchange", otherApp, map[string]any{"code": q.Get("stepup_code")}); r.Status != 404 {
		t.Fatalf("foreign exchange: %d %s", r.Status, r.Raw)
	}
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "alice" || res["login_id"] != loginID || res["verified"] != true || res["method"] != "sms" || res["device_token"] == nil {
		t.Fatalf("exchange: %v", res)
	}
	if r := s.Do(t, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")}); r.Status != 404 {
		t.Fatalf("replayed exchange: %d %s", r.Status, r.Raw)
	}
	// The device is remembered: the next login with its token is allowed.
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": "alice", "ip": "203.0.113.9",
		"user_agent": ua, "device_id": "laptop-1", "device_token": res["device_token"]})
	if ev["decision"] != "allow" {
		t.Errorf("remembered device: %v", ev)
	}
	// Opening the used prompt again shows a clear page and sends back an error.
	r := s.Do(t, "GET", strings.TrimPrefix(u, s.URL), "", nil)
	if r.Status != 410 || !strings.Contains(string(r.Raw), "already used") || !strings.Contains(string(r.Raw), "error=used") {
		t.Errorf("second open: %d %s", r.Status, r.Raw)
	}
}

// TestPromptRefusals: a return_url that is not registered, an expired
// prompt.
func TestPromptRefusals(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "bob")
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": "bob", "ip": "203.0.113.9", "user_agent": ua})
	for _, bad := range []string{"https://evil.example/callback", s.host.srv.URL + "/callbackx", strings.Replace(s.host.callback(), "http:", "https:", 1)} {
		r := s.Do(t, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": bad})
		if r.Status != 400 || !strings.Contains(string(r.Raw), "return_url_not_registered") {
			t.Errorf("return_url %s: %d %s", bad, r.Status, r.Raw)
		}
	}
	// Another tenant cannot prompt for this login.
	_, otherApp, _ := s.Tenant(t, "Other")
	if r := s.Do(t, "POST", "/v1/prompts", otherApp, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback()}); r.Status != 404 {
		t.Errorf("foreign login: %d %s", r.Status, r.Raw)
	}

	ctx := browser(t)
	_, u := s.login(t, "bob", "late")
	s.now.Store(int64(11 * time.Minute))
	do(t, ctx, "open the expired prompt", chromedp.Navigate(u), chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "expired")]`)))
	shot(t, ctx, "expired")
	q := s.host.wait(t, 1) // the page sends the browser back
	if q.Get("error") != "expired" || q.Get("state") != "late" || q.Get("stepup_code") != "" {
		t.Errorf("return: %v", q)
	}
}

// authenticator gives the browser a virtual platform authenticator that
// verifies its user without asking.
func authenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true, IsUserVerified: true,
			AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatal(err)
	}
}

// TestPromptPasskey registers a passkey on the settings page (after a
// step-up by SMS) with Chrome's virtual authenticator, then uses it for a
// later login.
func TestPromptPasskey(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "carol")
	ctx := browser(t)
	authenticator(t, ctx)

	seen := len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "carol", "action": "manage", "return_url": s.host.callback(), "state": "m1"})
	do(t, ctx, "open settings", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	shot(t, ctx, "manage-step-up")
	code := s.SMSCode(t, phone, seen)
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Add a passkey")))
	shot(t, ctx, "manage-factors")
	do(t, ctx, "add a passkey", chromedp.Click(button("Add a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="Passkey added"]`)))
	shot(t, ctx, "passkey-added")
	user := s.Must(t, 200, "GET", "/v1/users/carol", s.app, nil)
	keys, _ := user["passkeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("passkeys after registration: %v", user)
	}
	do(t, ctx, "done", chromedp.Click(button("Continue")))
	if q := s.host.wait(t, 1); q.Get("state") != "m1" || q.Get("stepup_code") == "" {
		t.Fatalf("settings return: %v", q)
	}
	// The queue's worker sends it.
	for deadline := time.Now().Add(10 * time.Second); !mailAbout(s.SMTP.Messages(), "passkey"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no mail about the new passkey")
			break
		}
	}

	// A later login offers the passkey and accepts it.
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": "carol", "ip": "203.0.113.9", "user_agent": ua, "device_id": "laptop-2"})
	chs, _ := ev["challenge"].(map[string]any)["available_channels"].([]any)
	if !containsAny(chs, "passkey") {
		t.Errorf("challenge channels: %v", ev["challenge"])
	}
	lp := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": "l2"})
	do(t, ctx, "open login", chromedp.Navigate(lp["url"].(string)), chromedp.WaitVisible(button("Use a passkey")))
	shot(t, ctx, "login-passkey")
	do(t, ctx, "use the passkey", chromedp.Click(button("Use a passkey")))
	q := s.host.wait(t, 2)
	if q.Get("stepup_code") == "" {
		t.Fatalf("login return: %v; page: %s", q, pageText(t, ctx))
	}
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "carol" || res["login_id"] != ev["login_id"] || res["method"] != "passkey" {
		t.Fatalf("exchange: %v", res)
	}
}

func mailAbout(ms []smtptest.Message, word string) bool {
	for _, m := range ms {
		if strings.Contains(strings.ToLower(m.Subject), word) {
			return true
		}
	}
	return false
}

func containsAny(xs []any, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
