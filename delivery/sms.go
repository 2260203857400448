package delivery

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/stepup-auth/stepup/message"
)

// SMSSender sends one text message and returns the provider's message id.
// Errors follow the Handler contract: Permanent for errors a retry will not
// fix, no secrets in the text.
type SMSSender interface {
	Send(ctx context.Context, to, body string) (id string, err error)
}

// SMSHandler returns a Handler that sends message.KindSMS jobs (payload
// message.SMS) through s.
func SMSHandler(s SMSSender) Handler {
	return HandlerFunc(func(ctx context.Context, j Job) (Result, error) {
		var m message.SMS
		if err := json.Unmarshal(j.Payload, &m); err != nil {
			return Result{}, Permanent(errors.New("sms payload is not valid JSON"))
		}
		if m.To == "" || m.Body == "" {
			return Result{}, Permanent(errors.New("sms payload lacks to or body"))
		}
		// The sender's error is returned as is: its text (say "twilio 21211:
		// invalid number") is what the challenge shows as delivery_error.
		id, err := s.Send(ctx, m.To, m.Body)
		if err != nil {
			return Result{}, err
		}
		return Result{ProviderID: id}, nil
	})
}
