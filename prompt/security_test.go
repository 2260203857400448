package prompt_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// openNoFollow opens a prompt like openPage, in a client that then
// stops at redirects (to read where an action sends the browser).
func openNoFollow(t *testing.T, u string) (*http.Client, string) {
	t.Helper()
	c, csrf := openPage(t, u)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, csrf
}

func post(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	res, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestEnrollPromptAfterFactorAdded: an enrolment page (a settings prompt
// made for a user without a factor) must not act for the user once they
// have a factor it did not set up — no "Continue" to a verified exchange
// code, no passkey added — without proving that factor.
func TestEnrollPromptAfterFactorAdded(t *testing.T) {
	s := newSite(t)
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "victim", "action": "manage",
		"return_url": s.host.callback()})
	s.enrolSMS(t, "victim") // the user sets up 2FA elsewhere while the page waits

	c, csrf := openNoFollow(t, p["url"].(string))
	res := post(t, c, p["url"].(string)+"/done", url.Values{"csrf": {csrf}})
	if to := res.Header.Get("Location"); strings.Contains(to, "stepup_code=") {
		code := regexp.MustCompile(`stepup_code=([^&]+)`).FindStringSubmatch(to)[1]
		x := s.Do(t, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": code})
		t.Fatalf("Continue without proving the user's factor went back with a code (%s): exchange %d %s", to, x.Status, x.Raw)
	}
	req, _ := http.NewRequest("POST", p["url"].(string)+"/passkey/register/begin", nil)
	req.Header.Set("X-CSRF-Token", csrf)
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode == 200 {
		t.Fatal("an enrolment page started adding a passkey to a user who already has a factor")
	}
}

// TestLogoURLCannotInjectCSP: the logo's origin is written into the
// page's Content-Security-Policy, so a logo_url whose host carries ';',
// quotes or '*' must be refused when the policy is saved.
func TestLogoURLCannotInjectCSP(t *testing.T) {
	s := newSite(t)
	for _, logo := range []string{"https://cdn.example;sandbox/logo.png", "https://cdn.example;report-uri/x",
		"https://*/logo.png", "https://'unsafe-inline'/logo.png", "https://a,b/logo.png"} {
		if r := s.Do(t, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"logo_url": logo}); r.Status < 400 {
			t.Errorf("logo_url %q saved (%d)", logo, r.Status)
		}
	}
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"logo_url": "https://cdn.example:8443/logo.png"})
}

// TestPageOpenRefusedByPolicyOrLimit: a settings page whose first code
// cannot be sent (the tenant's SMS kill switch, or a send limit) says so
// with the matching status, not "Something went wrong" with a 500.
func TestPageOpenRefusedByPolicyOrLimit(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "kim")
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"sms_disabled": true})
	pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "kim", "action": "manage", "return_url": s.host.callback()})
	st, body := pagetest.Page{Client: &http.Client{}, URL: pr["url"].(string)}.Get(t)
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "Temporarily unavailable") {
		t.Errorf("settings page with SMS switched off: %d\n%s", st, body)
	}
}

// TestPageOpenRetriedAfterRefusal: a settings page whose first code could
// not be sent (a send limit, the SMS kill switch) is not used up: once the
// cause clears, the same browser's reload — what the page asks for — shows
// the code page with a code sent, while a reload before then is refused
// again and sends nothing. A page that did open stays the first browser's:
// another one (no cookie) gets "already used", and the owner's reload
// sends no second code.
func TestPageOpenRetriedAfterRefusal(t *testing.T) {
	for _, redis := range []string{apptest.Embedded, apptest.Single} {
		t.Run(redis, func(t *testing.T) {
			t.Run("limit", func(t *testing.T) {
				s := newSiteOn(t, redis)
				s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"sms_per_hour": 1})
				s.enrolSMS(t, "kim") // the one SMS of this hour
				s.now.Store(int64(55 * time.Minute))
				pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "kim", "action": "manage", "return_url": s.host.callback()})
				retried(t, s, pr["url"].(string), http.StatusTooManyRequests, "Please wait a moment",
					func() { s.now.Store(int64(61 * time.Minute)) })
			})
			t.Run("kill switch", func(t *testing.T) {
				s := newSiteOn(t, redis)
				s.enrolSMS(t, "kim")
				s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"sms_disabled": true})
				pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "kim", "action": "manage", "return_url": s.host.callback()})
				retried(t, s, pr["url"].(string), http.StatusServiceUnavailable, "Temporarily unavailable",
					func() { s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"sms_disabled": false}) })
			})
		})
	}
}

// retried opens page u in one browser while its first code is refused
// (status, title), clears the cause, and checks the same browser's reload
// then opens it, and nobody else can.
func retried(t *testing.T, s site, u string, status int, title string, clear func()) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	mine := pagetest.Page{Client: &http.Client{Jar: jar}, URL: u}
	seen := len(s.Twilio.Messages())
	for i := range 2 {
		if st, body := mine.Get(t); st != status || !strings.Contains(body, title) || !strings.Contains(body, "reload this page") {
			t.Fatalf("open %d with the first code refused: %d\n%.400s", i+1, st, body)
		}
	}
	if n := len(s.Twilio.Messages()); n != seen {
		t.Fatalf("%d SMS sent while refused", n-seen)
	}
	clear()
	st, body := mine.Get(t)
	if st != 200 || !strings.Contains(body, `name="csrf"`) {
		t.Fatalf("reload once the cause cleared: %d\n%.400s", st, body)
	}
	s.SMSCode(t, phone, seen) // the code was sent
	other := pagetest.Page{Client: &http.Client{}, URL: u}
	if st, body := other.Get(t); st != http.StatusGone || !strings.Contains(body, "already used") {
		t.Fatalf("another browser on the opened page: %d\n%.400s", st, body)
	}
	if st, _ := mine.Get(t); st != 200 {
		t.Fatalf("the owner's reload: %d", st)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(s.Twilio.Messages()); n != seen+1 {
		t.Fatalf("%d SMS sent, want one", n-seen)
	}
}
