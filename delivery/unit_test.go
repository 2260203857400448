package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, ceiling = 2 * time.Second, 5 * time.Minute
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0, 0},
		{0, 0.5, time.Second},
		{1, 0.5, 2 * time.Second},
		{3, 0.5, 8 * time.Second},
		{7, 0.5, 128 * time.Second},
		{8, 0.5, 150 * time.Second}, // 256s capped at 300s, halved
		{40, 0.5, 150 * time.Second},
		{70, 0.5, 150 * time.Second}, // shift overflow
		{2, 1.5, time.Duration(0.999999 * float64(8*time.Second))},
		{2, -1, 0},
	}
	for _, tt := range tests {
		if got := backoff(tt.attempt, base, ceiling, tt.r); got != tt.want {
			t.Errorf("backoff(%d, r=%v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct{ in, want string }{
		{"twilio 21211: invalid number", "twilio 21211: invalid number"},
		{"twilio: http 503", "twilio: http 503"},
		{"The 'To' number +61412345678 is not valid", "The 'To' number ••• is not valid"},
		{"to +61 412 345 678 failed", "to ••• failed"},
		{"your code is 123456", "your code is •••"},
		{"dial tcp 127.0.0.1:6379: connection refused", "dial tcp 127.0.0.1:6379: connection refused"},
		{`550 5.1.1 <gone@example.test>: recipient rejected`, `550 5.1.1 <g•••@example.test>: recipient rejected`},
		{"affected recipient(s): a.b+c@mail.example.org, x@y.z", "affected recipient(s): a•••@mail.example.org, x•••@y.z"},
		{"550 no such user jösé@exämple.test (ö)", "550 no such user j•••@exämple.test (ö)"},
		{"550 <ösel@example.test>", "550 <ö•••@example.test>"},
	}
	for _, tt := range tests {
		if got := scrub(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := scrub(strings.Repeat("é", 300))
	if len(long) > maxErrorText+len("…") || !strings.HasSuffix(long, "…") {
		t.Errorf("scrub did not cut a long text: %d bytes", len(long))
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("twilio 21211: invalid number")
	p := Permanent(base)
	if !IsPermanent(p) || !IsPermanent(fmt.Errorf("wrapped: %w", p)) {
		t.Error("IsPermanent is false for a permanent error")
	}
	if IsPermanent(base) || IsPermanent(nil) {
		t.Error("IsPermanent is true for a plain error")
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	if p.Error() != base.Error() || !errors.Is(p, base) {
		t.Errorf("Permanent changed the error: %v", p)
	}
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		name      string
		values    map[string]any
		malformed bool
	}{
		{"ok", map[string]any{"kind": "sms", "tenant": "t", "data": "x", "attempt": "2"}, false},
		{"no kind", map[string]any{"tenant": "t", "data": "x", "attempt": "0"}, true},
		{"no data", map[string]any{"kind": "sms", "attempt": "0"}, true},
		{"bad attempt", map[string]any{"kind": "sms", "data": "x", "attempt": "two"}, true},
		{"negative attempt", map[string]any{"kind": "sms", "data": "x", "attempt": "-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseFields(tt.values)
			if (f.malformed != "") != tt.malformed {
				t.Errorf("malformed = %q, want malformed %v", f.malformed, tt.malformed)
			}
		})
	}
}

func TestChallengeOpen(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name string
		st   jobState
		want bool
	}{
		{"pending", jobState{exists: true, status: "pending", expiresAt: "1700000060000"}, true},
		{"expired", jobState{exists: true, status: "pending", expiresAt: "1700000000000"}, false},
		{"verified", jobState{exists: true, status: "verified", expiresAt: "1700000060000"}, false},
		{"cancelled", jobState{exists: true, status: "cancelled", expiresAt: "1700000060000"}, false},
		{"gone", jobState{}, false},
		{"no expiry", jobState{exists: true, status: "pending"}, true},
	}
	for _, tt := range tests {
		if got := tt.st.challengeOpen(now); got != tt.want {
			t.Errorf("%s: challengeOpen = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want ErrorClass
	}{
		{errors.New("connection refused"), ClassUnavailable},
		{Permanent(errors.New("refused")), ClassProviderRejected},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), ClassTimeout},
		{classified(ClassInvalidNumber), ClassInvalidNumber},
		{Permanent(fmt.Errorf("wrapped: %w", classified(ClassAuthFailed))), ClassAuthFailed},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

type classified ErrorClass

func (c classified) Error() string          { return "provider said: +61412345678 is bad" }
func (c classified) ErrorClass() ErrorClass { return ErrorClass(c) }
