package prompt_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/pagetest"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// appKey makes another app key of the site's tenant (operator API): its
// id and secret.
func (s site) appKey(t *testing.T, label string) (id, secret string) {
	t.Helper()
	k := s.Must(t, 201, "POST", "/v1/tenants/"+s.tenant+"/keys", apptest.OperatorKey, map[string]any{"kind": "app", "label": label})
	return k["id"].(string), k["secret"].(string)
}

// loginCode takes a login of user (who has an SMS factor) through a
// prompt made with key, up to the stepup_code the browser brings back.
func (s site) loginCode(t *testing.T, key, user string) string {
	t.Helper()
	seen := len(s.Twilio.Messages())
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", key, map[string]any{"user_id": user, "ip": "203.0.113.9",
		"user_agent": ua, "device_id": "laptop-1"})
	p := s.Must(t, 201, "POST", "/v1/prompts", key, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback()})
	c, csrf := openNoFollow(t, p["url"].(string))
	res := post(t, c, p["url"].(string)+"/verify", url.Values{"csrf": {csrf}, "code": {s.SMSCode(t, phone, seen)}})
	m := regexp.MustCompile(`stepup_code=([^&]+)`).FindStringSubmatch(res.Header.Get("Location"))
	if m == nil {
		t.Fatalf("login page: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	return m[1]
}

// fetch opens u in c and returns the status and the page.
func fetch(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	return pagetest.Page{Client: c, URL: u}.Get(t)
}

// TestPromptOfRevokedKey: once the app key that made a prompt is revoked
// (the host app's key leaked and was rotated), the prompt is dead: its
// page no longer opens, an open page's forms and passkey ceremonies are
// refused (no factor is set up for the user without one), and a code it
// already sent back is not exchanged, by any key.
func TestPromptOfRevokedKey(t *testing.T) {
	s := newSite(t)
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"allowed_channels": []string{"passkey", "sms", "totp", "email"}})
	id, key := s.appKey(t, "leaked")
	s.Must(t, 200, "PUT", "/v1/users/eve", s.app, map[string]any{"email": "eve@example.test"})
	prompt := func() string {
		return s.Must(t, 201, "POST", "/v1/prompts", key, map[string]any{"user_id": "eve", "action": "manage",
			"return_url": s.host.callback()})["url"].(string)
	}
	open := pagetest.Open(t, prompt()) // an enrolment page open before
	unopened := prompt()
	s.enrolSMS(t, "lou")
	code := s.loginCode(t, key, "lou") // sent back, not exchanged yet

	s.Must(t, 204, "DELETE", "/v1/tenants/"+s.tenant+"/keys/"+id, apptest.OperatorKey, nil)

	dead := func(what string, st int, body string) {
		t.Helper()
		if st != http.StatusGone || !strings.Contains(body, "no longer valid") {
			t.Errorf("%s after the key was revoked: %d %.300s", what, st, body)
		}
	}
	st, body := fetch(t, http.DefaultClient, unopened)
	dead("open a new page", st, body)
	st, body = fetch(t, open.Client, open.URL)
	dead("reload an open page", st, body)
	st, body = seedPost(t, open.Client, open.URL, "totp", open.CSRF, nil)
	dead("set up an authenticator app", st, body)
	seen := len(s.Twilio.Messages())
	st, body = seedPost(t, open.Client, open.URL, "sms", open.CSRF, url.Values{"phone": {"+61491570157"}})
	dead("set up a phone", st, body)
	st, body = seedPost(t, open.Client, open.URL, "done", open.CSRF, nil)
	dead("continue", st, body)
	if st, res := pagetest.NewSoftKey(t).Register(t, open, "Key", 1); st == 200 || errCode(res) != "prompt_revoked" {
		t.Errorf("add a passkey after the key was revoked: %d %v", st, res)
	}
	if n := len(s.Twilio.Messages()); n != seen {
		t.Errorf("%d text messages sent from a revoked key's page", n-seen)
	}
	if u := s.Must(t, 200, "GET", "/v1/users/eve", s.app, nil); u["enrolled"] != false || len(u["factors"].([]any)) != 0 {
		t.Errorf("eve after the key was revoked: %v", u)
	}
	if r := s.Do(t, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": code}); r.Status != 404 {
		t.Errorf("exchange of a revoked key's prompt's code: %d %s", r.Status, r.Raw)
	}
}

// TestPromptOfLiveKey: revoking one app key leaves the prompts of the
// tenant's other keys working, through to the exchange.
func TestPromptOfLiveKey(t *testing.T) {
	s := newSite(t)
	_, key := s.appKey(t, "current")
	old, _ := s.appKey(t, "old")
	s.Must(t, 200, "PUT", "/v1/users/eve", s.app, map[string]any{"email": "eve@example.test"})
	p := s.Must(t, 201, "POST", "/v1/prompts", key, map[string]any{"user_id": "eve", "action": "manage",
		"return_url": s.host.callback()})["url"].(string)
	page := pagetest.Open(t, p)
	s.enrolSMS(t, "lou")
	s.Must(t, 204, "DELETE", "/v1/tenants/"+s.tenant+"/keys/"+old, apptest.OperatorKey, nil)

	if st, body := fetch(t, page.Client, p); st != 200 {
		t.Fatalf("reload: %d %.300s", st, body)
	}
	if st, body := seedPost(t, page.Client, p, "totp", page.CSRF, nil); st != 200 || !seedSecretRe.MatchString(body) {
		t.Fatalf("set up an authenticator app: %d %.300s", st, body)
	}
	code := s.loginCode(t, key, "lou")
	if res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": code}); res["user_id"] != "lou" {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptBeforeKeysRecorded: a prompt made before prompts recorded
// their key (no key in its record) lives out its ten minutes, whatever
// happens to the tenant's keys.
func TestPromptBeforeKeysRecorded(t *testing.T) {
	env := apptest.New(t, apptest.Options{Redis: apptest.Single, Localhost: true})
	tn, app, mgr := env.Tenant(t, "Acme")
	h := newHost(t)
	env.Must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{"return_urls": []string{h.callback()}})
	s := site{Env: env, tenant: tn, app: app, mgr: mgr, host: h}
	id, key := s.appKey(t, "old")
	s.Must(t, 200, "PUT", "/v1/users/eve", s.app, map[string]any{"email": "eve@example.test"})
	p := s.Must(t, 201, "POST", "/v1/prompts", key, map[string]any{"user_id": "eve", "action": "manage",
		"return_url": s.host.callback()})["url"].(string)
	pid := p[strings.LastIndex(p, "/")+1:]
	sh, _ := keyspace.ParseID("pr_", pid)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addrs[0]})
	defer rdb.Close()
	if n, err := rdb.HDel(context.Background(), keyspace.Prompt(sh, pid), "key").Result(); err != nil || n != 1 {
		t.Fatalf("forget the prompt's key: %d %v", n, err)
	}
	s.Must(t, 204, "DELETE", "/v1/tenants/"+s.tenant+"/keys/"+id, apptest.OperatorKey, nil)

	page := pagetest.Open(t, p)
	if st, body := seedPost(t, page.Client, p, "totp", page.CSRF, nil); st != 200 || !seedSecretRe.MatchString(body) {
		t.Fatalf("set up an authenticator app: %d %.300s", st, body)
	}
}
