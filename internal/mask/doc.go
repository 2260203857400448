// Package mask hides personal data for logs, errors, audit events and
// mails: it keeps what a person needs to recognise their own e-mail
// address ("a•••@example.com") and nothing more. It is a leaf package, so
// the engine and the delivery side share one rule.
package mask
