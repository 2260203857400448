package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/tracing"
	"github.com/stepup-auth/stepup/message"
)

// Options configure a Server. The zero value of each field means its
// default.
type Options struct {
	Logger         *slog.Logger
	Registry       *prometheus.Registry // nil = a new registry
	TrustedProxies []string             // CIDRs whose X-Forwarded-For is believed in logs
	// Ready reports readiness beyond the engine's store (GeoIP databases
	// loaded and so on) for /readyz.
	Ready func(ctx context.Context) map[string]any
	// TwilioAuthToken validates the status webhook's signature; empty
	// disables the webhook (404).
	TwilioAuthToken string
	// PublicURL is the base URL Twilio calls, used to rebuild the signed URL.
	PublicURL string
	// TwilioStatusURL, when set (sms.twilio.status_callback_url), is the
	// URL Twilio calls and signs, whatever path forwards it here.
	TwilioStatusURL string
	// ValidateTwilio checks X-Twilio-Signature (delivery/twilio provides it).
	ValidateTwilio func(authToken, url string, params map[string]string, signature string) bool
	// MetricsToken, when set, is the bearer token GET /metrics requires;
	// empty leaves /metrics open.
	MetricsToken string
	// TracerProvider traces each request: a server span named for the
	// method and route pattern (never the path, which can hold a user id),
	// with the status and the caller's tenant, continuing a W3C
	// traceparent sent by the host app. nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Server is the HTTP API.
type Server struct {
	eng     Engine
	opt     Options
	log     *slog.Logger
	router  *gin.Engine
	proxies []*net.IPNet
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	tracer  trace.Tracer
}

// New returns the API over eng.
func New(eng Engine, opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Registry == nil {
		opt.Registry = prometheus.NewRegistry()
	}
	s := &Server{eng: eng, opt: opt, log: opt.Logger, tracer: tracing.Tracer(opt.TracerProvider)}
	for _, p := range opt.TrustedProxies {
		if !strings.Contains(p, "/") {
			if strings.Contains(p, ":") {
				p += "/128"
			} else {
				p += "/32"
			}
		}
		if _, n, err := net.ParseCIDR(p); err == nil {
			s.proxies = append(s.proxies, n)
		}
	}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stepup_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "method", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stepup_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}}, []string{"route"})
	opt.Registry.MustRegister(s.reqs, s.latency)

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// User ids may hold any printable character, "/" included: route on
	// the escaped path and unescape the parameters.
	r.UseRawPath = true
	r.UnescapePathValues = true
	r.RemoveExtraSlash = true
	r.Use(s.observe, s.recover)
	r.NoRoute(func(c *gin.Context) { s.writeError(c, errNotFound) })
	r.NoMethod(func(c *gin.Context) { s.writeError(c, errMethodNotAllowed) })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsAuth, gin.WrapH(promhttp.HandlerFor(opt.Registry, promhttp.HandlerOpts{})))

	v1 := r.Group("/v1")
	op := v1.Group("", s.auth(engine.KeyOperator))
	op.POST("/tenants", s.createTenant)
	op.GET("/tenants", s.listTenants)
	op.POST("/tenants/:tenant/keys", s.createKey)
	op.GET("/tenants/:tenant/keys", s.listKeys)
	op.DELETE("/tenants/:tenant/keys/:key", s.deleteKey)

	app := v1.Group("", s.auth(engine.KeyApp))
	app.POST("/logins/evaluate", s.evaluate)
	app.POST("/logins/failed", s.failedLogin)
	app.POST("/logins/:login_id/feedback", s.loginFeedback)
	app.GET("/challenges/:id", s.getChallenge)
	app.POST("/challenges/:id/verify", s.verify)
	app.POST("/challenges/:id/resend", s.resend)
	app.POST("/challenges/:id/switch", s.switchChallenge)
	app.PUT("/users/:user", s.putUser)
	app.GET("/users/:user", s.getUser)
	app.DELETE("/users/:user", s.eraseUser)
	app.POST("/users/:user/sms", s.startSMS)
	app.POST("/users/:user/phone-change", s.startPhoneChange)
	app.POST("/users/:user/2fa/disable", s.lifecycle(eng.Lifecycle.StartDisable))
	app.POST("/users/:user/backup-codes", s.lifecycle(eng.Lifecycle.StartBackupCodes))
	app.POST("/users/:user/totp", s.lifecycle(eng.Lifecycle.StartTOTP))
	app.POST("/users/:user/email-factor", s.lifecycle(eng.Lifecycle.StartEmailFactor))
	app.GET("/users/:user/devices", s.listDevices)
	app.DELETE("/users/:user/devices", s.forgetDevices)
	app.DELETE("/users/:user/devices/:device", s.forgetDevice)
	app.POST("/users/:user/events/password-changed", s.sessionEvent(message.ReasonPasswordChanged))
	app.POST("/users/:user/events/signed-out-everywhere", s.sessionEvent(message.ReasonSignedOutEverywhere))
	app.POST("/users/:user/history", s.importHistory)
	app.DELETE("/users/:user/passkeys/:passkey", s.removePasskey)
	app.POST("/prompts", s.createPrompt)
	app.POST("/prompts/exchange", s.exchangePrompt)

	mgr := v1.Group("/admin", s.auth(engine.KeyManager))
	mgr.GET("/policy", s.getPolicy)
	mgr.PUT("/policy", s.putPolicy)
	mgr.GET("/users/:user", s.adminGetUser)
	mgr.POST("/users/:user/reset", s.adminReset)
	mgr.POST("/2fa/disable-all", s.disableAll)
	mgr.GET("/events", s.events)

	v1.POST("/webhooks/twilio/status", s.twilioStatus)
	v1.GET("/report/:token", s.reportPage)
	v1.POST("/report/:token", s.report)
	s.router = r
	return s
}

// Handler returns the http.Handler serving the API.
func (s *Server) Handler() http.Handler { return s.router }

// Routes lists every method and path served, for the OpenAPI check.
func (s *Server) Routes() []gin.RouteInfo { return s.router.Routes() }

const ctxPrincipal = "principal"
const ctxRequestID = "request_id"

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// observe assigns the request id and writes the access log and metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n\"") {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := methodLabel(c.Request.Method)
	ctx := propagation.TraceContext{}.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
	ctx, span := s.tracer.Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("http.route", route)))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	status := c.Writer.Status()
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	d := time.Since(start)
	s.reqs.WithLabelValues(route, method, fmt.Sprint(status)).Inc()
	s.latency.WithLabelValues(route).Observe(d.Seconds())
	// The path may hold a user id or a report token: log the route pattern.
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
		slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
		slog.Int("status", status), slog.Duration("duration", d), slog.String("client", s.clientIP(c)))
}

// methodLabel is the method as metrics, spans and the access log name it:
// one of the standard methods, or "_OTHER" (OpenTelemetry's name) for any
// other token a client sends, so made-up methods cannot add a series each.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// clientIP is the caller's address; X-Forwarded-For is believed only from
// trusted proxies. (A login's IP always comes from the request body.)
func (s *Server) clientIP(c *gin.Context) string { return s.ClientIP(c.Request) }

// ClientIP is the address of r's caller, believing X-Forwarded-For only
// from Options.TrustedProxies: the address failed authentications are
// throttled by, for the console as for the API.
func (s *Server) ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	for ip != nil && s.trusted(ip) {
		// A header sent several times is one list (RFC 9110 5.3): a proxy
		// that adds its own line must not hide the ones before it, so all
		// lines are walked, in order.
		xff := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
		if strings.TrimSpace(xff) == "" {
			break
		}
		parts := strings.Split(xff, ",")
		// Walk from the right past trusted proxies.
		for i := len(parts) - 1; i >= 0; i-- {
			cand := net.ParseIP(strings.TrimSpace(parts[i]))
			if cand == nil {
				break
			}
			host = cand.String()
			if !s.trusted(cand) {
				break
			}
		}
		break
	}
	return host
}

func (s *Server) trusted(ip net.IP) bool {
	for _, n := range s.proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// recover turns a panic into 500 internal.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.writeError(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// auth requires a bearer key of kind.
func (s *Server) auth(kind engine.KeyKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		// A missing or malformed key is a failed authentication like a
		// wrong key, and counted: failures are throttled per client
		// address (429 with Retry-After).
		p, err := s.eng.Tenants.AuthenticateFrom(c.Request.Context(), bearerToken(c), s.clientIP(c))
		if err != nil {
			s.writeError(c, err)
			return
		}
		if p.Tenant != "" {
			trace.SpanFromContext(c.Request.Context()).SetAttributes(tracing.TenantKey.String(p.Tenant))
		}
		if p.Kind != kind {
			s.writeError(c, engine.ErrForbidden)
			return
		}
		c.Set(ctxPrincipal, p)
		c.Next()
	}
}

// metricsAuth requires Options.MetricsToken as a bearer token, when set.
func (s *Server) metricsAuth(c *gin.Context) {
	if s.opt.MetricsToken == "" {
		return
	}
	if token := bearerToken(c); token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.opt.MetricsToken)) != 1 {
		s.writeError(c, engine.ErrUnauthenticated)
	}
}

// bearerToken is the secret of the request's one "Authorization: Bearer"
// header ("" when there is none or it is malformed). The scheme name is
// case-insensitive (RFC 7235). Authorization is a singleton field (RFC
// 9110): a request with two is ambiguous, as a proxy in front may read the
// last where gin reads the first, so it carries no key.
func bearerToken(c *gin.Context) string {
	if len(c.Request.Header.Values("Authorization")) != 1 {
		return ""
	}
	scheme, secret, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(secret)
}

func principal(c *gin.Context) engine.Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(engine.Principal)
	return pr
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	body := gin.H{}
	status := http.StatusOK
	if err := s.eng.Tenants.Ping(ctx); err != nil {
		status = http.StatusServiceUnavailable
		body["redis"] = "unreachable"
	} else {
		body["redis"] = "ok"
	}
	if s.opt.Ready != nil {
		for k, v := range s.opt.Ready(ctx) {
			body[k] = v
		}
	}
	body["status"] = map[bool]string{true: "ready", false: "not_ready"}[status == http.StatusOK]
	c.JSON(status, body)
}
