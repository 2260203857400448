// Package e2e holds stepup's end-to-end acceptance tests and nothing else:
// every file is a _test.go file of one issue's acceptance suite.
//
// The tests drive whole stepupd processes (internal/apptest) over the real
// HTTP API, on a real redis-server (single node and a 3-master cluster),
// with the real twilio-go client talking to the fake Twilio of
// internal/twiliotest, go-mail talking to internal/smtptest, and GeoIP
// answered from a Country database written by internal/geoiptest. For
// example, the suite of "Challenges and SMS" is
//
//   - challenges_test.go: the login flow end to end and the rules every
//     challenge obeys (attempts, expiry, single use, resend, tenancy,
//     what a login teaches the history);
//   - sms_test.go: phone validation, step-up before a second factor,
//     Twilio failures and status callbacks, and the SMS abuse limits;
//   - queue_test.go: several stepupd processes on one Redis and a worker
//     that dies in the middle of a send.
//
// Each suite names its helpers with its own prefix (cs… for the one
// above), so that suites written side by side do not collide.
package e2e
