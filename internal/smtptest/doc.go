// Package smtptest runs a real SMTP server in the test process, on loopback,
// for tests of code that sends mail.
//
// The server speaks SMTP through github.com/emersion/go-smtp: plain,
// STARTTLS, or implicit TLS with a self-signed certificate made at start for
// "localhost" and 127.0.0.1 (trust it with [Server.CertPool]); AUTH PLAIN and
// LOGIN against one user; and scripted failures — dropped connections, 451 to
// the first messages, 550 for chosen recipients, and [Server.Stop] and
// [Server.Start] to take it down and bring it back on the same port. Every
// accepted message lands in a thread-safe inbox, parsed into subject, text
// and HTML.
//
// It is for tests only: it keeps every message in memory and trusts whatever
// it is sent.
package smtptest
