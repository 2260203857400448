package pagetest

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Page is a browser on one hosted prompt page.
type Page struct {
	Client *http.Client // holds the page's session cookie
	URL    string
	CSRF   string
}

// Open opens a prompt's page like a browser: it claims the prompt and
// keeps its session cookie and CSRF token. The page must answer 200.
func Open(t testing.TB, u string) Page {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	r, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	m := csrfField.FindSubmatch(body)
	if r.StatusCode != 200 || m == nil {
		t.Fatalf("open %s: %d %s", u, r.StatusCode, body)
	}
	return Page{Client: c, URL: u, CSRF: string(m[1])}
}

// API posts JSON to one of the page script's endpoints (path relative to
// the page) and returns the status and the decoded answer.
func (p Page) API(t testing.TB, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", p.URL+path, bytes.NewReader(raw))
	req.Header.Set("X-CSRF-Token", p.CSRF)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return res.StatusCode, m
}

// Get loads the page and returns its status and its text (HTML entities
// unescaped, for matching what a reader sees).
func (p Page) Get(t testing.TB) (int, string) {
	t.Helper()
	res, err := p.Client.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	return read(res)
}

// Post posts one of the page's forms (path relative to the page) with its
// CSRF token, following its redirect back to the page, and returns the
// status and text of where it ended.
func (p Page) Post(t testing.TB, path string, fields url.Values) (int, string) {
	t.Helper()
	if fields == nil {
		fields = url.Values{}
	}
	fields.Set("csrf", p.CSRF)
	res, err := p.Client.PostForm(p.URL+path, fields)
	if err != nil {
		t.Fatal(err)
	}
	return read(res)
}

// Form is Post for its status alone.
func (p Page) Form(t testing.TB, path string, fields url.Values) int {
	t.Helper()
	st, _ := p.Post(t, path, fields)
	return st
}

func read(res *http.Response) (int, string) {
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, html.UnescapeString(string(b))
}

// Origin is the page's origin, as a browser puts it in a ceremony's
// client data.
func (p Page) Origin() string {
	u, _ := url.Parse(p.URL)
	return u.Scheme + "://" + u.Host
}
