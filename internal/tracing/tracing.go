package tracing

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of stepup's tracers.
const Name = "github.com/stepup-auth/stepup"

// TenantKey is the attribute naming a span's tenant.
const TenantKey = attribute.Key("stepup.tenant")

// Tracer returns stepup's tracer of tp; a nil tp traces nothing.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}

// Start returns a TracerProvider exporting to the OTLP/HTTP collector at
// endpoint (such as "http://otel-collector:4318"; the path defaults to
// /v1/traces), batching spans, and its shutdown, which flushes them. An
// empty endpoint returns a provider that traces nothing.
func Start(endpoint string) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("tracing.endpoint %q: want http(s)://host[:port][/path]", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	if u.Path == "" || u.Path == "/" {
		opts = append(opts, otlptracehttp.WithURLPath("/v1/traces"))
	}
	// New does not connect: an unreachable collector only drops spans.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "stepupd"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

type tenantKey struct{}

// WithTenant returns ctx carrying the tenant id for the spans of work done
// under it (a delivery job's sends).
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantAttrs returns the tenant attribute of ctx, if it carries one.
func TenantAttrs(ctx context.Context) []attribute.KeyValue {
	if t, _ := ctx.Value(tenantKey{}).(string); t != "" {
		return []attribute.KeyValue{TenantKey.String(t)}
	}
	return nil
}

// StartSend starts the span of one send to a provider ("twilio", "smtp"),
// a client span with the provider and the tenant of ctx. End it with
// EndSend.
func StartSend(ctx context.Context, tr trace.Tracer, provider string) (context.Context, trace.Span) {
	return tr.Start(ctx, provider+".send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(TenantAttrs(ctx), attribute.String("stepup.provider", provider))...))
}

// EndSend ends a send's span, marking a failure without its message (an
// SMTP or Twilio error can quote the address or number).
func EndSend(span trace.Span, err error) {
	Fail(span, err, "send failed")
	span.End()
}

// Fail marks span failed with a fixed description when err is not nil.
func Fail(span trace.Span, err error, what string) {
	if err != nil {
		span.SetStatus(codes.Error, what)
	}
}
