package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/notify"
)

const waitTime = 10 * time.Second

func testMail(to ...string) notify.Mail {
	return notify.Mail{Mail: message.Mail{
		To:       to,
		FromName: "Acme Ltd, Security",
		Subject:  "Your phone number for two-factor authentication was changed",
		Text:     "Hi Alice,\n\nThe phone number was changed to +61 ••••• ••789.\n",
		HTML:     "<p>Hi Alice,</p><p>The phone number was changed to <strong>+61 ••••• ••789</strong>.</p>\n",
	}, FromAddress: "no-reply@acme.example"}
}

// newSender points a Sender at srv.
func newSender(t *testing.T, srv *smtptest.Server, opts Options) *Sender {
	t.Helper()
	opts.Host, opts.Port = srv.Host(), srv.Port()
	if opts.RootCAs == nil {
		opts.RootCAs = srv.CertPool()
	}
	if opts.Timeout == 0 {
		opts.Timeout = waitTime
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name    string
		server  smtptest.Options
		sender  Options
		wantTLS bool
	}{
		{"starttls with auth",
			smtptest.Options{TLS: smtptest.TLSStartTLS, Username: "mailer", Password: "s3cret"},
			Options{TLS: TLSStartTLS, Username: "mailer", Password: "s3cret"}, true},
		{"starttls is the default",
			smtptest.Options{TLS: smtptest.TLSStartTLS},
			Options{}, true},
		{"implicit tls with auth",
			smtptest.Options{TLS: smtptest.TLSImplicit, Username: "mailer", Password: "s3cret"},
			Options{TLS: TLSImplicit, Username: "mailer", Password: "s3cret"}, true},
		{"no tls",
			smtptest.Options{TLS: smtptest.TLSNone},
			Options{TLS: TLSNone}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.server)
			s := newSender(t, srv, tt.sender)
			if err := s.Send(context.Background(), testMail("alice@example.com")); err != nil {
				t.Fatal(err)
			}
			msgs, err := srv.WaitFor(1, waitTime)
			if err != nil {
				t.Fatal(err)
			}
			m := msgs[0]
			if m.ParseErr != nil {
				t.Fatal(m.ParseErr)
			}
			want := testMail()
			checks := []struct{ what, got, want string }{
				{"from name", m.FromName, want.FromName},
				{"from address", m.FromAddress, want.FromAddress},
				{"envelope from", m.From, want.FromAddress},
				{"envelope to", strings.Join(m.To, ","), "alice@example.com"},
				{"subject", m.Subject, want.Subject},
				{"text", strings.ReplaceAll(m.Text, "\r\n", "\n"), want.Text},
				{"html", strings.ReplaceAll(m.HTML, "\r\n", "\n"), want.HTML},
				{"auth user", m.AuthUser, tt.server.Username},
				{"auto-submitted", m.Header.Get("Auto-Submitted"), "auto-generated"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if m.TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", m.TLS, tt.wantTLS)
			}
			if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
				t.Errorf("Content-Type = %q, want multipart/alternative", ct)
			}
		})
	}
}

func TestStartTLSRequired(t *testing.T) {
	// A server without STARTTLS must not get the mail (or a password) in
	// clear text when the sender asked for STARTTLS.
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSNone})
	s := newSender(t, srv, Options{TLS: TLSStartTLS})
	err := s.Send(context.Background(), testMail("alice@example.com"))
	if err == nil {
		t.Fatal("sent without STARTTLS")
	}
	if IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want retryable", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSImplicit})
	opts := Options{TLS: TLSImplicit, Host: srv.Host(), Port: srv.Port(), Timeout: waitTime} // system roots
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMail("alice@example.com")); err == nil {
		t.Fatal("sent to a server with an untrusted certificate")
	}
	opts.InsecureSkipVerify = true
	if s, err = New(opts); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMail("alice@example.com")); err != nil {
		t.Fatalf("with InsecureSkipVerify: %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSStartTLS, Username: "mailer", Password: "s3cret"})
	s := newSender(t, srv, Options{Username: "mailer", Password: "wrong"})
	err := s.Send(context.Background(), testMail("alice@example.com"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if f := e.Failures[0]; f.Code != 535 || f.Permanent {
		t.Errorf("failure = %+v, want code 535, retryable (a configuration fault, not the mail's)", f)
	}
	if c := delivery.Classify(err); c != delivery.ClassAuthFailed {
		t.Errorf("Classify = %s, want auth_failed", c)
	}
	if IsPermanent(err) {
		t.Error("IsPermanent = true for an AUTH failure")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestRejectedRecipientIsPermanent(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{Reject: []string{"gone@example.com"}})
	s := newSender(t, srv, Options{TLS: TLSNone})
	err := s.Send(context.Background(), testMail("gone@example.com"))
	if !IsPermanent(err) {
		t.Fatalf("IsPermanent(%v) = false, want true", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Failures[0].Code != 550 || e.Failures[0].To != "gone@example.com" {
		t.Errorf("err = %#v, want one 550 failure for gone@example.com", err)
	}
	if got := e.Retryable(); len(got) != 0 {
		t.Errorf("Retryable() = %v, want none", got)
	}
	// The text goes to logs and the dead-letter queue: no full address.
	if msg := err.Error(); strings.Contains(msg, "gone@example.com") || !strings.Contains(msg, "g•••@example.com") || !strings.Contains(msg, "550") {
		t.Errorf("err.Error() = %q, want the 550 and the masked address only", msg)
	}
	if c := e.ErrorClass(); c != delivery.ClassRecipientRejected {
		t.Errorf("ErrorClass() = %s, want recipient_rejected", c)
	}
}

func TestOneBadRecipientDoesNotLoseTheOthers(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{Reject: []string{"gone@example.com"}})
	s := newSender(t, srv, Options{TLS: TLSNone})
	err := s.Send(context.Background(), testMail("it@acme.example", "gone@example.com", "security@acme.example"))
	if !IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false; the only failure is a 550", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Delivered != 2 || len(e.Failures) != 1 {
		t.Fatalf("err = %v, want 2 delivered and 1 failure", err)
	}
	msgs, err := srv.WaitFor(2, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		// Each copy names only its own recipient.
		if len(m.To) != 1 || !slices.Equal(m.HeaderTo, m.To) {
			t.Errorf("envelope %v, header To %v", m.To, m.HeaderTo)
		}
		got = append(got, m.To...)
	}
	if want := []string{"it@acme.example", "security@acme.example"}; !slices.Equal(got, want) {
		t.Errorf("delivered to %v, want %v", got, want)
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSStartTLS})
	s := newSender(t, srv, Options{})
	srv.Stop()
	err := s.Send(context.Background(), testMail("alice@example.com"))
	if err == nil {
		t.Fatal("sent to a stopped server")
	}
	if IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want retryable", err)
	}
	if c := delivery.Classify(err); c != delivery.ClassUnavailable {
		t.Errorf("Classify = %s, want unavailable", c)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("err = %v, want a *net.OpError inside", err)
	}
	var e *Error
	if errors.As(err, &e) {
		if r := e.Retryable(); len(r) != 1 || r[0].To[0] != "alice@example.com" {
			t.Errorf("Retryable() = %v", r)
		}
	}

	// Back on the same port, the retry goes through.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), e.Retryable()...); err != nil {
		t.Fatalf("retry after restart: %v", err)
	}
	if _, err := srv.WaitFor(1, waitTime); err != nil {
		t.Fatal(err)
	}
}

func TestDroppedConnectionIsRetryable(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{DropConns: 1})
	s := newSender(t, srv, Options{TLS: TLSNone})
	err := s.Send(context.Background(), testMail("alice@example.com"))
	if err == nil || IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if err := s.Send(context.Background(), testMail("alice@example.com")); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
}

func TestTemporaryFailures(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TempFail: 1})
	s := newSender(t, srv, Options{TLS: TLSNone})
	mails := []notify.Mail{testMail("a@example.com"), testMail("b@example.com")}
	err := s.Send(context.Background(), mails...)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if IsPermanent(err) || e.Delivered != 1 || e.Failures[0].Code != 451 || e.Failures[0].Index != 0 {
		t.Errorf("err = %+v, want one retryable 451 for mail 0 and one delivery", e)
	}
	retry := e.Retryable()
	if len(retry) != 1 || !slices.Equal(retry[0].To, []string{"a@example.com"}) {
		t.Fatalf("Retryable() = %v, want the first mail only", retry)
	}
	if err := s.Send(context.Background(), retry...); err != nil {
		t.Fatal(err)
	}
	if msgs, err := srv.WaitFor(2, waitTime); err != nil || len(msgs) != 2 {
		t.Errorf("inbox: %d messages, %v", len(msgs), err)
	}
}

func TestBatchUsesOneConnection(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.TLSStartTLS, Username: "mailer", Password: "s3cret"})
	s := newSender(t, srv, Options{Username: "mailer", Password: "s3cret"})
	var mails []notify.Mail
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		m := testMail(to)
		m.Subject += " for " + to
		mails = append(mails, m)
	}
	if err := s.Send(context.Background(), mails...); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.WaitFor(3, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	for i, m := range msgs {
		if m.Conn != 1 || m.Subject != mails[i].Subject {
			t.Errorf("message %d: conn %d, subject %q", i, m.Conn, m.Subject)
		}
	}
}

func TestUnsendableMails(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newSender(t, srv, Options{TLS: TLSNone})
	noFrom := testMail("a@example.com")
	noFrom.FromAddress = ""
	badTo := testMail("not an address")
	err := s.Send(context.Background(), testMail(), noFrom, badTo)
	var e *Error
	if !errors.As(err, &e) || len(e.Failures) != 3 || !IsPermanent(err) {
		t.Fatalf("err = %v, want 3 permanent failures", err)
	}
	if srv.Connections() != 0 {
		t.Error("connected with nothing to send")
	}

	// Options.From stands in for a missing FromAddress.
	s = newSender(t, srv, Options{TLS: TLSNone, From: "default@acme.example"})
	if err := s.Send(context.Background(), noFrom); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.WaitFor(1, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].FromAddress != "default@acme.example" {
		t.Errorf("From = %q", msgs[0].FromAddress)
	}
}

func TestCancelledContext(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newSender(t, srv, Options{TLS: TLSNone})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Send(ctx, testMail("a@example.com"))
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("err = %v, want retryable context.Canceled", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no host", Options{}},
		{"bad tls", Options{Host: "localhost", TLS: "ssl"}},
		{"bad port", Options{Host: "localhost", Port: 70000}},
		{"bad timeout", Options{Host: "localhost", Timeout: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"other error", errors.New("boom"), false},
		{"empty", &Error{}, false},
		{"all permanent", &Error{Failures: []Failure{{Code: 550, Permanent: true}, {Code: 553, Permanent: true}}}, true},
		{"one retryable", &Error{Failures: []Failure{{Code: 550, Permanent: true}, {Code: 451}}}, false},
		{"wrapped", errors.Join(errors.New("queue"), &Error{Failures: []Failure{{Permanent: true}}}), true},
	}
	for _, tt := range tests {
		if got := IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSenderNameIsQuoted(t *testing.T) {
	// A tenant's sender name is any printable text: quotes, backslashes,
	// angle brackets and commas are its own and must neither break the
	// mail nor add an address to From.
	for _, name := range []string{
		`Acme "Blue" Ltd`,
		`Back\slash`,
		`a" <evil@attacker.example>, "b`,
		`Zoë <Support>`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{})
			s := newSender(t, srv, Options{TLS: TLSNone})
			m := testMail("alice@example.com")
			m.FromName = name
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			msgs, err := srv.WaitFor(1, waitTime)
			if err != nil {
				t.Fatal(err)
			}
			if msgs[0].ParseErr != nil {
				t.Fatal(msgs[0].ParseErr)
			}
			if msgs[0].FromName != name || msgs[0].FromAddress != m.FromAddress {
				t.Errorf("From = %q <%s>, want %q <%s>", msgs[0].FromName, msgs[0].FromAddress, name, m.FromAddress)
			}
		})
	}
}

// tarpit is an SMTP server that accepts a message's data and then never
// answers, as an overloaded or tarpitting server may. It stops when the
// test ends.
func tarpit(t *testing.T) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			go func() {
				r := bufio.NewReader(conn)
				fmt.Fprint(conn, "220 tarpit ESMTP\r\n")
				data := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case data:
						if line == ".\r\n" {
							_, _ = io.Copy(io.Discard, r) // never answers; ends when the client hangs up
							return
						}
					case strings.HasPrefix(strings.ToUpper(line), "DATA"):
						data = true
						fmt.Fprint(conn, "354 go ahead\r\n")
					default:
						fmt.Fprint(conn, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	return "127.0.0.1", addr.Port
}

func TestSendHonoursContext(t *testing.T) {
	// The queue's worker bounds a send with its context and lets another
	// worker take the job over once it has been idle for longer: a Send
	// that outlives its context while the server stalls would have the
	// code mailed twice. Each SMTP step's own timeout is far longer here.
	host, port := tarpit(t)
	s, err := New(Options{Host: host, Port: port, TLS: TLSNone, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, testMail("alice@example.com")) }()
	select {
	case err := <-done:
		if err == nil || IsPermanent(err) {
			t.Errorf("err = %v, want a retryable error", err)
		}
	case <-time.After(waitTime):
		t.Fatal("Send still running long after its context ended")
	}
}
