package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/tracing"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/notify"
)

// Mailer sends rendered mails (notify/smtp and notify/console implement it).
type Mailer interface {
	Send(ctx context.Context, mails ...notify.Mail) error
}

// Linker remembers which challenge a provider message id belongs to.
type Linker interface {
	LinkProvider(ctx context.Context, providerID, challengeKey string) error
}

// Alerter tells a tenant's managers about failing deliveries (the engine
// rate-limits alerts to one per kind and hour) and counts deliveries for
// their daily digest.
type Alerter interface {
	Alert(ctx context.Context, tenant string, kind message.EventType, details map[string]string)
	CountDelivery(ctx context.Context, tenant string, kind message.Kind, ok bool)
}

// alertAfter is the attempt from which a retried failure counts as
// "deliveries keep failing".
const alertAfter = 3

// Options wire a Handler.
type Options struct {
	SMS         delivery.SMSSender
	Mail        Mailer
	Renderer    *notify.Renderer
	FromAddress string // mail.from
	Links       Linker // nil: delivery reports are not matched
	// IsPermanent classifies the mailer's errors (notify/smtp.IsPermanent).
	IsPermanent func(error) bool
	Alerts      Alerter // nil: no alerts
	SMSProvider string  // named in alerts: "Twilio", "console"
}

// New returns the delivery.Handler for stepupd's jobs.
func New(o Options) delivery.Handler {
	sms := delivery.SMSHandler(o.SMS)
	mux := delivery.Mux{
		message.KindSMS: delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			res, err := sms.Handle(ctx, j)
			if err == nil && o.Links != nil && j.Challenge != "" && res.ProviderID != "" {
				_ = o.Links.LinkProvider(ctx, res.ProviderID, j.Challenge)
			}
			return res, err
		}),
		message.KindMail: delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			var m message.Mail
			if err := json.Unmarshal(j.Payload, &m); err != nil {
				return delivery.Result{}, delivery.Permanent(errors.New("mail payload is not valid JSON"))
			}
			return delivery.Result{}, o.send(ctx, notify.Mail{Mail: m, FromAddress: o.FromAddress})
		}),
		message.KindNotify: delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			var n message.Notice
			if err := json.Unmarshal(j.Payload, &n); err != nil {
				return delivery.Result{}, delivery.Permanent(errors.New("notify payload is not valid JSON"))
			}
			m, err := o.render(n)
			if err != nil {
				return delivery.Result{}, delivery.Permanent(fmt.Errorf("render %s: %w", n.Event.Type, err))
			}
			return delivery.Result{}, o.send(ctx, m)
		}),
	}
	return delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
		ctx = tracing.WithTenant(ctx, j.Tenant) // for the senders' spans
		res, err := mux.Handle(ctx, j)
		if o.Alerts != nil && j.Tenant != "" && (err == nil || delivery.IsPermanent(err)) {
			o.Alerts.CountDelivery(ctx, j.Tenant, j.Kind, err == nil)
		}
		if err != nil && o.Alerts != nil && j.Tenant != "" && (delivery.IsPermanent(err) || j.Attempt+1 >= alertAfter) {
			channel, provider := "email", "the mail server"
			if j.Kind == message.KindSMS {
				channel, provider = "sms", o.SMSProvider
			}
			o.Alerts.Alert(ctx, j.Tenant, message.EvAlertDeliveryFailing, map[string]string{
				"channel": channel, "provider": provider, "last_error": string(delivery.Classify(err))})
		}
		return res, err
	})
}

func (o Options) send(ctx context.Context, m notify.Mail) error {
	if len(m.To) == 0 {
		return nil
	}
	err := o.Mail.Send(ctx, m)
	if err != nil && o.IsPermanent != nil && o.IsPermanent(err) {
		return delivery.Permanent(err)
	}
	return err
}

// render turns a notice into its mail.
func (o Options) render(n message.Notice) (notify.Mail, error) {
	from := notify.Sender{Name: n.SenderName, Address: o.FromAddress}
	if n.Audience == message.AudienceManagers {
		return o.Renderer.ManagerMail(n.Event, n.To, from)
	}
	if len(n.To) == 0 {
		return notify.Mail{}, errors.New("notice has no recipient")
	}
	return o.Renderer.UserMail(n.Event, notify.Recipient{Email: n.To[0], Name: n.Name, Locale: n.Locale, TimeZone: n.TimeZone}, from, n.ReportURL)
}
