package twiliotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default credentials of a Server; they pass twilio-go's credential check
// (alphanumeric).
const (
	AccountSID = "AC00000000000000000000000000000001"
	AuthToken  = "0123456789abcdef0123456789abcdef"
)

// Options configures a Server. Zero fields take the defaults noted.
type Options struct {
	AccountSID string // AccountSID
	AuthToken  string // AuthToken
	// From and MessagingServiceSID, when set, are the only senders the
	// account owns: a request naming another one is refused with 21212 or
	// 21701 as Twilio does.
	From                string
	MessagingServiceSID string
	// RequireStatusCallback, when set, is the StatusCallback every request
	// must carry.
	RequireStatusCallback string
}

// Message is a message the server accepted.
type Message struct {
	SID                 string
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	Form                url.Values // the whole request form
	At                  time.Time
}

// Code returns the first run of 4 to 10 digits in the body, the one-time
// code of a stepup message, or "".
func (m Message) Code() string { return ExtractCode(m.Body) }

var codeRE = regexp.MustCompile(`(?:^|\D)(\d{4,10})(?:\D|$)`)

// ExtractCode returns the first run of 4 to 10 digits in body, or "".
func ExtractCode(body string) string {
	if m := codeRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// Request is one request the server answered, accepted or not.
type Request struct {
	Method string
	Path   string
	Form   url.Values
	Status int // HTTP status answered
	Code   int // Twilio error code answered, 0 on success
}

// Reply is a scripted answer: a Twilio error (Status ≥ 400, with Code and
// Message) or, with Status 0 or 201, the normal processing of the request.
type Reply struct {
	Status  int
	Code    int
	Message string
	// Raw, if set, is sent as the body instead of a Twilio error document
	// (for example an HTML page of a failing proxy).
	Raw string
}

// Server is a fake Twilio REST API. It is safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	script   []Reply
	always   *Reply
	messages []Message
	requests []Request
	changed  chan struct{} // closed and replaced when a message is recorded
	n        int
}

// New starts a Server that is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.AccountSID == "" {
		opts.AccountSID = AccountSID
	}
	if opts.AuthToken == "" {
		opts.AuthToken = AuthToken
	}
	s := &Server{opts: opts, changed: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// AccountSID returns the account the server accepts.
func (s *Server) AccountSID() string { return s.opts.AccountSID }

// AuthToken returns the auth token the server accepts.
func (s *Server) AuthToken() string { return s.opts.AuthToken }

// Reply queues answers for the next requests, one each, in order; after
// them requests are processed normally again.
func (s *Server) Reply(r ...Reply) {
	s.mu.Lock()
	s.script = append(s.script, r...)
	s.mu.Unlock()
}

// ReplyAlways answers every request with r until ReplyAlways(nil).
func (s *Server) ReplyAlways(r *Reply) {
	s.mu.Lock()
	s.always = r
	s.mu.Unlock()
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests returns every request answered, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after timeout (10s when zero).
func (s *Server) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("twiliotest: %d messages after %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// LastMessageTo returns the newest message accepted for to.
func (s *Server) LastMessageTo(to string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.messages) - 1; i >= 0; i-- {
		if s.messages[i].To == to {
			return s.messages[i], true
		}
	}
	return Message{}, false
}

var messagesPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	req := Request{Method: r.Method, Path: r.URL.Path, Form: r.PostForm}
	answer := func(status, code int, msg string) {
		req.Status, req.Code = status, code
		s.record(req, nil)
		writeError(w, status, code, msg)
	}

	m := messagesPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		answer(http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method != http.MethodPost {
		answer(http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.opts.AccountSID || pass != s.opts.AuthToken {
		answer(http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if m[1] != s.opts.AccountSID {
		answer(http.StatusForbidden, 20003, "Authentication Error - No credentials provided for this account")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		answer(http.StatusBadRequest, 20001, "Unsupported content type "+ct)
		return
	}

	if rep, ok := s.next(); ok && rep.Status >= 300 {
		req.Status, req.Code = rep.Status, rep.Code
		s.record(req, nil)
		if rep.Raw != "" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(rep.Status)
			_, _ = w.Write([]byte(rep.Raw))
			return
		}
		writeError(w, rep.Status, rep.Code, rep.Message)
		return
	}

	f := r.PostForm
	to, body, from, mss, cb := f.Get("To"), f.Get("Body"), f.Get("From"), f.Get("MessagingServiceSid"), f.Get("StatusCallback")
	switch {
	case to == "":
		answer(http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case !e164.MatchString(to):
		answer(http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	case body == "":
		answer(http.StatusBadRequest, 21602, "Message body is required.")
		return
	case len([]rune(body)) > 1600:
		answer(http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case from == "" && mss == "":
		answer(http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	case mss != "" && s.opts.MessagingServiceSID != "" && mss != s.opts.MessagingServiceSID:
		answer(http.StatusBadRequest, 21701, "The Messaging Service Sid "+mss+" is invalid.")
		return
	case mss == "" && s.opts.From != "" && from != s.opts.From:
		answer(http.StatusBadRequest, 21212, "The 'From' number "+from+" is not a valid phone number, shortcode, or alphanumeric sender ID.")
		return
	case s.opts.RequireStatusCallback != "" && cb != s.opts.RequireStatusCallback:
		answer(http.StatusBadRequest, 21609, "Invalid StatusCallback url "+cb)
		return
	}

	now := time.Now().UTC()
	s.mu.Lock()
	s.n++
	sid := fmt.Sprintf("SM%032x", s.n)
	s.mu.Unlock()
	msg := Message{SID: sid, To: to, From: from, MessagingServiceSID: mss, Body: body, StatusCallback: cb, Form: f, At: now}
	req.Status = http.StatusCreated
	s.record(req, &msg)

	status := "queued"
	if mss != "" {
		status = "accepted"
	}
	date := now.Format(time.RFC1123Z)
	doc := map[string]any{
		"account_sid":           s.opts.AccountSID,
		"api_version":           "2010-04-01",
		"body":                  body,
		"date_created":          date,
		"date_sent":             nil,
		"date_updated":          date,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  nullable(from),
		"messaging_service_sid": nullable(mss),
		"num_media":             "0",
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   sid,
		"status":                status,
		"subresource_uris": map[string]string{
			"media":    "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + sid + "/Media.json",
			"feedback": "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + sid + "/Feedback.json",
		},
		"to":  to,
		"uri": "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages/" + sid + ".json",
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(doc)
}

var e164 = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// next pops the next scripted reply.
func (s *Server) next() (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.always != nil {
		return *s.always, true
	}
	if len(s.script) == 0 {
		return Reply{}, false
	}
	r := s.script[0]
	s.script = s.script[1:]
	return r, true
}

func (s *Server) record(req Request, msg *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	if msg != nil {
		s.messages = append(s.messages, *msg)
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// writeError answers a Twilio REST error document.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	if msg == "" {
		msg = http.StatusText(status)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	doc := map[string]any{"code": code, "message": msg, "status": status}
	if code != 0 {
		doc["more_info"] = fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code)
	} else {
		doc["code"] = nil
		doc["more_info"] = nil
	}
	_ = json.NewEncoder(w).Encode(doc)
}
