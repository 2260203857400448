// Package dispatch turns the engine's queued jobs into sends: it is the
// delivery.Handler of stepupd, routing `sms` jobs to the SMS sender, `mail`
// jobs (codes by e-mail) to the mailer, and `notify` jobs (audit events) to
// the notify renderer and then the mailer.
//
// It owns no state and no rules of its own; it must not decide whom to tell
// (the engine did) nor what to say (notify does).
package dispatch
