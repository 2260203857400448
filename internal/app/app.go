package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/stepup-auth/stepup/api"
	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/console"
	"github.com/stepup-auth/stepup/delivery"
	smsconsole "github.com/stepup-auth/stepup/delivery/console"
	"github.com/stepup-auth/stepup/delivery/twilio"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/dispatch"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/internal/tracing"
	"github.com/stepup-auth/stepup/notify"
	mailconsole "github.com/stepup-auth/stepup/notify/console"
	"github.com/stepup-auth/stepup/notify/smtp"
	"github.com/stepup-auth/stepup/prompt"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/risk/geoip"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// App is a wired stepupd: engine, store, API handler and delivery worker.
type App struct {
	Config  config.Config
	Engine  *engine.Engine
	Store   *redisstore.Store
	Redis   redis.UniversalClient
	Handler http.Handler
	Log     *slog.Logger
	worker  *delivery.Worker
	closers []func()
}

// Options adjust New for tests and tools.
type Options struct {
	Logger *slog.Logger // default: JSON to stdout at cfg.Log.Level
	// HTTPClient carries Twilio requests (tests rewrite hosts with it).
	HTTPClient *http.Client
	// Clock is the engine's clock (tests move it; default time.Now).
	Clock func() time.Time
	// TracerProvider replaces the one tracing.endpoint configures (tests
	// record spans with it).
	TracerProvider trace.TracerProvider
}

// New wires an App from a validated configuration. Close releases it.
func New(cfg config.Config, stdout io.Writer, o Options) (*App, error) {
	log := o.Logger
	if log == nil {
		log = NewLogger(cfg.Log.Level, stdout)
	}
	if cfg.Embedded() && cfg.PublicURL == "" {
		// The demo's mail links ("this wasn't me") and hosted pages point at
		// this server; a loopback listener is named localhost, which
		// WebAuthn takes as a relying party (an IP address it does not).
		cfg.PublicURL = "http://" + cfg.Listen
		if host, port, err := net.SplitHostPort(cfg.Listen); err == nil {
			if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.IsLoopback() {
				cfg.PublicURL = "http://localhost:" + port
			}
		}
	}
	// Repeated from Config.Validate for callers that skip it: with Redis,
	// console drivers would print codes to a production log by default.
	if !cfg.Embedded() && cfg.SMS.Driver == "" {
		return nil, errors.New("sms.driver: required when redis.url or redis.cluster_addrs is set")
	}
	if !cfg.Embedded() && cfg.Mail.Driver == "" {
		return nil, errors.New("mail.driver: required when redis.url or redis.cluster_addrs is set")
	}
	a := &App{Config: cfg, Log: log}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w)
	}
	rdb, closeRedis, err := openRedis(cfg)
	if err != nil {
		return nil, err
	}
	a.Redis = rdb
	a.closers = append(a.closers, closeRedis)
	tp := o.TracerProvider
	if tp == nil {
		var shutdown func(context.Context) error
		if tp, shutdown, err = tracing.Start(cfg.Tracing.Endpoint); err != nil {
			a.Close()
			return nil, err
		}
		a.closers = append(a.closers, func() {
			// Flush the last spans, but never hold up a stop for long.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(ctx)
		})
	}
	rdb.AddHook(tracing.RedisHook(tp))
	secret := []byte(cfg.Secret)
	if cfg.Embedded() && len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	redisErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "stepup_redis_errors_total", Help: "Redis commands that failed."})
	reg.MustRegister(redisErrors)
	rdb.AddHook(errorHook{redisErrors})

	geo, err := openGeo(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = geo.Close() })
	risk.WarmUp()
	lists, err := a.openIPLists(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}

	st := redisstore.New(rdb, redisstore.Options{AuditMaxEvents: cfg.Audit.MaxEvents})
	a.Store = st
	a.closers = append(a.closers, st.Close)
	eng, err := engine.New(st, engine.Options{
		Clock:  o.Clock,
		Secret: secret, OperatorKey: cfg.OperatorKey, PublicURL: cfg.PublicURL, Logger: log, Geo: geo, IPLists: lists,
		Risk:       riskOptions(cfg.Risk),
		CodeLength: cfg.Codes.Length, CodeTTL: cfg.Codes.TTL, CodeAttempts: cfg.Codes.MaxAttempts,
		MaxSends: cfg.Codes.MaxSends, ResendCooldown: cfg.Codes.ResendCooldown,
		HistorySize: cfg.Risk.HistorySize, HistoryDays: cfg.Risk.HistoryDays,
		FeedbackDays: cfg.Risk.FeedbackDays, ReportHalfLife: cfg.Risk.ReportHalfLife,
		Limits: engine.Limits{SMSPerUser: cfg.Limits.SMSPerUserHour, SMSPerNumber: cfg.Limits.SMSPerNumberHour,
			SMSPerCountry: cfg.Limits.SMSPerCountryHour, ChallengesPerIP: cfg.Limits.ChallengesPerIPHour,
			SMSPerTenant: cfg.Limits.SMSPerTenantHour, EmailPerUser: cfg.Limits.EmailPerUserHour,
			EmailPerAddress: cfg.Limits.EmailPerAddressHour, WrongCodesPerUser: cfg.Limits.WrongCodesPerUserHour,
			AuthFailuresPerIP: cfg.Limits.AuthFailuresPerIPMinute},
		AuditMaxEvents: cfg.Audit.MaxEvents,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Engine = eng

	handler, err := newDispatcher(cfg, log, st, eng, o.HTTPClient, tp)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.worker, err = delivery.New(rdb, handler, delivery.Options{
		Shards: keyspace.Shards, Workers: cfg.Delivery.Workers, MaxAttempts: cfg.Delivery.MaxAttempts,
		BackoffBase: cfg.Delivery.BackoffBase, BackoffMax: cfg.Delivery.BackoffMax, ClaimIdle: cfg.Delivery.ClaimIdle,
		Logger: log, Registerer: reg, Box: seal.New(secret, "queue", nil),
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	srv := api.New(api.FromEngine(eng), api.Options{
		Logger: log, Registry: reg, TrustedProxies: cfg.TrustedProxies,
		Ready: func(context.Context) map[string]any {
			return map[string]any{"geoip": geo.Loaded(), "sms_driver": cfg.SMSDriver(), "mail_driver": cfg.MailDriver()}
		},
		TwilioAuthToken: cfg.SMS.Twilio.AuthToken, PublicURL: strings.TrimRight(cfg.PublicURL, "/"),
		TwilioStatusURL: cfg.SMS.Twilio.StatusCallbackURL,
		ValidateTwilio:  twilio.ValidateSignature,
		MetricsToken:    cfg.Metrics.Token,
		TracerProvider:  tp,
	})
	con, err := console.New(console.FromEngine(eng), st, console.Options{
		Logger: log.With("component", "console"), Clock: o.Clock, ClientIP: srv.ClientIP,
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
		DeadLetters: func(ctx context.Context, tenant string) ([]console.DeadLetter, error) {
			return deadLetters(ctx, rdb, tenant)
		},
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	// The console, the hosted pages and the API share one listener:
	// /console is the web console's, /prompt/ the hosted pages', everything
	// else the API's.
	mux := http.NewServeMux()
	mux.Handle(console.Path, con)
	mux.Handle(console.Path+"/", con)
	// The hosted verification pages (issue 15) under /prompt/.
	mux.Handle("/prompt/", prompt.New(eng.Prompts, prompt.Options{Logger: log.With("component", "prompt"),
		Secure: strings.HasPrefix(cfg.PublicURL, "https://"), ClientIP: srv.ClientIP}))
	mux.Handle("/", srv.Handler())
	a.Handler = mux
	return a, nil
}

// deadLetterScan bounds the dead letters read for the console's
// operations page, newest first across the shards.
const deadLetterScan = 1000

// deadLetters lists a tenant's dead letters among the newest of the
// installation.
func deadLetters(ctx context.Context, rdb redis.UniversalClient, tenant string) ([]console.DeadLetter, error) {
	all, err := delivery.DeadLetters(ctx, rdb, keyspace.Shards, deadLetterScan)
	if err != nil {
		return nil, err
	}
	var out []console.DeadLetter
	for _, d := range all {
		if d.Tenant == tenant {
			out = append(out, console.DeadLetter{Kind: string(d.Kind), Error: d.Error, At: d.At})
		}
	}
	return out, nil
}

// RunWorkers runs the delivery workers until ctx ends, finishing in-flight
// sends, and the daily digests beside them.
func (a *App) RunWorkers(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.runDigests(ctx)
	}()
	err := a.worker.Run(ctx)
	<-done
	return err
}

// digestEvery is how often the digests are looked at; each tenant's digest
// of a day goes out once, from whichever process gets to it first.
const digestEvery = 5 * time.Minute

func (a *App) runDigests(ctx context.Context) {
	t := time.NewTicker(digestEvery)
	defer t.Stop()
	for {
		if err := a.Engine.Policies.SendDigests(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("daily digests", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close releases the App's connections (and the embedded store).
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// NewLogger returns the JSON logger at level.
func NewLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// openRedis connects to the configured Redis, or starts the embedded one.
func openRedis(cfg config.Config) (redis.UniversalClient, func(), error) {
	switch {
	case cfg.Embedded():
		mr := miniredis.NewMiniRedis()
		// The store listens on a loopback port, which every user of the
		// machine can reach: a random password keeps them out.
		pw := make([]byte, 32)
		_, _ = rand.Read(pw)
		mr.RequireAuth(hex.EncodeToString(pw))
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("embedded store: %w", err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Password: hex.EncodeToString(pw)})
		return rdb, func() { _ = rdb.Close(); mr.Close() }, nil
	case cfg.Redis.URL != "":
		opt, err := redis.ParseURL(cfg.Redis.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("redis.url: %w", err)
		}
		if cfg.Redis.Username != "" {
			opt.Username = cfg.Redis.Username
		}
		if cfg.Redis.Password != "" {
			opt.Password = cfg.Redis.Password
		}
		if opt.TLSConfig != nil {
			tc, err := tlsConfig(cfg)
			if err != nil {
				return nil, nil, err
			}
			tc.ServerName = opt.TLSConfig.ServerName
			opt.TLSConfig = tc
		}
		rdb := redis.NewClient(withTimeouts(opt))
		rdb.AddHook(downHook{})
		return rdb, func() { _ = rdb.Close() }, nil
	default:
		opt := &redis.ClusterOptions{Addrs: cfg.Redis.ClusterAddrs, Username: cfg.Redis.Username, Password: cfg.Redis.Password}
		if cfg.Redis.TLS {
			tc, err := tlsConfig(cfg)
			if err != nil {
				return nil, nil, err
			}
			opt.TLSConfig = tc
		}
		rdb := redis.NewClusterClient(clusterTimeouts(opt))
		rdb.AddHook(downHook{})
		// Per node: the ClusterClient's own hooks do not see the dial and
		// connection errors of its node clients.
		rdb.OnNewNode(func(n *redis.Client) { n.AddHook(reloadOnNetError{rdb}) })
		return rdb, func() { _ = rdb.Close() }, nil
	}
}

func tlsConfig(cfg config.Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Redis.TLSInsecureSkipVerify} //nolint:gosec // opt-in for self-signed test servers
	if cfg.Redis.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.Redis.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("redis.tls_ca_file: no certificate found")
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// openGeo opens the configured GeoIP databases; the embedded default with
// none configured uses the demo Country database of the documentation
// ranges.
func openGeo(cfg config.Config) (*geoip.Reader, error) {
	if cfg.GeoIP.CountryDB == "" && cfg.GeoIP.CityDB == "" && cfg.GeoIP.ASNDB == "" && cfg.Embedded() {
		return geoip.OpenDemo()
	}
	return geoip.Open(geoip.Options{CountryDB: cfg.GeoIP.CountryDB, CityDB: cfg.GeoIP.CityDB, ASNDB: cfg.GeoIP.ASNDB})
}

// newDispatcher wires the SMS and mail drivers behind the delivery worker.
func newDispatcher(cfg config.Config, log *slog.Logger, st *redisstore.Store, eng *engine.Engine, hc *http.Client, tp trace.TracerProvider) (delivery.Handler, error) {
	o := dispatch.Options{FromAddress: senderAddress(cfg.Mail.From), Links: st, Alerts: eng.Policies, SMSProvider: cfg.SMSDriver()}
	switch cfg.SMSDriver() {
	case "twilio":
		tw, err := twilio.New(twilio.Options{AccountSID: cfg.SMS.Twilio.AccountSID, AuthToken: cfg.SMS.Twilio.AuthToken,
			From: cfg.SMS.Twilio.From, MessagingServiceSID: cfg.SMS.Twilio.MessagingServiceSID,
			APIBaseURL: cfg.SMS.Twilio.APIBaseURL, StatusCallbackURL: statusCallback(cfg), HTTPClient: hc, TracerProvider: tp})
		if err != nil {
			return nil, err
		}
		o.SMS = tw
	default:
		o.SMS = smsconsole.New(smsconsole.Options{Logger: log})
	}
	switch cfg.MailDriver() {
	case "smtp":
		m, err := smtp.New(smtp.Options{Host: cfg.Mail.SMTP.Host, Port: cfg.Mail.SMTP.Port, Username: cfg.Mail.SMTP.Username,
			Password: cfg.Mail.SMTP.Password, TLS: cfg.Mail.SMTP.TLS, InsecureSkipVerify: cfg.Mail.SMTP.TLSInsecureSkipVerify, From: cfg.Mail.From,
			TracerProvider: tp})
		if err != nil {
			return nil, err
		}
		o.Mail, o.IsPermanent = m, smtp.IsPermanent
		if o.FromAddress == "" {
			return nil, errors.New("mail.from: required when mail.driver is smtp")
		}
	default:
		o.Mail = mailconsole.New(mailconsole.Options{Logger: log})
		if o.FromAddress == "" {
			o.FromAddress = "stepup@localhost"
		}
	}
	r, err := notify.NewRenderer(notify.Options{PublicURL: cfg.PublicURL})
	if err != nil {
		return nil, err
	}
	o.Renderer = r
	return dispatch.New(o), nil
}

// senderAddress is the bare address of mail.from, which may carry a
// display name ("Acme Security <security@acme.example>"): mails are sent
// in each tenant's own sender name.
func senderAddress(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		return a.Address
	}
	return from
}

func statusCallback(cfg config.Config) string {
	if cfg.SMS.Twilio.StatusCallbackURL != "" {
		return cfg.SMS.Twilio.StatusCallbackURL
	}
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/") + "/v1/webhooks/twilio/status"
	}
	return ""
}

// errorHook counts failed Redis commands for /metrics.
type errorHook struct{ c prometheus.Counter }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) {
			h.c.Inc()
		}
		return err
	}
}
func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && !errors.Is(err, redis.Nil) {
			h.c.Inc()
		}
		return err
	}
}

// riskOptions are the scorer's options from the configuration.
func riskOptions(r config.Risk) risk.Options {
	return risk.Options{
		IPv4Prefix: r.IPv4Prefix, IPv6Prefix: r.IPv6Prefix,
		IPv4BlockPrefix: r.IPv4BlockPrefix, IPv6BlockPrefix: r.IPv6BlockPrefix,
		UnseenPenalty: r.UnseenPenalty, MassPrior: r.MassPrior,
		TargetedShare: r.TargetedShare, ReportedFactor: r.ReportedFactor,
	}
}
