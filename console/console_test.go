package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// clock is a test clock the engine and the console share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a stepupd on a real redis-server with a tenant, its keys and a
// user who logged in once.
type env struct {
	*apptest.Env
	clock                  *clock
	tenant, appKey, mgrKey string
}

func newEnv(t *testing.T, configure func(*config.Config)) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC()}
	e := apptest.New(t, apptest.Options{Redis: apptest.Single, Clock: clk.Now, Configure: func(c *config.Config) {
		c.PublicURL = "http://stepup.example.test" // cookies without Secure, for the plain-HTTP test server
		if configure != nil {
			configure(c)
		}
	}})
	id, app, mgr := e.Tenant(t, "Clinic")
	e.Must(t, 200, "PUT", "/v1/users/alice", app, map[string]any{"email": "alice@example.test", "display_name": "Alice"})
	e.Must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "alice", "ip": "192.0.2.10",
		"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36", "device_id": "laptop-1"})
	return &env{Env: e, clock: clk, tenant: id, appKey: app, mgrKey: mgr}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, url: e.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, body: string(raw), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil, nil) }
func (b *browser) post(path string, form url.Values) page {
	return b.do("POST", path, form, map[string]string{"Origin": b.url})
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the first CSRF token of a page.
func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf token in the page (status %d)", p.status)
	}
	return m[1]
}

// signIn signs in with key and returns the answer to the sign-in POST.
func (b *browser) signIn(key string) page {
	b.t.Helper()
	tok := csrf(b.t, b.get("/console/signin"))
	return b.post("/console/signin", url.Values{"csrf": {tok}, "key": {key}})
}

// mustSignIn signs in and returns the overview's CSRF token.
func (b *browser) mustSignIn(key string) string {
	b.t.Helper()
	if p := b.signIn(key); p.status != http.StatusSeeOther || p.location != "/console/overview" {
		b.t.Fatalf("sign in: %d %q", p.status, p.location)
	}
	p := b.get("/console/overview")
	if p.status != 200 {
		b.t.Fatalf("overview: %d", p.status)
	}
	return csrf(b.t, p)
}
