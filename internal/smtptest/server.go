package smtptest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of Options.TLS, named as in stepup's mail.smtp.tls setting.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
)

// Options configure a Server. The zero value is a plain server on a free
// loopback port that accepts every message without authentication.
type Options struct {
	// TLS is TLSNone (the default), TLSStartTLS or TLSImplicit.
	TLS string
	// Username and Password, when Username is set, make the server offer
	// AUTH PLAIN and LOGIN (after STARTTLS in that mode) and refuse MAIL
	// from unauthenticated clients with 530. Wrong credentials get 535.
	Username, Password string
	// TempFail answers 451 at the end of DATA to the first TempFail
	// messages, as a greylisting or overloaded server would.
	TempFail int
	// Reject answers 550 to RCPT TO for these addresses (any case).
	Reject []string
	// DropConns closes the first DropConns connections as soon as they are
	// accepted, before the greeting.
	DropConns int
}

// Server is an SMTP server on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	opts Options
	cert tls.Certificate
	pool *x509.CertPool

	mu        sync.Mutex
	addr      string // fixed by the first Start, so restarts keep the port
	srv       *smtp.Server
	ln        net.Listener  // the running server's TCP listener
	served    chan struct{} // closed when the running server's Serve returns
	msgs      []Message
	arrived   chan struct{} // closed and replaced whenever a message arrives
	conns     int
	tempFail  int
	dropConns int
	reject    map[string]bool
}

// NewServer starts a server and stops it when the test ends. It fails the
// test if the server cannot start.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := newServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func newServer(opts Options) (*Server, error) {
	switch opts.TLS {
	case "":
		opts.TLS = TLSNone
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return nil, fmt.Errorf("smtptest: unknown TLS mode %q", opts.TLS)
	}
	cert, pool, err := newCertificate()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		cert:      cert,
		pool:      pool,
		addr:      "127.0.0.1:0",
		arrived:   make(chan struct{}),
		tempFail:  opts.TempFail,
		dropConns: opts.DropConns,
		reject:    map[string]bool{},
	}
	for _, a := range opts.Reject {
		s.reject[strings.ToLower(a)] = true
	}
	return s, nil
}

// Start listens and serves. The first Start picks a free port; later ones
// reuse it, so a client configured once finds the server again.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("smtptest: server already running")
	}
	// Go sets SO_REUSEADDR, so the port of a stopped server is free again
	// at once.
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smtptest: listen: %w", err)
	}
	s.addr = l.Addr().String()
	s.ln = l
	l = &listener{Listener: l, s: s}

	tlsConfig := &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ErrorLog = log.New(io.Discard, "", 0)
	switch s.opts.TLS {
	case TLSStartTLS:
		srv.TLSConfig = tlsConfig
	case TLSImplicit:
		l = tls.NewListener(l, tlsConfig)
	case TLSNone:
		srv.AllowInsecureAuth = true
	}

	served := make(chan struct{})
	s.srv, s.served = srv, served
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	return nil
}

// Stop closes the listener and every open connection, and waits until the
// server no longer accepts. Clients then get "connection refused" until
// Start. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	// Close only closes the listeners Serve has registered; if Serve has
	// not run yet, closing ours makes its first Accept fail and return.
	_ = ln.Close()
	<-served
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Host is the address to dial and to verify the certificate against.
func (s *Server) Host() string {
	host, _, _ := net.SplitHostPort(s.Addr())
	return host
}

// Port is the server's port.
func (s *Server) Port() int {
	_, port, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(port)
	return n
}

// CertPool trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Connections is the number of connections accepted so far, dropped ones
// included.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// TempFailNext answers 451 to the next n messages.
func (s *Server) TempFailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tempFail = n
}

// DropNext closes the next n connections as soon as they are accepted.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropConns = n
}

// Reject answers 550 to RCPT TO for these addresses from now on.
func (s *Server) Reject(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		s.reject[strings.ToLower(a)] = true
	}
}

// Messages returns a copy of the inbox, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Clear empties the inbox.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// WaitFor waits until the inbox holds at least n messages and returns them
// all. After timeout it returns what arrived and an error.
func (s *Server) WaitFor(n int, timeout time.Duration) ([]Message, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			msgs := s.Messages()
			return msgs, fmt.Errorf("smtptest: %d of %d messages after %v", len(msgs), n, timeout)
		}
	}
}

func (s *Server) deliver(m Message) {
	m.parse()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// accepted counts a connection and says whether to drop it.
func (s *Server) accepted() (id int, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	if s.dropConns > 0 {
		s.dropConns--
		return s.conns, true
	}
	return s.conns, false
}

func (s *Server) takeTempFail() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tempFail > 0 {
		s.tempFail--
		return true
	}
	return false
}

func (s *Server) rejects(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reject[strings.ToLower(addr)]
}

// listener numbers connections and drops the ones scripted to fail.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		id, drop := l.s.accepted()
		if drop {
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, id: id}, nil
	}
}

type countedConn struct {
	net.Conn
	id int
}

// connID finds the number listener gave a connection, under any TLS layer.
func connID(c net.Conn) int {
	for {
		switch cc := c.(type) {
		case *countedConn:
			return cc.id
		case *tls.Conn:
			c = cc.NetConn()
		default:
			return 0
		}
	}
}

var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errMailbox      = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Mailbox unavailable"}
	errTryLater     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
)

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, conn: connID(c.Conn()), tls: isTLS}, nil
}

// session is one SMTP session; go-smtp starts a new one after STARTTLS.
type session struct {
	s        *Server
	conn     int
	tls      bool
	authUser string
	from     string
	to       []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return smtp.ErrAuthFailed
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.authUser == "" {
		return errAuthRequired
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.rejects(to) {
		return errMailbox
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.takeTempFail() {
		return errTryLater
	}
	ss.s.deliver(Message{
		From: ss.from, To: append([]string(nil), ss.to...), Data: data,
		Conn: ss.conn, TLS: ss.tls, AuthUser: ss.authUser,
	})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// loginServer is the server side of the (obsolete but common) LOGIN
// mechanism, which go-sasl only implements for clients.
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) == 0 { // no initial response: ask for the name
			return []byte("Username:"), false, nil
		}
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, errors.New("unexpected response")
}
