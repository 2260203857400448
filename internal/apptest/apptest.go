package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/app"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/internal/twiliotest"
)

// Redis kinds an Env can run on.
const (
	Embedded = "embedded"
	Single   = "single"
	Cluster  = "cluster"
)

// OperatorKey is the operator key of every Env.
const OperatorKey = "op_test_0123456789abcdef0123456789abcdef"

// Secret is the server secret of every Env.
const Secret = "test-secret-0123456789abcdef0123456789abcdef"

// Options configure an Env.
type Options struct {
	Redis string // Embedded (default), Single or Cluster
	// RedisAddrs reuses running Redis servers (a second stepupd on the same
	// Redis); for Single one address, for Cluster the seeds.
	RedisAddrs []string
	// Twilio and SMTP reuse fakes of another Env.
	Twilio *twiliotest.Server
	SMTP   *smtptest.Server
	// Configure adjusts the configuration before the App is built.
	Configure func(*config.Config)
	// NoWorkers leaves the delivery workers stopped.
	NoWorkers bool
	// Clock is the engine's clock, for tests that move time (rate limit
	// windows, cooldowns) without sleeping; default time.Now.
	Clock func() time.Time
	// Localhost serves on a port chosen first and sets public_url to
	// http://localhost:<port>, as a browser test needs (WebAuthn's relying
	// party id is public_url's host; localhost is a secure context).
	Localhost bool
	// TracerProvider receives the spans (a tracetest recorder's).
	TracerProvider trace.TracerProvider
}

// Env is a running stepupd.
type Env struct {
	App    *app.App
	URL    string
	Twilio *twiliotest.Server
	SMTP   *smtptest.Server
	Addrs  []string // the Redis addresses
	Logs   *Buffer
	stop   func()
}

// Buffer is a concurrency-safe log buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything logged so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// New starts an Env that stops when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	e := &Env{Twilio: o.Twilio, SMTP: o.SMTP, Logs: &Buffer{}}
	if e.Twilio == nil {
		e.Twilio = twiliotest.New(t, twiliotest.Options{From: "+15005550006"})
	}
	if e.SMTP == nil {
		e.SMTP = smtptest.NewServer(t, smtptest.Options{})
	}
	cfg := config.Default()
	cfg.Secret = Secret
	cfg.OperatorKey = OperatorKey
	cfg.PublicURL = "https://stepup.example.test"
	cfg.SMS.Driver = "twilio"
	cfg.SMS.Twilio.AccountSID = e.Twilio.AccountSID()
	cfg.SMS.Twilio.AuthToken = e.Twilio.AuthToken()
	cfg.SMS.Twilio.From = "+15005550006"
	cfg.SMS.Twilio.APIBaseURL = e.Twilio.URL
	cfg.Mail.Driver = "smtp"
	cfg.Mail.From = "security@example.test"
	cfg.Mail.SMTP.Host = e.SMTP.Host()
	cfg.Mail.SMTP.Port = e.SMTP.Port()
	cfg.Mail.SMTP.TLS = "none"
	cfg.Delivery.BackoffBase = 50 * time.Millisecond
	cfg.Delivery.BackoffMax = 500 * time.Millisecond
	cfg.Delivery.ClaimIdle = 2 * time.Second
	switch o.Redis {
	case Single:
		e.Addrs = o.RedisAddrs
		if e.Addrs == nil {
			e.Addrs = []string{redistest.Server(t)}
		}
		cfg.Redis.URL = "redis://" + e.Addrs[0]
	case Cluster:
		e.Addrs = o.RedisAddrs
		if e.Addrs == nil {
			e.Addrs = redistest.Cluster(t)
		}
		cfg.Redis.ClusterAddrs = e.Addrs
	}
	var ln net.Listener
	if o.Localhost {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("apptest: %v", err)
		}
		cfg.PublicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(cfg, io.Discard, app.Options{Logger: log, Clock: o.Clock, TracerProvider: o.TracerProvider})
	if err != nil {
		t.Fatalf("apptest: %v", err)
	}
	e.App = a
	srv := httptest.NewUnstartedServer(a.Handler)
	if ln != nil {
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	e.URL = srv.URL
	if ln != nil {
		e.URL = cfg.PublicURL
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if o.NoWorkers {
		close(done)
	} else {
		go func() { _ = a.RunWorkers(ctx); close(done) }()
	}
	e.stop = func() { srv.Close(); cancel(); <-done; a.Close() }
	t.Cleanup(e.stop)
	return e
}

// Response is a decoded API answer.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Do sends a JSON request with a bearer key; body may be nil, a string
// (sent as is) or any value (marshalled).
func (e *Env) Do(t testing.TB, method, path, key string, body any) Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return out
}

// Must is Do that fails the test unless the status is want.
func (e *Env) Must(t testing.TB, want int, method, path, key string, body any) map[string]any {
	t.Helper()
	r := e.Do(t, method, path, key, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r.Body
}

// Tenant creates a tenant with an app key and a manager key.
func (e *Env) Tenant(t testing.TB, name string) (id, appKey, managerKey string) {
	t.Helper()
	tn := e.Must(t, 201, "POST", "/v1/tenants", OperatorKey, map[string]any{"name": name, "sender_name": name})
	id = tn["id"].(string)
	appKey = e.Must(t, 201, "POST", "/v1/tenants/"+id+"/keys", OperatorKey, map[string]any{"kind": "app", "label": "app"})["secret"].(string)
	managerKey = e.Must(t, 201, "POST", "/v1/tenants/"+id+"/keys", OperatorKey, map[string]any{"kind": "manager", "label": "mgr"})["secret"].(string)
	return id, appKey, managerKey
}

// SMSCode waits for the next SMS to `to` after the n messages already seen
// and returns its code.
func (e *Env) SMSCode(t testing.TB, to string, seen int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs := e.Twilio.Messages()
		for i := len(msgs) - 1; i >= seen; i-- {
			if msgs[i].To == to {
				return msgs[i].Code()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no SMS to %s within 10s", to)
	return ""
}
