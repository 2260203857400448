package prompt

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// prompts is what the pages need of engine.Prompts.
type prompts interface {
	Open(ctx context.Context, id, secret string, actor engine.Actor) (string, error)
	Page(ctx context.Context, id, secret string) (engine.PromptPage, error)
	Verify(ctx context.Context, id, secret, code string, remember bool, actor engine.Actor) (string, error)
	Resend(ctx context.Context, id, secret string) error
	Switch(ctx context.Context, id, secret string, channel engine.Channel, actor engine.Actor) error
	Cancel(ctx context.Context, id, secret string) (string, error)
	Done(ctx context.Context, id, secret string) (string, error)
	PasskeyLoginBegin(ctx context.Context, id, secret string) ([]byte, error)
	PasskeyLoginFinish(ctx context.Context, id, secret string, response []byte, remember bool, actor engine.Actor) (string, error)
	PasskeyRegisterBegin(ctx context.Context, id, secret string) ([]byte, error)
	PasskeyRegisterFinish(ctx context.Context, id, secret string, response []byte, name string, actor engine.Actor) ([]string, error)
	RemovePasskey(ctx context.Context, id, secret, passkey string, actor engine.Actor) error
	StartSMS(ctx context.Context, id, secret, phone string, actor engine.Actor) error
	StartTOTP(ctx context.Context, id, secret string, actor engine.Actor) error
	StartPhoneChange(ctx context.Context, id, secret, phone string, actor engine.Actor) error
	StartBackupCodes(ctx context.Context, id, secret string, actor engine.Actor) error
	StartEmail(ctx context.Context, id, secret string, actor engine.Actor) error
	StartDisable(ctx context.Context, id, secret string, actor engine.Actor) error
	VerifyChange(ctx context.Context, id, secret, code string, actor engine.Actor) (engine.ChangeDone, error)
	VerifyChangePasskey(ctx context.Context, id, secret string, response []byte, actor engine.Actor) (engine.ChangeDone, error)
	AbandonChange(ctx context.Context, id, secret string) error
}

// Options configure the pages. The zero value of each field means its
// default.
type Options struct {
	Logger *slog.Logger
	// Secure marks the session cookie Secure (public_url is https).
	Secure bool
	// ClientIP is the browser's address (trusted_proxies applied, as the
	// API's); default the connection's remote address.
	ClientIP func(*http.Request) string
}

// Handler serves the hosted prompt under /prompt/.
type Handler struct {
	p   prompts
	opt Options
	log *slog.Logger
	tpl *template.Template
	mux *http.ServeMux
}

// New returns the pages over p (an *engine.Prompts).
func New(p prompts, opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.ClientIP == nil {
		opt.ClientIP = remoteIP
	}
	h := &Handler{p: p, opt: opt, log: opt.Logger}
	h.tpl = template.Must(template.New("").Funcs(template.FuncMap{"channelName": channelName,
		"changeTitle": changeTitle, "changeHint": changeHint, "pngData": pngData, "spaced": spaced}).ParseFS(templateFS, "templates/*.html"))
	assets, _ := fs.Sub(assetFS, "assets")
	m := http.NewServeMux()
	m.Handle("GET /prompt/assets/", http.StripPrefix("/prompt/assets/", http.FileServerFS(assets)))
	m.HandleFunc("GET /prompt/{id}", h.show)
	m.HandleFunc("POST /prompt/{id}/verify", h.form(h.verify))
	m.HandleFunc("POST /prompt/{id}/resend", h.form(h.resend))
	m.HandleFunc("POST /prompt/{id}/switch", h.form(h.switchChannel))
	m.HandleFunc("POST /prompt/{id}/cancel", h.form(h.cancel))
	m.HandleFunc("POST /prompt/{id}/done", h.form(h.done))
	m.HandleFunc("POST /prompt/{id}/passkeys/remove", h.form(h.removePasskey))
	m.HandleFunc("POST /prompt/{id}/sms", h.form(h.startSMS))
	m.HandleFunc("POST /prompt/{id}/totp", h.form(h.startTOTP))
	m.HandleFunc("POST /prompt/{id}/phone", h.form(h.startPhoneChange))
	m.HandleFunc("POST /prompt/{id}/backup-codes", h.form(h.startBackupCodes))
	m.HandleFunc("POST /prompt/{id}/email", h.form(h.startEmail))
	m.HandleFunc("POST /prompt/{id}/disable", h.form(h.startDisable))
	m.HandleFunc("POST /prompt/{id}/change/verify", h.verifyChange)
	m.HandleFunc("POST /prompt/{id}/change/back", h.form(h.abandonChange))
	m.HandleFunc("POST /prompt/{id}/passkey/login/begin", h.api(h.loginBegin))
	m.HandleFunc("POST /prompt/{id}/passkey/login/finish", h.api(h.loginFinish))
	m.HandleFunc("POST /prompt/{id}/passkey/register/begin", h.api(h.registerBegin))
	m.HandleFunc("POST /prompt/{id}/passkey/register/finish", h.api(h.registerFinish))
	h.mux = m
	return h
}

// ServeHTTP serves a request under /prompt/ with the pages' security
// headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Over TLS, or behind a proxy that terminates it (an https public
	// URL), as the console.
	if r.TLS != nil || h.opt.Secure {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, "/prompt/assets/") {
		hd.Set("Cache-Control", "no-store")
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.mux.ServeHTTP(w, r)
}

const cookieName = "stepup_prompt"

// csrfToken binds a form to the browser's prompt session: only the
// holder of the (HttpOnly) session secret can compute it.
func csrfToken(id, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func secretOf(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

func (h *Handler) actorOf(r *http.Request) engine.Actor {
	return engine.Actor{Kind: message.ActorUser, IP: h.opt.ClientIP(r), UserAgent: r.UserAgent()}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return host
}

// show opens the prompt (claiming it for this browser) and renders it.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	secret, err := h.p.Open(r.Context(), id, secretOf(r), h.actorOf(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: secret, Path: "/prompt/" + id, HttpOnly: true,
		Secure: h.opt.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 3600})
	notice := ""
	if r.URL.Query().Get("added") == "1" {
		notice = "Passkey added"
	}
	if r.URL.Query().Get("sent") == "1" {
		notice = "A new code is on its way."
	}
	h.render(w, r, id, secret, view{status: http.StatusOK, notice: notice})
}

// view is what a page shows beyond the prompt's state: an answer's
// status, an error (next to field, or at the top), a notice, the backup
// codes of a change, shown once, and that 2FA was just turned off.
type view struct {
	status             int
	err, field, notice string
	codes              []string
	off                bool
}

// render writes the prompt's page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, id, secret string, v view) {
	pg, err := h.p.Page(r.Context(), id, secret)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	n := base64.RawStdEncoding.EncodeToString(nonce)
	img := "'self'"
	if u, err := url.Parse(pg.LogoURL); err == nil && pg.LogoURL != "" {
		img += " " + u.Scheme + "://" + u.Host
	}
	if pg.TOTP != nil {
		img += " data:" // the QR code, rendered here
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-"+n+"'; img-src "+img+
		"; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	accent := pg.AccentColor
	if accent == "" {
		accent = "#1a56db"
	}
	data := map[string]any{"ID": id, "CSRF": csrfToken(id, secret), "Page": pg, "Nonce": n, "Accent": accent,
		"OnAccent": onAccent(accent), "Title": title(pg), "Notice": v.notice, "Codes": v.codes, "Off": v.off,
		"PasskeyAllowed": slices.Contains(pg.Channels, engine.ChannelPasskey)}
	offers := settingsOffers(pg)
	for k, x := range offers {
		data[k] = x
	}
	data["FieldError"] = map[string]string{}
	if offers[fieldOffer[v.field]] {
		data["FieldError"] = map[string]string{v.field: v.err}
	} else {
		data["Error"] = v.err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(v.status)
	if err := h.tpl.ExecuteTemplate(w, "page", data); err != nil {
		h.log.Error("prompt page", "err", err)
	}
}

func title(pg engine.PromptPage) string {
	switch {
	case pg.Kind == engine.PromptEnroll:
		return "Protect your account"
	case pg.Kind == engine.PromptManage && pg.Verified:
		return "Two-step verification"
	}
	return "Verify it's you"
}

// fail answers an error: a closed prompt's page sends the browser back
// with its error; anything else is shown on the page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := engine.AsError(err)
	if e.Kind == engine.KindInternal {
		h.log.ErrorContext(r.Context(), "prompt", "err", err)
	}
	redirect, _ := e.Meta["redirect"].(string)
	status := http.StatusNotFound
	title, msg := "Page not found", "This sign-in page does not exist. Go back to the application and sign in again."
	switch e.Code {
	case engine.ErrPromptExpired.Code:
		status, title, msg = http.StatusGone, "This page has expired", "Sign-in pages are valid for 10 minutes. You are being sent back to the application to start again."
	case engine.ErrPromptClosed.Code:
		status, title, msg = http.StatusGone, "This page was already used", "Each sign-in page works once. You are being sent back to the application to start again."
	case engine.ErrPromptRevoked.Code:
		status, title, msg = http.StatusGone, "This page is no longer valid", "The application withdrew this sign-in page. You are being sent back to the application to start again."
	case engine.ErrPromptNotFound.Code:
	default:
		switch e.Kind {
		case engine.KindRateLimited:
			// A send limit on the page's first code, say: the person can
			// do nothing on the page but wait. The page is not used up
			// (Open gave its claim back): a reload tries again.
			status, title, msg = http.StatusTooManyRequests, "Please wait a moment", "Too many codes were asked for just now. Wait a few minutes, then reload this page."
			if ra, ok := e.Meta["retry_after"].(int); ok && ra > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(ra))
			}
		case engine.KindUnavailable:
			// The SMS kill switch, or the store out of reach.
			status, title, msg = http.StatusServiceUnavailable, "Temporarily unavailable", "Sign-in codes cannot be sent right now. Wait a few minutes, then reload this page."
		default:
			status, title, msg = http.StatusInternalServerError, "Something went wrong", "Please go back to the application and try again."
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = h.tpl.ExecuteTemplate(w, "closed", map[string]any{"Title": title, "Message": msg, "Redirect": redirect})
}

// form wraps a form action: the session cookie and its CSRF token are
// required; the action answers where to go ("" = show the page again) or
// an error shown on the page.
func (h *Handler) form(act func(r *http.Request, id, secret string) (string, string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := h.session(w, r)
		if !ok {
			return
		}
		to, notice, err := act(r, id, secret)
		if err != nil {
			h.refused(w, r, id, secret, err)
			return
		}
		if to == "" {
			to = "/prompt/" + id + notice
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	}
}

// session checks a form post's session cookie and CSRF token; on false
// the answer was written.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) (id, secret string, ok bool) {
	id, secret = r.PathValue("id"), secretOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if secret == "" || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(csrfToken(id, secret))) {
		h.forbidden(w, r)
		return "", "", false
	}
	return id, secret, true
}

// fieldError is an action's error that the page shows next to a field.
type fieldError struct {
	field string
	err   error
}

func (f fieldError) Error() string { return f.err.Error() }
func (f fieldError) Unwrap() error { return f.err }

// refused answers a form action's error: a closed prompt sends the
// browser back, anything else is shown on the page (next to its field
// for a fieldError).
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, id, secret string, err error) {
	e := engine.AsError(err)
	if _, ok := e.Meta["redirect"]; ok || e.Kind == engine.KindNotFound && e.Code == engine.ErrPromptNotFound.Code || e.Kind == engine.KindInternal {
		h.fail(w, r, err)
		return
	}
	v := view{status: http.StatusUnprocessableEntity, err: pageMessage(e)}
	var fe fieldError
	if errors.As(err, &fe) {
		v.field = fe.field
	}
	h.render(w, r, id, secret, v)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_ = h.tpl.ExecuteTemplate(w, "closed", map[string]any{"Title": "Please reload the page",
		"Message": "This form is out of date or came from another page. Reload the sign-in page and try again."})
}

// pageMessage is what the page says of a refused action.
func pageMessage(e *engine.Error) string {
	switch e.Code {
	case "invalid_code":
		return "That code is not right. " + strconv.Itoa(toInt(e.Meta["attempts_left"])) + " attempts left."
	case "too_many_attempts":
		return "Too many wrong codes. Go back to the application and sign in again later."
	case "challenge_expired":
		// An expired challenge takes no new code: a login or the page's
		// first step-up starts again at the application (a settings
		// change's expired code leaves the settings to start it again).
		return "The code expired. Go back to the application and start again."
	case engine.ErrChallengeNotFound.Code:
		return "There is no code to check now: it was already used, or the page was reloaded."
	case "rate_limited":
		return "Please wait " + strconv.Itoa(toInt(e.Meta["retry_after"])) + " seconds before asking for a new code."
	}
	return e.Msg
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case float64:
		return int(x)
	}
	return 0
}

func (h *Handler) verify(r *http.Request, id, secret string) (string, string, error) {
	to, err := h.p.Verify(r.Context(), id, secret, r.PostFormValue("code"), r.PostFormValue("remember") == "1", h.actorOf(r))
	return to, "", err
}

func (h *Handler) resend(r *http.Request, id, secret string) (string, string, error) {
	return "", "?sent=1", h.p.Resend(r.Context(), id, secret)
}

func (h *Handler) switchChannel(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.Switch(r.Context(), id, secret, engine.Channel(r.PostFormValue("channel")), h.actorOf(r))
}

func (h *Handler) cancel(r *http.Request, id, secret string) (string, string, error) {
	to, err := h.p.Cancel(r.Context(), id, secret)
	return to, "", err
}

func (h *Handler) done(r *http.Request, id, secret string) (string, string, error) {
	to, err := h.p.Done(r.Context(), id, secret)
	return to, "", err
}

func (h *Handler) removePasskey(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.RemovePasskey(r.Context(), id, secret, r.PostFormValue("passkey"), h.actorOf(r))
}

// api wraps a JSON action of the page's script: the CSRF token comes in
// X-CSRF-Token; errors are JSON with the engine's code and, for a closed
// prompt, where to go.
func (h *Handler) api(act func(r *http.Request, id, secret string, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, secret := r.PathValue("id"), secretOf(r)
		w.Header().Set("Content-Type", "application/json")
		if secret == "" || !hmac.Equal([]byte(r.Header.Get("X-CSRF-Token")), []byte(csrfToken(id, secret))) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"csrf","message":"reload the page and try again"}}`))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(`{"error":{"code":"too_large","message":"request too large"}}`))
			return
		}
		out, err := act(r, id, secret, body)
		if err != nil {
			e := engine.AsError(err)
			if e.Kind == engine.KindInternal {
				h.log.ErrorContext(r.Context(), "prompt", "err", err)
			}
			body := map[string]any{"code": e.Code, "message": pageMessage(e)}
			if to, ok := e.Meta["redirect"]; ok {
				body["redirect"] = to
			}
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
			return
		}
		if raw, ok := out.([]byte); ok {
			_, _ = w.Write(raw)
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

// ceremonyReq is what the script posts after a ceremony.
type ceremonyReq struct {
	Credential json.RawMessage `json:"credential"`
	Remember   bool            `json:"remember"`
	Name       string          `json:"name"`
}

func parseCeremony(body []byte) (ceremonyReq, error) {
	var req ceremonyReq
	if err := json.Unmarshal(body, &req); err != nil || len(req.Credential) == 0 {
		return req, engine.Invalid("credential", "the browser's answer is missing")
	}
	return req, nil
}

func (h *Handler) loginBegin(r *http.Request, id, secret string, _ []byte) (any, error) {
	return h.p.PasskeyLoginBegin(r.Context(), id, secret)
}

func (h *Handler) loginFinish(r *http.Request, id, secret string, body []byte) (any, error) {
	req, err := parseCeremony(body)
	if err != nil {
		return nil, err
	}
	to, err := h.p.PasskeyLoginFinish(r.Context(), id, secret, req.Credential, req.Remember, h.actorOf(r))
	if err != nil {
		return nil, err
	}
	if to == "" {
		to = "/prompt/" + id
	}
	return map[string]string{"redirect": to}, nil
}

func (h *Handler) registerBegin(r *http.Request, id, secret string, _ []byte) (any, error) {
	return h.p.PasskeyRegisterBegin(r.Context(), id, secret)
}

func (h *Handler) registerFinish(r *http.Request, id, secret string, body []byte) (any, error) {
	req, err := parseCeremony(body)
	if err != nil {
		return nil, err
	}
	codes, err := h.p.PasskeyRegisterFinish(r.Context(), id, secret, req.Credential, strings.TrimSpace(req.Name), h.actorOf(r))
	if err != nil {
		return nil, err
	}
	return map[string]any{"added": true, "backup_codes": codes}, nil
}

// channelName is a channel in words.
func channelName(c engine.Channel) string {
	switch c {
	case engine.ChannelSMS:
		return "Text message"
	case engine.ChannelTOTP:
		return "Authenticator app"
	case engine.ChannelEmail:
		return "E-mail"
	case engine.ChannelPasskey:
		return "Passkey"
	}
	return string(c)
}

var errBadColour = errors.New("prompt: not a hex colour")

// onAccent is the text colour on the accent (white or near-black),
// whichever has the higher contrast, so a tenant's colour keeps the
// buttons readable (WCAG AA).
func onAccent(hex string) string {
	l, err := luminance(hex)
	if err != nil {
		return "#ffffff"
	}
	// Contrast with white (1.0) versus with #111111 (~0.0056).
	if (1.05)/(l+0.05) >= (l+0.05)/(0.0056+0.05) {
		return "#ffffff"
	}
	return "#111111"
}

func luminance(hex string) (float64, error) {
	if len(hex) != 7 || hex[0] != '#' {
		return 0, errBadColour
	}
	lin := func(s string) (float64, error) {
		v, err := strconv.ParseUint(s, 16, 8)
		if err != nil {
			return 0, errBadColour
		}
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92, nil
		}
		return math.Pow((c+0.055)/1.055, 2.4), nil
	}
	r, err1 := lin(hex[1:3])
	g, err2 := lin(hex[3:5])
	b, err3 := lin(hex[5:7])
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, err
	}
	return 0.2126*r + 0.7152*g + 0.0722*b, nil
}
