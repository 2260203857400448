// Package tracing is stepupd's OpenTelemetry tracing: the OTLP/HTTP
// exporter behind tracing.endpoint, the tracer every package asks for, a
// go-redis hook giving each round trip a span, and the tenant id carried
// in a context to the SMS and mail senders' spans.
//
// It owns what a span may say. Spans carry route patterns, Redis command
// names, provider names and the tenant id; they must never carry a user
// id, phone number, e-mail address, code, key, URL path or command
// argument — nor an error's message, which can quote any of those.
package tracing
