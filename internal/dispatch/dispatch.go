package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/engine"
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
	Alert(ctx context.Context, tenant, kind string, details map[string]string)
	CountDelivery(ctx context.Context, tenant, kind string, ok bool)
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
		"sms": delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			res, err := sms.Handle(ctx, j)
			if err == nil && o.Links != nil && j.Challenge != "" && res.ProviderID != "" {
				_ = o.Links.LinkProvider(ctx, res.ProviderID, j.Challenge)
			}
			return res, err
		}),
		"mail": delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			var m engine.Mail
			if err := json.Unmarshal(j.Payload, &m); err != nil {
				return delivery.Result{}, delivery.Permanent(errors.New("mail payload is not valid JSON"))
			}
			return delivery.Result{}, o.send(ctx, notify.Mail{To: m.To, FromName: m.FromName, FromAddress: o.FromAddress, Subject: m.Subject, Text: m.Text, HTML: m.HTML})
		}),
		"notify": delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
			var n engine.Notice
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
		res, err := mux.Handle(ctx, j)
		if o.Alerts != nil && j.Tenant != "" && (err == nil || delivery.IsPermanent(err)) {
			o.Alerts.CountDelivery(ctx, j.Tenant, j.Kind, err == nil)
		}
		if err != nil && o.Alerts != nil && j.Tenant != "" && (delivery.IsPermanent(err) || j.Attempt+1 >= alertAfter) {
			channel, provider := "email", "the mail server"
			if j.Kind == "sms" {
				channel, provider = "sms", o.SMSProvider
			}
			o.Alerts.Alert(ctx, j.Tenant, "alert_delivery_failing", map[string]string{
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
func (o Options) render(n engine.Notice) (notify.Mail, error) {
	ev := notify.Event{ID: n.Event.ID, Tenant: n.Event.Tenant, User: n.Event.User, Type: n.Event.Type, At: n.Event.At,
		Actor: n.Event.Actor, IP: n.Event.IP, Country: n.Event.Country, Browser: n.Event.Browser, OS: n.Event.OS, Details: n.Event.Details}
	from := notify.Sender{Name: n.SenderName, Address: o.FromAddress}
	if n.Audience == "managers" {
		return o.Renderer.ManagerMail(ev, n.To, from)
	}
	return o.Renderer.UserMail(ev, notify.Recipient{Email: n.To[0], Name: n.Name, Locale: n.Locale, TimeZone: n.TimeZone}, from, n.ReportURL)
}
