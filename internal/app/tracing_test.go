package app_test

import (
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/tracing"
)

// TestTracing: an evaluate is one server span with the route pattern and
// the tenant, and a child span per Redis round trip; SMS and mail sends
// have spans with the tenant; no span names or carries the user id, the
// phone number, the e-mail address or the code.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	env := apptest.New(t, apptest.Options{Redis: apptest.Single, TracerProvider: tp})
	tenant, appKey, _ := env.Tenant(t, "acme")
	const (
		user  = "u-trace-4711"
		phone = "+61491570156"
		email = "trace.user@example.test"
		ua    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	)
	must := func(method, path string, body any) map[string]any {
		t.Helper()
		r := env.Do(t, method, path, appKey, body)
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Raw)
		}
		return r.Body
	}
	must("POST", "/v1/logins/evaluate", map[string]any{"user_id": user, "ip": "192.0.2.10", "user_agent": ua})
	must("PUT", "/v1/users/"+user, map[string]any{"email": email})
	seen := len(env.Twilio.Messages())
	started := must("POST", "/v1/users/"+user+"/sms", map[string]any{"phone": phone})
	code := env.SMSCode(t, phone, seen)
	ch, _ := started["challenge"].(map[string]any)
	chID, _ := ch["id"].(string)
	must("POST", "/v1/challenges/"+chID+"/verify", map[string]any{"code": code})
	if _, err := env.SMTP.WaitFor(1, 10*time.Second); err != nil {
		t.Fatalf("no mail: %v", err)
	}

	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		spans = rec.Ended()
		if named(spans, "smtp.send") != nil && named(spans, "twilio.send") != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no twilio.send and smtp.send spans among %d", len(spans))
		}
	}

	ev := named(spans, "POST /v1/logins/evaluate")
	if ev == nil {
		t.Fatal("no span for the evaluate request")
	}
	if got := attr(ev, "http.route"); got != "/v1/logins/evaluate" {
		t.Errorf("http.route = %q", got)
	}
	if got := attr(ev, "http.response.status_code"); got != "200" {
		t.Errorf("http.response.status_code = %q", got)
	}
	if got := attr(ev, string(tracing.TenantKey)); got != tenant {
		t.Errorf("evaluate span's tenant = %q, want %q", got, tenant)
	}
	redisChildren := 0
	for _, s := range spans {
		if s.Parent().SpanID() == ev.SpanContext().SpanID() && strings.HasPrefix(s.Name(), "redis ") {
			redisChildren++
			if attr(s, "db.operation.name") == "" {
				t.Errorf("redis span %q has no db.operation.name", s.Name())
			}
		}
	}
	if redisChildren == 0 {
		t.Error("the evaluate span has no child Redis spans")
	}
	if u := named(spans, "PUT /v1/users/:user"); u == nil {
		t.Error("no span for PUT /v1/users/:user (named by its route pattern)")
	}
	for _, name := range []string{"twilio.send", "smtp.send"} {
		if got := attr(named(spans, name), string(tracing.TenantKey)); got != tenant {
			t.Errorf("%s span's tenant = %q, want %q", name, got, tenant)
		}
	}

	secrets := []string{user, phone, strings.TrimPrefix(phone, "+"), email, code, appKey}
	for _, s := range spans {
		for _, secret := range secrets {
			if strings.Contains(s.Name(), secret) || strings.Contains(s.Status().Description, secret) {
				t.Errorf("span %q names %q", s.Name(), secret)
			}
			for _, kv := range s.Attributes() {
				if strings.Contains(kv.Value.Emit(), secret) {
					t.Errorf("span %q: attribute %s = %q holds %q", s.Name(), kv.Key, kv.Value.Emit(), secret)
				}
			}
			for _, e := range s.Events() {
				for _, kv := range e.Attributes {
					if strings.Contains(kv.Value.Emit(), secret) {
						t.Errorf("span %q: event %s holds %q", s.Name(), e.Name, secret)
					}
				}
			}
		}
	}
}

func named(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	if s == nil {
		return ""
	}
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
