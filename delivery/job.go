package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/stepup-auth/stepup/message"
)

// Job is one delivery job handed to a Handler.
type Job struct {
	Shard     int    // queue shard the job was read from
	ID        string // stream entry id; a retried job gets a new one
	Kind      message.Kind
	Tenant    string
	Challenge string // key of the challenge hash the job delivers a code for, or ""
	Payload   []byte // opened payload: JSON whose shape depends on Kind
	Attempt   int    // number of earlier tries (failed sends and lost deliveries)
}

// Result is what a Handler reports about a successful send.
type Result struct {
	// ProviderID is the provider's id of the message (a Twilio message SID),
	// recorded on the challenge so a status callback can be matched to it.
	ProviderID string
}

// Handler sends one job. A nil error acknowledges the job; an error marked
// with Permanent dead-letters it at once; any other error retries it with
// backoff. Error texts end up in logs, in the dead-letter stream and on the
// challenge, so they must not contain a payload, a code or a phone number.
type Handler interface {
	Handle(ctx context.Context, j Job) (Result, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, j Job) (Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, j Job) (Result, error) { return f(ctx, j) }

// Mux routes jobs to handlers by kind; a job of an unknown kind fails
// permanently.
type Mux map[message.Kind]Handler

// Handle routes j to the handler of its kind.
func (m Mux) Handle(ctx context.Context, j Job) (Result, error) {
	h, ok := m[j.Kind]
	if !ok {
		return Result{}, Permanent(fmt.Errorf("no handler for kind %q", j.Kind))
	}
	return h.Handle(ctx, j)
}

// permanentError marks an error that retrying will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: the job goes to the dead-letter
// stream at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
