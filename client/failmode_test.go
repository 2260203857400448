package client_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/client"
)

// failServer is a stepup stand-in answering evaluate with status and body,
// or, with hang, never answering until the client gives up.
type failServer struct {
	status  int
	body    string
	header  map[string]string
	hang    bool
	arrived chan struct{} // closed by the first request, for hang
}

func (f *failServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body, so that the server notices the client hanging up.
	_, _ = io.Copy(io.Discard, r.Body)
	if f.hang {
		select {
		case <-f.arrived:
		default:
			close(f.arrived)
		}
		<-r.Context().Done()
		return
	}
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(f.status)
	_, _ = w.Write([]byte(f.body))
}

const evalOK = `{"login_id":"lg_1","decision":"challenge","risk":{"score":75,"level":"high","signals":[]},"enrollment":{"required":false,"suggested":false}}`

func TestEvaluateFailModes(t *testing.T) {
	tests := []struct {
		name   string
		server *failServer // nil: a server that is down
		tls    bool        // serve TLS with a certificate the client does not trust
		cancel bool        // the caller cancels its context once the request arrived
		caller time.Duration
		masked bool // stepup is unavailable: the fail mode applies
		status int  // the *APIError's status when not masked and answered
	}{
		{name: "down", masked: true},
		{name: "slow", server: &failServer{hang: true}, masked: true},
		{name: "caller's deadline", server: &failServer{hang: true}, caller: 20 * time.Millisecond, masked: true},
		{name: "503 store unavailable", server: &failServer{status: 503, header: map[string]string{"Retry-After": "1"},
			body: `{"error":{"code":"store_unavailable","message":"the store is unreachable","retry_after":1}}`}, masked: true},
		{name: "500 internal", server: &failServer{status: 500, body: `{"error":{"code":"internal","message":"internal error"}}`}, masked: true},
		{name: "502 from a proxy", server: &failServer{status: 502, body: "<html>Bad Gateway</html>"}, masked: true},
		{name: "504 from a proxy", server: &failServer{status: 504}, masked: true},

		{name: "ok", server: &failServer{status: 200, body: evalOK}},
		{name: "400 caller's mistake", server: &failServer{status: 400,
			body: `{"error":{"code":"validation_failed","message":"ip: not an IP address","field":"ip"}}`}, status: 400},
		{name: "401 wrong key", server: &failServer{status: 401,
			body: `{"error":{"code":"unauthenticated","message":"missing or unknown API key"}}`}, status: 401},
		{name: "429 rate limited", server: &failServer{status: 429, header: map[string]string{"Retry-After": "30"},
			body: `{"error":{"code":"rate_limited","message":"too many codes","retry_after":30}}`}, status: 429},
		{name: "503 sms_disabled is an answer", server: &failServer{status: 503,
			body: `{"error":{"code":"sms_disabled","message":"SMS is turned off"}}`}, status: 503},
		{name: "caller cancels", server: &failServer{hang: true}, cancel: true},
		{name: "untrusted certificate", server: &failServer{status: 200, body: evalOK}, tls: true},
	}
	for _, tt := range tests {
		for _, mode := range []client.FailMode{client.FailSecure, client.FailSafe} {
			t.Run(tt.name+"/"+string(mode), func(t *testing.T) {
				url := failURL(t, tt.server, tt.tls)
				// Short for a hanging server, long enough for a TLS
				// handshake under the race detector otherwise.
				timeout := 5 * time.Second
				if tt.server != nil && tt.server.hang {
					timeout = 100 * time.Millisecond
				}
				c := client.New(url, "su_app_x", client.WithFailMode(mode), client.WithTimeout(timeout))
				ctx := t.Context()
				if tt.caller > 0 {
					c = client.New(url, "su_app_x", client.WithFailMode(mode), client.WithTimeout(0))
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.caller)
					defer cancel()
				}
				if tt.cancel {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					go func() { <-tt.server.arrived; cancel() }()
				}
				ev, err := c.Evaluate(ctx, client.EvaluateRequest{UserID: "alice", IP: "192.0.2.1"})
				checkFailMode(t, mode, tt.masked, tt.status, tt.name == "ok", ev, err)
			})
		}
	}
}

// failURL serves f (fresh for each run) and returns its URL; nil f is a
// server that was started and shut down, so nothing listens there.
func failURL(t *testing.T, f *failServer, useTLS bool) string {
	t.Helper()
	if f == nil {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
	g := *f
	g.arrived = make(chan struct{})
	if f.hang {
		f.arrived = g.arrived // the test's canceller waits on this run's request
	}
	srv := httptest.NewUnstartedServer(&g)
	if useTLS {
		// The refused handshakes are the point: keep them out of the output.
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}

func checkFailMode(t *testing.T, mode client.FailMode, masked bool, status int, ok bool, ev client.Evaluation, err error) {
	t.Helper()
	switch {
	case ok:
		if err != nil || ev.Decision != client.DecisionChallenge || ev.FailOpen || ev.Failure != nil {
			t.Fatalf("Evaluate = %+v, %v; want stepup's answer", ev, err)
		}
	case masked && mode == client.FailSafe:
		if err != nil || ev.Decision != client.DecisionAllow || !ev.FailOpen || !errors.Is(ev.Failure, client.ErrUnavailable) {
			t.Fatalf("Evaluate = %+v, %v; want allow, FailOpen and a Failure matching ErrUnavailable", ev, err)
		}
	case masked:
		if !errors.Is(err, client.ErrUnavailable) || ev.Decision != client.DecisionDeny || ev.FailOpen || ev.Failure == nil {
			t.Fatalf("Evaluate = %+v, %v; want deny and an error matching ErrUnavailable", ev, err)
		}
	default:
		// Deny, not "": a host app that reads only the decision must not
		// let in a login whose evaluation failed (a 400 is one an attacker
		// gets by sending an overlong User-Agent).
		if err == nil || errors.Is(err, client.ErrUnavailable) || ev.Decision != client.DecisionDeny || ev.FailOpen || ev.Failure != nil {
			t.Fatalf("Evaluate = %+v, %v; want the error as it is and deny", ev, err)
		}
		var ae *client.APIError
		if status != 0 && (!errors.As(err, &ae) || ae.Status != status) {
			t.Fatalf("err = %v, want an *APIError %d", err, status)
		}
	}
}

// TestUnavailableOnEveryCall: the timeout and ErrUnavailable are the
// client's, not only Evaluate's; other calls return the error as it is.
func TestUnavailableOnEveryCall(t *testing.T) {
	srv := httptest.NewServer(&failServer{hang: true, arrived: make(chan struct{})})
	defer func() { srv.CloseClientConnections(); srv.Close() }()
	c := client.New(srv.URL, "su_app_x", client.WithFailMode(client.FailSafe), client.WithTimeout(50*time.Millisecond))
	_, err := c.GetUser(t.Context(), "alice")
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("GetUser on a hanging server: %v, want ErrUnavailable", err)
	}
}

func TestParseFailMode(t *testing.T) {
	tests := []struct {
		in      string
		want    client.FailMode
		wantErr bool
	}{
		{"", client.FailSecure, false},
		{"secure", client.FailSecure, false},
		{"safe", client.FailSafe, false},
		{"open", "", true},
		{"SAFE", "", true},
	}
	for _, tt := range tests {
		got, err := client.ParseFailMode(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseFailMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
