package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/mask"
	"github.com/stepup-auth/stepup/notify"
)

// Failure is one undelivered copy: one mail of a batch to one recipient.
type Failure struct {
	// Index is the position of the mail in the batch given to Send.
	Index int
	// To is the recipient that did not get it ("" when the mail had none).
	To string
	// Mail is the mail addressed to To alone, ready to be queued again.
	Mail notify.Mail
	// Code is the SMTP reply code (550, 451, 535 …), or 0 when the server
	// gave none (connection refused, timeout, a malformed address).
	Code int
	// Permanent is true when retrying cannot help: the server refused this
	// copy with a 5xx reply to MAIL FROM, RCPT TO or DATA, or the mail
	// itself is unsendable. Failures to connect, negotiate TLS or
	// authenticate are never permanent: they concern the server or the
	// configuration, and the queue's retry limit bounds them.
	Permanent bool
	Err       error
}

func (f Failure) String() string {
	kind := "retryable"
	if f.Permanent {
		kind = "permanent"
	}
	to := "(no recipient)"
	if f.To != "" {
		to = mask.Email(f.To)
	}
	// The error's text may quote the address too (go-mail's "affected
	// recipient(s)", a server's 550 reply): it goes to logs and the
	// dead-letter queue, so every address in it is masked.
	return fmt.Sprintf("to %s: %s: %s", to, kind, delivery.MaskAddresses(fmt.Sprint(f.Err)))
}

// ErrorClass classifies the failure for audit events and managers' mails.
func (f Failure) ErrorClass() delivery.ErrorClass {
	// go-mail's AUTH failures carry the server's 535 or, refused before
	// a reply, say so in words.
	authFailed := f.Err != nil && strings.Contains(strings.ToLower(f.Err.Error()), "authentication failed")
	var ne net.Error
	switch {
	case authFailed || f.Code == 530 || f.Code == 535 || f.Code == 534:
		return delivery.ClassAuthFailed
	case f.Permanent && (f.Code == 550 || f.Code == 551 || f.Code == 553 || f.Code == 501):
		return delivery.ClassRecipientRejected
	case f.Permanent:
		return delivery.ClassProviderRejected
	case errors.Is(f.Err, context.DeadlineExceeded) || (errors.As(f.Err, &ne) && ne.Timeout()):
		return delivery.ClassTimeout
	default:
		return delivery.ClassUnavailable
	}
}

// Error reports the copies of a batch that were not delivered. The others
// were accepted by the server and must not be sent again.
type Error struct {
	// Failures are the undelivered copies, in the order of the batch.
	Failures []Failure
	// Delivered counts the copies the server accepted.
	Delivered int
}

func errorOf(failed []Failure, delivered int) error {
	if len(failed) == 0 {
		return nil
	}
	return &Error{Failures: failed, Delivered: delivered}
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtp: %d of %d deliveries failed: %s", len(e.Failures), len(e.Failures)+e.Delivered, e.Failures[0])
	if n := len(e.Failures) - 1; n > 0 {
		fmt.Fprintf(&b, " (and %d more)", n)
	}
	return b.String()
}

// ErrorClass is the class of the first failure.
func (e *Error) ErrorClass() delivery.ErrorClass { return e.Failures[0].ErrorClass() }

// Unwrap returns the failures' errors, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// Retryable returns the mails worth sending again: each mail of the batch
// with a temporary failure, addressed only to the recipients that did not
// get it. Permanent failures and delivered copies are left out.
func (e *Error) Retryable() []notify.Mail {
	var out []notify.Mail
	at := map[int]int{} // batch index → position in out
	for _, f := range e.Failures {
		if f.Permanent {
			continue
		}
		if i, ok := at[f.Index]; ok {
			out[i].To = append(out[i].To, f.To)
			continue
		}
		at[f.Index] = len(out)
		m := f.Mail
		m.To = append([]string(nil), f.Mail.To...)
		out = append(out, m)
	}
	return out
}

// IsPermanent reports whether err from Send leaves nothing worth retrying:
// every undelivered copy was refused for good (a 5xx reply such as 550
// mailbox unavailable or 553 bad address, or a malformed mail). Connection
// refused, timeouts, TLS and AUTH failures and 4xx replies are retryable. A
// nil error or one Send did not return is not permanent.
//
// When a batch failed partly, IsPermanent is false as long as one copy may
// still go through; Error.Retryable names the mails to queue again.
func IsPermanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) || len(e.Failures) == 0 {
		return false
	}
	for _, f := range e.Failures {
		if !f.Permanent {
			return false
		}
	}
	return true
}

// replyCode finds an SMTP reply code in an error chain.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
