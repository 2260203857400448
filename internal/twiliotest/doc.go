// Package twiliotest is an in-process fake of the part of Twilio's REST API
// that stepup uses: POST /2010-04-01/Accounts/{sid}/Messages.json.
//
// It checks what the real API checks that matters to a sender (Basic auth
// with the account SID and auth token, the account in the path, To, Body and
// From or MessagingServiceSid), answers with the JSON shape of a real Message
// resource, records the messages it accepted and can be told to answer
// errors, so tests drive the real twilio-go client through success, retries
// and Twilio error codes. It is for tests only.
package twiliotest
