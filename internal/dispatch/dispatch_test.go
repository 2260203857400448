package dispatch

import (
	"context"
	"testing"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/notify"
)

type nopMailer struct{ n int }

func (m *nopMailer) Send(context.Context, ...notify.Mail) error { m.n++; return nil }

type nopSMS struct{ n int }

func (s *nopSMS) Send(context.Context, string, string) (string, error) { s.n++; return "SM1", nil }

// TestPoisonPayloadsArePermanent: a payload the handler cannot use fails
// permanently, so the job is dead-lettered at once, instead of panicking
// (retried as a crash until the attempts run out) or sending nothing and
// reporting success.
func TestPoisonPayloadsArePermanent(t *testing.T) {
	r, err := notify.NewRenderer(notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		kind    message.Kind
		payload string
	}{
		{"sms not json", message.KindSMS, `{`},
		{"mail not json", message.KindMail, `[]`},
		{"notify not json", message.KindNotify, `"x"`},
		{"user notice without address", message.KindNotify, `{"audience":"user","event":{"type":"phone_changed"},"to":[]}`},
		{"user notice to null", message.KindNotify, `{"audience":"user","event":{"type":"phone_changed"}}`},
		{"manager notice without address", message.KindNotify, `{"audience":"managers","event":{"type":"admin_reset"},"to":[]}`},
		{"unknown event", message.KindNotify, `{"audience":"user","event":{"type":"nope"},"to":["a@example.com"]}`},
		{"unknown kind", "fax", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mail, sms := &nopMailer{}, &nopSMS{}
			h := New(Options{SMS: sms, Mail: mail, Renderer: r, FromAddress: "no-reply@acme.example"})
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("handler panicked: %v", p)
					}
				}()
				_, err = h.Handle(context.Background(), delivery.Job{Kind: tt.kind, Tenant: "acme", Payload: []byte(tt.payload)})
			}()
			if !delivery.IsPermanent(err) {
				t.Errorf("err = %v, want a permanent error", err)
			}
			if mail.n+sms.n != 0 {
				t.Errorf("sent %d messages", mail.n+sms.n)
			}
		})
	}
}
