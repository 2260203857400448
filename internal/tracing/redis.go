package tracing

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// RedisHook gives each Redis round trip made under a span (an HTTP
// request's, a send's) a child span named for its command ("redis
// EVALSHA"; a pipeline is "redis pipeline" with its size). Round trips
// outside any span — the delivery workers polling their streams, many
// times a second — are not traced: they would bury the requests' traces.
// Only command names are recorded: keys hold user ids and arguments hold
// secrets. redis.Nil is no failure.
func RedisHook(tp trace.TracerProvider) redis.Hook { return redisHook{Tracer(tp)} }

type redisHook struct{ tr trace.Tracer }

var dbSystem = attribute.String("db.system.name", "redis")

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmd)
		}
		name := strings.ToUpper(cmd.Name())
		ctx, span := h.tr.Start(ctx, "redis "+name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(dbSystem, attribute.String("db.operation.name", name)))
		err := next(ctx, cmd)
		failRedis(span, err)
		span.End()
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmds)
		}
		ctx, span := h.tr.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(dbSystem, attribute.String("db.operation.name", "pipeline"),
				attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		failRedis(span, err)
		span.End()
		return err
	}
}

func failRedis(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		span.SetStatus(codes.Error, "redis error")
	}
}
