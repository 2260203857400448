package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/stepup-auth/stepup/internal/mask"
	"github.com/stepup-auth/stepup/internal/tracing"
	"github.com/stepup-auth/stepup/notify"
)

// TLS modes of Options.TLS, as in the mail.smtp.tls setting.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// Options configure a Sender. Only Host is required.
type Options struct {
	Host string
	// Port defaults to 587 for STARTTLS, 465 for implicit TLS and 25 without
	// TLS.
	Port int
	// Username turns SMTP AUTH on; the mechanism is the strongest both sides
	// support. Without TLS only challenge-response mechanisms (SCRAM,
	// CRAM-MD5) are used, never a password in clear text.
	Username, Password string
	// TLS is TLSStartTLS (the default: STARTTLS is required, a server that
	// does not offer it is an error), TLSImplicit or TLSNone.
	TLS string
	// InsecureSkipVerify accepts any server certificate. For tests and
	// trusted networks only.
	InsecureSkipVerify bool
	// RootCAs verifies the server certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each SMTP step; default 15s.
	Timeout time.Duration
	// HELO is the name sent in EHLO; default the host name.
	HELO string
	// From is the sender address of a mail that has no FromAddress
	// (config mail.from).
	From string
	// TracerProvider traces each Send (span "smtp.send" with the tenant
	// and the number of mails, never an address or content); nil traces
	// nothing.
	TracerProvider trace.TracerProvider
}

// Sender sends mails over SMTP. It is safe for concurrent use; each Send
// opens its own connection.
type Sender struct {
	client *mail.Client
	from   string
	tracer trace.Tracer
}

// New checks the options and prepares a client. It does not connect.
func New(opts Options) (*Sender, error) {
	if strings.TrimSpace(opts.Host) == "" {
		return nil, errors.New("smtp: no host")
	}
	tlsConfig := &tls.Config{
		ServerName:         opts.Host,
		RootCAs:            opts.RootCAs,
		InsecureSkipVerify: opts.InsecureSkipVerify, //nolint:gosec // opt-in, documented
		MinVersion:         tls.VersionTLS12,
	}
	mode := opts.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	port := opts.Port
	mailOpts := []mail.Option{mail.WithTLSConfig(tlsConfig)}
	switch mode {
	case TLSStartTLS:
		mailOpts = append(mailOpts, mail.WithTLSPolicy(mail.TLSMandatory))
		if port == 0 {
			port = mail.DefaultPortTLS
		}
	case TLSImplicit:
		mailOpts = append(mailOpts, mail.WithSSL())
		if port == 0 {
			port = mail.DefaultPortSSL
		}
	case TLSNone:
		mailOpts = append(mailOpts, mail.WithTLSPolicy(mail.NoTLS))
		if port == 0 {
			port = mail.DefaultPort
		}
	default:
		return nil, fmt.Errorf("smtp: tls must be %q, %q or %q, not %q", TLSStartTLS, TLSImplicit, TLSNone, opts.TLS)
	}
	mailOpts = append(mailOpts, mail.WithPort(port))
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = mail.DefaultTimeout
	}
	mailOpts = append(mailOpts, mail.WithTimeout(timeout))
	if opts.HELO != "" {
		mailOpts = append(mailOpts, mail.WithHELO(opts.HELO))
	}
	if opts.Username != "" {
		mailOpts = append(mailOpts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(opts.Username),
			mail.WithPassword(opts.Password))
	}
	client, err := mail.NewClient(opts.Host, mailOpts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return &Sender{client: client, from: opts.From, tracer: tracing.Tracer(opts.TracerProvider)}, nil
}

// copyOf is one mail to one recipient, as one SMTP transaction.
type copyOf struct {
	index int // of the mail in the batch
	to    string
	msg   *mail.Msg
}

// Send delivers mails over one connection, one copy per recipient. It
// returns nil when every copy was accepted, and otherwise an *Error listing
// the copies that were not; see Error for what to retry. ctx bounds the
// whole send but the greeting, EHLO, STARTTLS and AUTH, which
// Options.Timeout bounds: once ctx has ended no mail is started and the
// step under way is cut off.
func (s *Sender) Send(ctx context.Context, mails ...notify.Mail) (err error) {
	ctx, span := tracing.StartSend(ctx, s.tracer, "smtp")
	span.SetAttributes(attribute.Int("stepup.mails", len(mails)))
	defer func() { tracing.EndSend(span, err) }()
	var copies []copyOf
	var failed []Failure
	for i, m := range mails {
		if len(m.To) == 0 {
			failed = append(failed, Failure{Index: i, Mail: m, Permanent: true,
				Err: errors.New("mail has no recipient")})
			continue
		}
		for _, to := range m.To {
			msg, err := s.message(m, to)
			if err != nil {
				failed = append(failed, Failure{Index: i, To: to, Mail: only(m, to), Permanent: true, Err: err})
				continue
			}
			copies = append(copies, copyOf{index: i, to: to, msg: msg})
		}
	}
	if len(copies) == 0 {
		return errorOf(failed, 0)
	}
	if err := ctx.Err(); err != nil {
		return errorOf(append(failed, failAll(copies, mails, err)...), 0)
	}

	msgs := make([]*mail.Msg, len(copies))
	for i, c := range copies {
		msgs[i] = c.msg
	}
	err = s.dialAndSend(ctx, msgs)

	delivered := 0
	for _, c := range copies {
		switch {
		case c.msg.IsDelivered():
			// Accepted, even if a later RSET or QUIT failed.
			delivered++
		case c.msg.HasSendError():
			failed = append(failed, failureOf(c, mails, c.msg.SendError()))
		default:
			// Never tried: the connection, TLS or AUTH failed first.
			cause := err
			if cause == nil {
				cause = errors.New("not sent")
			}
			failed = append(failed, connFailure(c, mails, cause))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return errorOf(failed, delivered)
}

// dialAndSend is go-mail's DialAndSendWithContext, but bounded by ctx from
// the greeting to QUIT: go-mail heeds ctx only while connecting, and each
// later step only by Options.Timeout. The queue's worker bounds a send with
// ctx and lets another worker take the job over once it has been idle for
// longer, so a send still running after ctx ended could have a code mailed
// twice. Nothing is sent once ctx has ended; a step under way is cut off
// by closing the connection (the client holds its own lock for a whole
// step, so its deadline cannot be moved meanwhile).
func (s *Sender) dialAndSend(ctx context.Context, msgs []*mail.Msg) error {
	client, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("dial failed: %w", err)
	}
	conn := client.Text
	if err := ctx.Err(); err != nil {
		_ = conn.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	sendErr := s.client.SendWithSMTPClient(client, msgs...)
	closeErr := s.client.CloseWithSMTPClient(client)
	if sendErr != nil {
		return errors.Join(fmt.Errorf("send failed: %w", sendErr), ctx.Err())
	}
	if closeErr != nil {
		return fmt.Errorf("failed to close connection: %w", closeErr)
	}
	return nil
}

// message builds the copy of m for one recipient.
func (s *Sender) message(m notify.Mail, to string) (*mail.Msg, error) {
	from := m.FromAddress
	if from == "" {
		from = s.from
	}
	if from == "" {
		return nil, errors.New("mail has no sender address")
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	// The address is parsed alone and the name set as a value: a sender
	// name is any printable text, and pasted into a header as go-mail's
	// FromFormat does, a quote or a comma in it would garble the mail or
	// make every mail of its tenant unsendable.
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from %s: invalid address", mask.Email(from))
	}
	if m.FromName != "" {
		addr.Name = m.FromName
	}
	msg.FromMailAddress(addr)
	if err := msg.To(to); err != nil {
		return nil, fmt.Errorf("to %s: invalid address", mask.Email(to))
	}
	msg.Subject(m.Subject)
	// RFC 3834: an automatic notice; auto-responders should not answer it.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	}
	return msg, nil
}

// only is m addressed to one recipient.
func only(m notify.Mail, to string) notify.Mail {
	m.To = []string{to}
	return m
}

func failAll(copies []copyOf, mails []notify.Mail, err error) []Failure {
	out := make([]Failure, len(copies))
	for i, c := range copies {
		out[i] = connFailure(c, mails, err)
	}
	return out
}

// connFailure is a copy never attempted because the session failed before
// it: the connection, TLS, AUTH or the context. These are retryable
// whatever the reply code: they are about the server or the configuration,
// not the message, and a fixed setting or a recovered server delivers it.
func connFailure(c copyOf, mails []notify.Mail, err error) Failure {
	return Failure{
		Index: c.index, To: c.to, Mail: only(mails[c.index], c.to),
		Code: replyCode(err), Permanent: false, Err: err,
	}
}

// failureOf classifies the server's answer to one copy's transaction.
func failureOf(c copyOf, mails []notify.Mail, err error) Failure {
	f := Failure{Index: c.index, To: c.to, Mail: only(mails[c.index], c.to), Err: err}
	var se *mail.SendError
	if errors.As(err, &se) {
		f.Code = se.ErrorCode()
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			// The message itself is unsendable; retrying changes nothing.
			f.Permanent = true
		}
	}
	if f.Code == 0 {
		f.Code = replyCode(err)
	}
	// RFC 5321 4.2.1: 5yz is a permanent negative reply, 4yz transient.
	// Anything without a code (a dropped connection mid-transaction) is
	// worth another try.
	if f.Code >= 500 && f.Code < 600 {
		f.Permanent = true
	}
	return f
}
