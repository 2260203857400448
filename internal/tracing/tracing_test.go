package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/tracing"
)

func TestStart(t *testing.T) {
	tests := []struct {
		endpoint string
		wantErr  bool
	}{
		{"", false},
		{"http://127.0.0.1:4318", false},
		{"https://collector.example/otlp/v1/traces", false},
		{"collector:4318", true},
		{"grpc://collector:4317", true},
	}
	for _, tt := range tests {
		tp, shutdown, err := tracing.Start(tt.endpoint)
		if (err != nil) != tt.wantErr {
			t.Errorf("Start(%q) error = %v, want error %v", tt.endpoint, err, tt.wantErr)
			continue
		}
		if err == nil {
			if tp == nil {
				t.Errorf("Start(%q) returned no provider", tt.endpoint)
			}
			// Nothing was traced: shutting down sends nothing.
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("Start(%q): shutdown: %v", tt.endpoint, err)
			}
		}
	}
}

// TestRedisHook: one span per round trip named by the command, carrying
// neither keys nor arguments; a missing key is no failure.
func TestRedisHook(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	defer rdb.Close()
	rdb.AddHook(tracing.RedisHook(tp))
	// Outside any span: not traced (the workers' polling).
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	const key, value = "su:u:tn_1:alice-secret", "+61491570156"

	if err := rdb.Set(ctx, key, value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, key+"x").Err(); err != redis.Nil {
		t.Fatalf("GET a missing key: %v", err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, key)
		p.Incr(ctx, key+":n")
		p.Incr(ctx, key+":n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	parent.End()
	// go-redis' own handshake (HELLO, CLIENT SETINFO) is traced too when a
	// traced command opens the connection; look at ours.
	found := map[string]bool{}
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %q is not in the request's trace", s.Name())
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, "alice") || strings.Contains(v, "61491570156") {
				t.Errorf("span %q: %s = %q", s.Name(), kv.Key, v)
			}
		}
		name := s.Name()
		if name == "redis pipeline" {
			if !hasAttr(s, "db.operation.batch.size", "3") {
				continue // a handshake's
			}
			name += " of 3"
		}
		if name == "redis HELLO" || name == "redis CLIENT" {
			continue // the handshake may fail on an older server
		}
		if s.Status().Code != 0 {
			t.Errorf("span %q failed: %v", name, s.Status())
		}
		found[name] = true
	}
	if found["redis PING"] {
		t.Error("a command outside any span was traced")
	}
	for _, want := range []string{"redis SET", "redis GET", "redis pipeline of 3"} {
		if !found[want] {
			t.Errorf("no span %q among %v", want, found)
		}
	}
}

func hasAttr(s sdktrace.ReadOnlySpan, key, value string) bool {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key && kv.Value.Emit() == value {
			return true
		}
	}
	return false
}
