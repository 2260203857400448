package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// FailMode says what Evaluate answers when stepup cannot give an answer:
// the server cannot be reached, the call times out, or it answers with a
// 5xx status. Other answers — 4xx above all, which are the caller's own
// mistakes (a wrong key, a bad request, a rate limit) — are never masked.
type FailMode string

// The fail modes, named as Duo names its failmode setting.
const (
	// FailSecure (the default) fails closed: Evaluate returns the error
	// and an Evaluation whose Decision is deny, so a host app that reads
	// either one refuses the login.
	FailSecure FailMode = "secure"
	// FailSafe fails open: Evaluate returns no error and an Evaluation
	// with Decision allow, FailOpen set and Failure saying why. Use it
	// only where an attacker who can make stepup unreachable gains little.
	FailSafe FailMode = "safe"
)

// ParseFailMode parses "secure" or "safe", as a host app's own
// configuration would spell it; "" is FailSecure.
func ParseFailMode(s string) (FailMode, error) {
	switch FailMode(s) {
	case "", FailSecure:
		return FailSecure, nil
	case FailSafe:
		return FailSafe, nil
	}
	return "", fmt.Errorf("stepup client: fail mode %q: want secure or safe", s)
}

// DefaultTimeout bounds every call unless WithTimeout says otherwise. An
// evaluation takes milliseconds; a user waiting at a login form should not
// wait long for the fail mode to apply.
const DefaultTimeout = 5 * time.Second

// WithFailMode sets what Evaluate does when stepup is unavailable (see
// FailMode). An unknown mode is FailSecure.
func WithFailMode(m FailMode) Option {
	return func(c *Client) {
		if m != FailSafe {
			m = FailSecure
		}
		c.failMode = m
	}
}

// WithTimeout bounds each call, from sending the request to reading the
// whole answer; one that runs out is unavailable (ErrUnavailable). Zero or
// less leaves calls bounded by their context alone.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// ErrUnavailable is matched (errors.Is) by the error of every call that
// got no answer from stepup: the server could not be reached, the call
// ran out of time, or the answer was a 5xx status. A 503 sms_disabled is
// not one of them: it is stepup's answer about this login (no factor can
// receive a code), not an outage. Neither is an invalid TLS certificate,
// which is a misconfiguration or an interception, never a passing fault,
// nor the caller cancelling its context (a deadline of the caller's
// context that runs out is: stepup was too slow for it).
var ErrUnavailable = errors.New("stepup unavailable")

// codeSMSDisabled is the 503 that is an answer, not an outage.
const codeSMSDisabled = "sms_disabled"

// Is makes a 5xx APIError match ErrUnavailable.
func (e *APIError) Is(target error) bool {
	return target == ErrUnavailable && e.Status >= 500 && e.Code != codeSMSDisabled
}

// unavailable wraps a transport error of a call made under ctx: with
// ErrUnavailable when the server could not be reached or a timeout ran
// out, as it is when the caller cancelled ctx or the server's certificate
// was refused.
func unavailable(ctx context.Context, err error) error {
	_, badCert := errors.AsType[*tls.CertificateVerificationError](err)
	if badCert || errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("stepup client: %w", err)
	}
	return fmt.Errorf("stepup client: %w: %w", ErrUnavailable, err)
}

// failEvaluation is Evaluate's answer when err means stepup is
// unavailable.
func (c *Client) failEvaluation(err error) (Evaluation, error) {
	if c.failMode == FailSafe {
		return Evaluation{Decision: DecisionAllow, FailOpen: true, Failure: err}, nil
	}
	return Evaluation{Decision: DecisionDeny, Failure: err}, err
}
