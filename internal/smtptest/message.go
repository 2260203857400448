package smtptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// Message is one message the server accepted.
type Message struct {
	// Envelope: MAIL FROM and the accepted RCPT TO addresses.
	From string
	To   []string
	// Data is the message as received, headers and body.
	Data []byte

	// Parsed from Data. ParseErr is set when Data is not a readable
	// RFC 5322 message; the other parsed fields are then partial.
	Header      mail.Header
	Subject     string // decoded from RFC 2047
	FromName    string // display name of the From header
	FromAddress string // address of the From header
	HeaderTo    []string
	Text        string // the first text/plain part, decoded
	HTML        string // the first text/html part, decoded
	ParseErr    error

	// Session facts.
	Conn     int    // sequence number of the connection, from 1
	TLS      bool   // the message came over TLS (STARTTLS or implicit)
	AuthUser string // the authenticated user, or ""
}

// parse fills the parsed fields of m from m.Data.
func (m *Message) parse() {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		m.ParseErr = err
		return
	}
	m.Header = msg.Header
	dec := &mime.WordDecoder{}
	if s, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = s
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	if from, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
		m.FromName, m.FromAddress = from.Name, from.Address
	}
	if to, err := msg.Header.AddressList("To"); err == nil {
		for _, a := range to {
			m.HeaderTo = append(m.HeaderTo, a.Address)
		}
	}
	if err := m.walk(textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		m.ParseErr = err
	}
}

// walk descends into multipart bodies and keeps the first text and HTML
// parts.
func (m *Message) walk(h textproto.MIMEHeader, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart leaves the transfer encoding to decode below, the
			// same way for every encoding.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.walk(p.Header, p); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &stripSpace{r: body})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s part: %w", mediaType, err)
	}
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = string(b)
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = string(b)
	}
	return nil
}

// stripSpace drops the line breaks of a base64 body.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}
