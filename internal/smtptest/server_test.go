package smtptest

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const testMessage = "From: \"Acme\" <no-reply@acme.example>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?UTF-8?q?Caf=C3=A9_notice?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Caf=C3=A9 text=\r\n body\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SFRNTDwv\r\ncD4=\r\n" +
	"--b1--\r\n"

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestDeliverAndParse(t *testing.T) {
	s := NewServer(t, Options{})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("bounce@acme.example", []string{"alice@example.com", "bob@example.com"}, strings.NewReader(testMessage)); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.WaitFor(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.ParseErr != nil {
		t.Fatal(m.ParseErr)
	}
	checks := []struct{ name, got, want string }{
		{"envelope from", m.From, "bounce@acme.example"},
		{"envelope to", strings.Join(m.To, ","), "alice@example.com,bob@example.com"},
		{"subject", m.Subject, "Café notice"},
		{"from name", m.FromName, "Acme"},
		{"from address", m.FromAddress, "no-reply@acme.example"},
		{"header to", strings.Join(m.HeaderTo, ","), "alice@example.com"},
		{"text", m.Text, "Café text body"},
		{"html", m.HTML, "<p>HTML</p>"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if m.TLS || m.AuthUser != "" || m.Conn != 1 {
		t.Errorf("session facts: TLS %v, user %q, conn %d", m.TLS, m.AuthUser, m.Conn)
	}
}

func TestTLSAndAuth(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		dial     func(s *Server) (*smtp.Client, error)
		user     string
		pass     string
		wantCode int // 0: delivered
	}{
		{"starttls good password", TLSStartTLS, dialStartTLS, "mailer", "s3cret", 0},
		{"starttls wrong password", TLSStartTLS, dialStartTLS, "mailer", "nope", 535},
		{"starttls unknown user", TLSStartTLS, dialStartTLS, "root", "s3cret", 535},
		{"implicit tls", TLSImplicit, dialTLS, "mailer", "s3cret", 0},
		{"no auth", TLSStartTLS, dialStartTLS, "", "", 530},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, Options{TLS: tt.mode, Username: "mailer", Password: "s3cret"})
			c, err := tt.dial(s)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.user != "" {
				err = c.Auth(sasl.NewPlainClient("", tt.user, tt.pass))
			}
			if err == nil {
				err = c.SendMail("a@acme.example", []string{"b@example.com"}, strings.NewReader(testMessage))
			}
			if got := smtpCode(err); got != tt.wantCode {
				t.Fatalf("error %v (code %d), want code %d", err, got, tt.wantCode)
			}
			if tt.wantCode != 0 {
				return
			}
			msgs, err := s.WaitFor(1, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !msgs[0].TLS || msgs[0].AuthUser != "mailer" {
				t.Errorf("TLS %v, user %q", msgs[0].TLS, msgs[0].AuthUser)
			}
		})
	}
}

func TestAuthNotOfferedBeforeStartTLS(t *testing.T) {
	s := NewServer(t, Options{TLS: TLSStartTLS, Username: "mailer", Password: "s3cret"})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered on a plain connection")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
}

func TestLoginMechanism(t *testing.T) {
	s := NewServer(t, Options{TLS: TLSImplicit, Username: "mailer", Password: "s3cret"})
	for _, tt := range []struct {
		pass string
		want int
	}{{"s3cret", 0}, {"bad", 535}} {
		c, err := dialTLS(s)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(sasl.NewLoginClient("mailer", tt.pass))
		if got := smtpCode(err); got != tt.want {
			t.Errorf("LOGIN with %q: %v, want code %d", tt.pass, err, tt.want)
		}
		c.Close()
	}
}

func TestScriptedFailures(t *testing.T) {
	s := NewServer(t, Options{TempFail: 1, Reject: []string{"Gone@Example.com"}})
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(to string) error {
		return c.SendMail("a@acme.example", []string{to}, strings.NewReader(testMessage))
	}
	if code := smtpCode(send("b@example.com")); code != 451 {
		t.Errorf("first message: code %d, want 451", code)
	}
	if code := smtpCode(send("gone@example.com")); code != 550 {
		t.Errorf("rejected recipient: code %d, want 550", code)
	}
	if err := send("b@example.com"); err != nil {
		t.Errorf("third message: %v", err)
	}
	s.TempFailNext(1)
	if code := smtpCode(send("b@example.com")); code != 451 {
		t.Errorf("after TempFailNext: code %d, want 451", code)
	}
	s.Reject("c@example.com")
	if code := smtpCode(send("c@example.com")); code != 550 {
		t.Errorf("after Reject: code %d, want 550", code)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("inbox has %d messages, want 1", n)
	}
}

func TestDropConnections(t *testing.T) {
	s := NewServer(t, Options{DropConns: 1})
	hello := func() error {
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Hello("localhost") // the client reads the greeting lazily
	}
	if err := hello(); err == nil {
		t.Fatal("first connection was not dropped")
	}
	if err := hello(); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("Connections() = %d, want 2", n)
	}
}

func TestStopStart(t *testing.T) {
	s := NewServer(t, Options{})
	addr := s.Addr()
	s.Stop()
	s.Stop() // idempotent
	if c, err := smtp.Dial(addr); err == nil {
		err = c.Hello("localhost")
		c.Close()
		if err == nil {
			t.Fatal("server answered while stopped")
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start of a running server: no error")
	}
	if s.Addr() != addr {
		t.Errorf("restarted on %s, want %s", s.Addr(), addr)
	}
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("a@acme.example", []string{"b@example.com"}, strings.NewReader(testMessage)); err != nil {
		t.Fatal(err)
	}
}

func TestWaitForTimeout(t *testing.T) {
	s := NewServer(t, Options{})
	msgs, err := s.WaitFor(1, 10*time.Millisecond)
	if err == nil || len(msgs) != 0 {
		t.Errorf("WaitFor on an empty inbox: %v, %d messages", err, len(msgs))
	}
}

func dialStartTLS(s *Server) (*smtp.Client, error) {
	return smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost"})
}

func dialTLS(s *Server) (*smtp.Client, error) {
	return smtp.DialTLS(s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: s.Host()})
}
