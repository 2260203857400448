// Package console is an SMS sender that writes messages to the log instead
// of sending them.
//
// It exists for the embedded default of stepupd, so a newcomer can try the
// whole flow on one machine: the log line carries the message body, and with
// it the one-time code. That is exactly what production logs must never do,
// so this sender is for local development only; it says so in a warning when
// it is created. The destination number is logged masked.
package console
