package console

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/notify"
)

func TestSendLogsEachMail(t *testing.T) {
	var buf bytes.Buffer
	s := New(Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	mails := []notify.Mail{
		{Mail: message.Mail{To: []string{"alice@example.com"}, FromName: "Acme",
			Subject: "Your sign-in code", Text: "Your code is 123456.\n", HTML: "<p>Your code is 123456.</p>"}, FromAddress: "no-reply@acme.example"},
		{Mail: message.Mail{To: []string{"it@acme.example", "sec@acme.example"}, Subject: "Alert", Text: "SMS limit reached.\n"}},
	}
	if err := s.Send(context.Background(), mails...); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	for i, m := range mails {
		var rec struct {
			Level, Msg, Subject, Text string
			To                        []string
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.Level != "INFO" || rec.Msg != "mail" || rec.Subject != m.Subject || rec.Text != m.Text || !slices.Equal(rec.To, m.To) {
			t.Errorf("record %d = %+v, want mail %+v", i, rec, m)
		}
	}
	if dec.More() {
		t.Error("more records than mails")
	}
}

func TestZeroValueUsesDefaultLogger(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := New(Options{}).Send(context.Background(), notify.Mail{Mail: message.Mail{Subject: "hello"}}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("subject=hello")) {
		t.Errorf("default logger got %q", buf.String())
	}
}
