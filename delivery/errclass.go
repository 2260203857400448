package delivery

import (
	"context"
	"errors"
	"net"
)

// ErrorClass names why a delivery failed in words that hold nothing of the
// provider's own text: audit events and managers' mails carry the class,
// never the raw error, which may quote a recipient or a number.
type ErrorClass string

// Error classes.
const (
	// ClassProviderRejected: the provider refused the message for good.
	ClassProviderRejected ErrorClass = "provider_rejected"
	// ClassInvalidNumber: the phone number cannot receive text messages.
	ClassInvalidNumber ErrorClass = "invalid_number"
	// ClassRecipientRejected: the mail server refused the address.
	ClassRecipientRejected ErrorClass = "recipient_rejected"
	// ClassTimeout: the provider did not answer in time.
	ClassTimeout ErrorClass = "timeout"
	// ClassAuthFailed: the provider refused stepup's credentials.
	ClassAuthFailed ErrorClass = "auth_failed"
	// ClassUnavailable: the provider could not be reached or asked to try
	// again later.
	ClassUnavailable ErrorClass = "unavailable"
)

// Classifier is implemented by senders' errors that know their class
// (delivery/twilio.Error, notify/smtp.Error).
type Classifier interface {
	ErrorClass() ErrorClass
}

// Classify returns err's class: the class a sender's error names, else
// timeout or unavailable for network failures, provider_rejected for other
// permanent errors and unavailable for the rest.
func Classify(err error) ErrorClass {
	var c Classifier
	if errors.As(err, &c) {
		return c.ErrorClass()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ClassTimeout
	}
	if IsPermanent(err) {
		return ClassProviderRejected
	}
	return ClassUnavailable
}
