package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// Kind classifies an Error; package api maps each Kind to one HTTP status.
type Kind int

// The kinds of domain errors.
const (
	KindInternal        Kind = iota // 500, detail never shown
	KindInvalid                     // 400
	KindUnauthenticated             // 401
	KindForbidden                   // 403
	KindNotFound                    // 404
	KindConflict                    // 409
	KindGone                        // 410
	KindUnprocessable               // 422
	KindLocked                      // 423
	KindRateLimited                 // 429
	KindUnavailable                 // 503
)

// Error is the one error type the engine returns to callers.
type Error struct {
	Kind Kind
	Code string         // snake_case, stable, part of the API contract
	Msg  string         // for humans; never holds a secret
	Meta map[string]any // extra fields of the JSON error (attempts_left, field, retry_after …)
	Err  error          // cause, logged but never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error.
func E(kind Kind, code, msg string) *Error { return &Error{Kind: kind, Code: code, Msg: msg} }

// With returns a copy of e with an extra metadata field.
func (e *Error) With(key string, v any) *Error {
	c := *e
	c.Meta = make(map[string]any, len(e.Meta)+1)
	for k, x := range e.Meta {
		c.Meta[k] = x
	}
	c.Meta[key] = v
	return &c
}

// Internal wraps an unexpected error.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Code: "internal", Msg: "internal error", Err: err}
}

// Invalid reports a request field that fails validation.
func Invalid(field, msg string) *Error {
	return (&Error{Kind: KindInvalid, Code: "validation_failed", Msg: field + ": " + msg}).With("field", field)
}

// AsError returns err as *Error: an *Error it is or wraps as it is, an
// error meaning the store cannot be reached (an internal one wrapping
// such an error too) as [ErrStoreUnavailable], and anything else as
// internal. It is where store failures become the API's error: package
// api calls it on every error it answers.
func AsError(err error) *Error {
	e, ok := errors.AsType[*Error](err)
	switch {
	case ok && e.Kind != KindInternal:
		return e
	case storeUnavailable(err):
		su := *ErrStoreUnavailable
		su.Err = err
		return &su
	case ok:
		return e
	}
	return Internal(err)
}

// StoreUnavailable is implemented by errors a store returns when it cannot
// reach its server for a reason the standard library has no error for
// (the store's own client gave up waiting for a connection, the server is
// loading or its cluster is down); the store's adapter marks them so.
type StoreUnavailable interface {
	StoreUnavailable() bool
}

// storeUnavailable reports whether err means the store could not be
// reached or did not answer in time: a network error (refused, reset,
// timed out: net.Error), a connection closed mid-answer, a deadline, or an
// error marked [StoreUnavailable]. A cancelled context is not one: the
// caller went away.
func storeUnavailable(err error) bool {
	var su StoreUnavailable
	if errors.As(err, &su) && su.StoreUnavailable() {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// storeRetryAfter is the Retry-After of [ErrStoreUnavailable], in seconds:
// soon, since a restarted Redis or a failed-over primary is back in
// seconds, and a 503 costs stepupd nothing.
const storeRetryAfter = 2

// AsErrorOrNil is AsError that leaves nil as it is.
func AsErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return AsError(err)
}

// retryConflicts runs try again while it loses a race with another change
// (ErrConflict), at most five times: optimistic concurrency's loop.
func retryConflicts(try func() error) error {
	for range 5 {
		if err := try(); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return ErrConflict
}

// Errors every caller may see.
var (
	ErrUnauthenticated   = E(KindUnauthenticated, "unauthenticated", "missing or unknown API key")
	ErrForbidden         = E(KindForbidden, "forbidden", "this key may not do that")
	ErrTenantNotFound    = E(KindNotFound, "tenant_not_found", "no such tenant")
	ErrKeyNotFound       = E(KindNotFound, "key_not_found", "no such key")
	ErrUserNotFound      = E(KindNotFound, "user_not_found", "no such user")
	ErrChallengeNotFound = E(KindNotFound, "challenge_not_found", "no such challenge")
	ErrLoginNotFound     = E(KindNotFound, "login_not_found", "no such login")
	ErrDeviceNotFound    = E(KindNotFound, "device_not_found", "no such remembered device")

	// ErrConflict is returned by a Store when an optimistic write lost a race.
	ErrConflict = E(KindConflict, "conflict", "the state changed meanwhile, retry")

	// ErrStoreUnavailable is every error meaning the store could not be
	// reached or did not answer in time (see AsError): the request did
	// not happen as a whole or in part, and may be retried.
	ErrStoreUnavailable = E(KindUnavailable, "store_unavailable",
		"the data store cannot be reached; retry shortly").With("retry_after", storeRetryAfter)
)
