package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "stepup-go-client/1"

// maxAnswer bounds how much of an answer is read; the API's largest
// answers (a page of 1000 audit events) are far below it.
const maxAnswer = 32 << 20

// Client calls one stepup server with one key. A Client is safe for
// concurrent use.
type Client struct {
	base string // without a trailing slash
	key  string
	hc   *http.Client
	ua   string

	failMode FailMode
	timeout  time.Duration // per call; 0 = the context's
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc (for
// timeouts, proxies, TLS settings or a test transport). The default is
// http.DefaultClient; a nil hc keeps it. Whatever hc's CheckRedirect, the
// Client follows no redirect (see New).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.ua = ua }
}

// New returns a Client for the server at baseURL (such as
// "https://stepup.example.com" or "http://127.0.0.1:8080"; a path prefix
// is kept) that authenticates with key, an app, manager or operator key.
// A malformed baseURL is reported by the first call.
//
// A redirect is an *APIError with the redirect's status, never followed:
// Go's HTTP client would repeat a DELETE or PUT after a 301 or 302 as a
// GET, whose success would pass for the change's (an erased user, a new
// policy) while nothing changed. A base URL that redirects (http:// in
// front of an https-only proxy) is a mistake to fix, not to follow.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), key: key, hc: http.DefaultClient, ua: DefaultUserAgent,
		failMode: FailSecure, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c
}

// BaseURL returns the server's base URL as given to New.
func (c *Client) BaseURL() string { return c.base }

// Do sends one request and decodes the answer; it is the escape hatch for
// an endpoint this package has no method for. path starts with "/" and is
// joined to the base URL as is (escape its segments with url.PathEscape).
// in, when not nil, is sent as the JSON body: a json.RawMessage or []byte
// as is, anything else marshalled. out, when not nil, receives the answer's
// JSON (a *json.RawMessage receives it verbatim). A non-2xx answer is an
// *APIError. The call is bounded by the client's timeout (DefaultTimeout
// unless WithTimeout); when stepup gave no answer the error matches
// ErrUnavailable.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	u, err := url.Parse(c.base + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("stepup client: bad base URL %q: want http(s)://host[:port]", c.base)
	}
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case json.RawMessage:
		body = bytes.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("stepup client: encoding the %s %s body: %w", method, path, err)
		}
		body = bytes.NewReader(j)
	}
	callCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(callCtx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("stepup client: %w", err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		// err names the method and URL already; the key is in a header,
		// never in the URL, so it cannot leak here.
		return unavailable(ctx, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return unavailable(ctx, fmt.Errorf("reading the answer to %s %s: %w", method, path, err))
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return parseError(res, raw)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("stepup client: decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// seg escapes one path segment. PathEscape leaves "." and ".." as they
// are, which a server resolves as "here" and "up" (Go's ServeMux answers
// with a redirect to the resolved path, which the HTTP client follows as
// a GET): escaped, they reach the API as ids.
func seg(s string) string {
	if s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return url.PathEscape(s)
}

// Actor is the optional context a host app passes with a lifecycle call,
// so the e-mail telling the user of the change can say where it came from.
// The zero Actor sends nothing.
type Actor struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Health reports whether the server answers GET /healthz; it needs no key.
func (c *Client) Health(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/healthz", nil, nil)
}
