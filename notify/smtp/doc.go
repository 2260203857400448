// Package smtp sends rendered notify mails over SMTP with
// github.com/wneessen/go-mail: STARTTLS (the default), implicit TLS or plain,
// with SMTP AUTH when a username is configured.
//
// [Sender.Send] delivers a batch over one connection. Every recipient of a
// mail gets a copy of their own (one SMTP transaction each, with only their
// address in To), so a server refusing one recipient does not stop the mail
// reaching the others, and managers do not see each other's addresses.
//
// A failed Send returns an [*Error] that lists each undelivered copy and
// whether retrying can help. [IsPermanent] answers the durable queue's one
// question: is there nothing left worth retrying? The package keeps no state
// between calls and never retries by itself; the queue does.
//
// It must not be called on a request path: a slow SMTP server would hold the
// request for up to Options.Timeout per step.
package smtp
