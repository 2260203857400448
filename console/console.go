package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Engine is what the console uses of the engine, one small interface per
// flow, declared here where it is used; FromEngine fills it.
type Engine struct {
	Tenants   tenantService
	Policies  policyService
	Lifecycle lifecycleService
}

// FromEngine returns the console's view of an engine.
func FromEngine(e *engine.Engine) Engine {
	return Engine{Tenants: e.Tenants, Policies: e.Policies, Lifecycle: e.Lifecycle}
}

type tenantService interface {
	AuthenticateFrom(ctx context.Context, secret, client string) (engine.Principal, error)
	AuthenticateHash(ctx context.Context, hash string) (engine.Principal, error)
	Tenant(ctx context.Context, id string) (engine.Tenant, error)
}

type policyService interface {
	GetPolicy(ctx context.Context, tenant string) (engine.PolicyView, error)
	PutPolicy(ctx context.Context, tenant string, u engine.PolicyUpdate, actor engine.Actor) (engine.PolicyView, error)
	AdminReset(ctx context.Context, u engine.UserRef, reason string, actor engine.Actor) (engine.UserView, error)
	DisableAll(ctx context.Context, tenant, reason, group string, actor engine.Actor) (engine.DisableAllResult, error)
	Events(ctx context.Context, tenant string, q engine.EventQuery) ([]engine.Event, string, error)
	Overview(ctx context.Context, tenant string) (engine.Overview, error)
	ConsoleSession(ctx context.Context, tenant string, typ message.EventType, actor engine.Actor) error
}

type lifecycleService interface {
	GetUser(ctx context.Context, u engine.UserRef) (engine.UserView, error)
	Devices(ctx context.Context, u engine.UserRef) ([]engine.DeviceView, error)
	RecentLogins(ctx context.Context, u engine.UserRef, n int) ([]engine.LoginView, error)
}

// SessionStore keeps the console's sessions server-side: opaque data under
// the hash of the session id, with an idle and an absolute expiry.
// store/redisstore implements it.
type SessionStore interface {
	PutSession(ctx context.Context, idHash string, data []byte, now time.Time, idle time.Duration, deadline time.Time) error
	TouchSession(ctx context.Context, idHash string, now time.Time, idle time.Duration) ([]byte, bool, error)
	// PeekSession is TouchSession without extending the idle expiry.
	PeekSession(ctx context.Context, idHash string, now time.Time, idle time.Duration) ([]byte, bool, error)
	DeleteSession(ctx context.Context, idHash string) error
}

// DeadLetter is a delivery the queue gave up on, as the operations page
// lists it.
type DeadLetter struct {
	Kind  string // sms, mail, notify
	Error string
	At    time.Time
}

// Options configure a Console. The zero value of each field means its
// default.
type Options struct {
	Logger *slog.Logger
	Clock  func() time.Time // default time.Now
	// IdleTimeout ends a session unused this long, default 30 minutes;
	// MaxAge ends any session this long after sign-in, default 12 hours.
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// ClientIP is the caller's address (failed sign-ins are throttled by
	// it); default the connection's remote address.
	ClientIP func(*http.Request) string
	// SecureCookies marks the session cookie Secure and sends
	// Strict-Transport-Security even on plain HTTP (TLS terminated by a
	// proxy in front); a request over TLS always does.
	SecureCookies bool
	// DeadLetters lists a tenant's dead letters, newest first; nil shows
	// none.
	DeadLetters func(ctx context.Context, tenant string) ([]DeadLetter, error)
}

// Console serves the web console under /console.
type Console struct {
	eng   Engine
	store SessionStore
	opt   Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the console over eng, keeping sessions in store.
func New(eng Engine, store SessionStore, opt Options) (*Console, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 30 * time.Minute
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = 12 * time.Hour
	}
	if opt.ClientIP == nil {
		opt.ClientIP = remoteIP
	}
	c := &Console{eng: eng, store: store, opt: opt, log: opt.Logger}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Path+"/", http.StatusSeeOther) })
	m.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path+"/overview", http.StatusSeeOther)
	})
	m.HandleFunc("GET /console/signin", c.signInPage)
	m.HandleFunc("POST /console/signin", c.signIn)
	m.HandleFunc("POST /console/signout", c.form(c.signOut))
	m.HandleFunc("GET /console/overview", c.page(c.overview))
	m.HandleFunc("GET /console/policy", c.page(c.policyPage))
	m.HandleFunc("POST /console/policy", c.form(c.savePolicy))
	m.HandleFunc("GET /console/users", c.page(c.usersPage))
	m.HandleFunc("POST /console/users/reset", c.form(c.resetUser))
	m.HandleFunc("POST /console/users/disable-all", c.form(c.disableAll))
	m.HandleFunc("GET /console/audit", c.page(c.auditPage))
	// The live tail polls on its own: it does not keep an idle session alive.
	m.HandleFunc("GET /console/audit/rows", c.poll(c.auditRows))
	m.HandleFunc("GET /console/operations", c.page(c.operationsPage))
	m.HandleFunc("POST /console/operations/sms", c.form(c.setSMS))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	c.mux = m
}

// Path is where the console is served.
const Path = "/console"

// ServeHTTP serves the console with its security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Over TLS, or behind a proxy that terminates it (an https public URL).
	if r.TLS != nil || c.opt.SecureCookies {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
