package prompt_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
