package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

// Cookie names: the session's, and the sign-in form's double-submit token
// (there is no session yet to hold a CSRF token).
const (
	sessionCookie = "stepup_console"
	signinCookie  = "stepup_console_signin"
)

// maxForm bounds a form's body.
const maxForm = 64 << 10

// session is what the store keeps of a signed-in manager. KeyHash lets
// every request check that the key still exists (a revoked key ends its
// sessions); the key's secret itself is never kept.
type session struct {
	Tenant  string `json:"t"`
	KeyHash string `json:"k"`
	Label   string `json:"l"`
	CSRF    string `json:"c"`
	idHash  string
}

// newToken returns 32 random bytes, base64url.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// idHash is how a session id is stored: a plain SHA-256 suffices for 32
// random bytes, and a stolen store holds no usable cookie.
func idHash(id string) string {
	s := sha256.Sum256([]byte(id))
	return hex.EncodeToString(s[:])
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (c *Console) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Path, MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || c.opt.SecureCookies, SameSite: http.SameSiteStrictMode}
}

// signInPage shows the sign-in form with a fresh double-submit token.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := newToken()
	http.SetCookie(w, c.cookie(r, signinCookie, tok, 600))
	c.render(w, status, "signin", view{Title: "Sign in", CSRF: tok, Error: msg})
}

// signIn checks a manager key and starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if err := c.parseForm(w, r); err != nil {
		c.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	ck, err := r.Cookie(signinCookie)
	if err != nil || !equal(ck.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		c.fail(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Reload the page and try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("key"))
	if secret == "" {
		c.renderSignIn(w, r, http.StatusUnauthorized, "Enter your manager key.")
		return
	}
	p, err := c.eng.Tenants.AuthenticateFrom(r.Context(), secret, c.opt.ClientIP(r))
	switch {
	case err == nil && p.Kind == engine.KeyManager:
	case err == nil:
		c.renderSignIn(w, r, http.StatusForbidden, "Only a manager key can sign in here; app and operator keys cannot.")
		return
	case engine.AsError(err).Kind == engine.KindRateLimited:
		c.renderSignIn(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address. Wait a minute and try again.")
		return
	case engine.AsError(err).Kind == engine.KindUnauthenticated:
		c.renderSignIn(w, r, http.StatusUnauthorized, "That manager key is not valid.")
		return
	default:
		c.internal(w, r, err)
		return
	}
	// A session this browser held before ends here: its cookie is about
	// to be replaced, and whoever else holds it must not keep it alive.
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" && len(old.Value) <= 100 {
		if err := c.store.DeleteSession(r.Context(), idHash(old.Value)); err != nil {
			c.internal(w, r, err)
			return
		}
	}
	id := newToken()
	s := session{Tenant: p.Tenant, KeyHash: engine.HashSecret(secret), Label: p.Label, CSRF: newToken()}
	data, _ := json.Marshal(s)
	now := c.opt.Clock()
	if err := c.store.PutSession(r.Context(), idHash(id), data, now, c.opt.IdleTimeout, now.Add(c.opt.MaxAge)); err != nil {
		c.internal(w, r, err)
		return
	}
	if err := c.eng.Policies.ConsoleSession(r.Context(), p.Tenant, message.EvConsoleSignIn, c.actor(r, s)); err != nil {
		c.internal(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(r, signinCookie, "", -1))
	http.SetCookie(w, c.cookie(r, sessionCookie, id, int(c.opt.MaxAge.Seconds())))
	http.Redirect(w, r, Path+"/overview", http.StatusSeeOther)
}

// signOut ends the session server-side and forgets the cookie.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s session) {
	if err := c.store.DeleteSession(r.Context(), s.idHash); err != nil {
		c.internal(w, r, err)
		return
	}
	if err := c.eng.Policies.ConsoleSession(r.Context(), s.Tenant, message.EvConsoleSignOut, c.actor(r, s)); err != nil {
		c.internal(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, Path+"/signin", http.StatusSeeOther)
}

// errNoSession means the request has no live session.
var errNoSession = errors.New("console: no session")

// session returns the request's live session: one the store still keeps
// (not idle too long, not past its absolute expiry) whose manager key still
// exists.
func (c *Console) session(ctx context.Context, r *http.Request, touch bool) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return session{}, errNoSession
	}
	h := idHash(ck.Value)
	read := c.store.TouchSession
	if !touch {
		read = c.store.PeekSession
	}
	data, ok, err := read(ctx, h, c.opt.Clock(), c.opt.IdleTimeout)
	if err != nil {
		return session{}, err
	}
	if !ok {
		return session{}, errNoSession
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil {
		return session{}, err
	}
	s.idHash = h
	p, err := c.eng.Tenants.AuthenticateHash(ctx, s.KeyHash)
	if engine.AsError(err).Kind == engine.KindUnauthenticated || err == nil && (p.Kind != engine.KeyManager || p.Tenant != s.Tenant) {
		_ = c.store.DeleteSession(ctx, h) // the key was revoked
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, err
	}
	return s, nil
}

// page wraps a GET handler that needs a session: without one the browser
// goes to the sign-in page.
func (c *Console) page(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return c.withSession(h, true)
}

// poll wraps a GET handler a page calls on its own (the live tail): like
// page, but the request does not count as the manager's activity, so an
// unattended console still ends after the idle timeout.
func (c *Console) poll(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return c.withSession(h, false)
}

func (c *Console) withSession(h func(http.ResponseWriter, *http.Request, session), touch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r.Context(), r, touch)
		if errors.Is(err, errNoSession) {
			http.SetCookie(w, c.cookie(r, sessionCookie, "", -1))
			http.Redirect(w, r, Path+"/signin", http.StatusSeeOther)
			return
		}
		if err != nil {
			c.internal(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	}
}

// form wraps a POST handler: a session, a same-origin request and the
// session's CSRF token, compared in constant time, or 403.
func (c *Console) form(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return c.page(func(w http.ResponseWriter, r *http.Request, s session) {
		if err := c.parseForm(w, r); err != nil {
			c.fail(w, r, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if !equal(s.CSRF, r.PostFormValue("csrf")) || !sameOrigin(r) {
			c.fail(w, r, http.StatusForbidden, "This form did not come from your console session. Reload the page and try again.")
			return
		}
		h(w, r, s)
	})
}

func (c *Console) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	return r.ParseForm()
}

// sameOrigin refuses a request a browser says came from another site:
// Sec-Fetch-Site when sent, else Origin when sent.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// actor is the audit actor of a console change: the manager key's label,
// as through the API.
func (c *Console) actor(r *http.Request, s session) engine.Actor {
	return engine.Actor{Kind: message.ActorManager, IP: c.opt.ClientIP(r), Label: s.Label}
}
