// Package apptest runs a whole stepupd in a test: the real wiring of
// internal/app on a real redis-server (single node or a 3-master cluster)
// or the embedded miniredis, with the real twilio-go client talking to a
// fake Twilio (internal/twiliotest) and go-mail talking to an in-process
// SMTP server (internal/smtptest), behind an httptest server.
package apptest
