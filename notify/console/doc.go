// Package console is the mail sender of the embedded default: instead of
// sending, it writes each mail (recipients, subject and text body) to a
// log/slog logger at Info.
//
// It exists so a newcomer can try the whole flow without an SMTP server, and
// the text body is logged in full because that is the point: an e-mailed
// sign-in code must be readable somewhere. Do not use it in production; the
// log then holds what the mail held.
package console
