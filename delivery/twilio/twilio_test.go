package twilio_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/delivery/twilio"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/internal/twiliotest"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

const (
	from     = "+15005550006"
	callback = "https://stepup.example/v1/webhooks/twilio/status"
	to       = "+61412345156"
)

func newClient(t *testing.T, srv *twiliotest.Server, mod func(*twilio.Options)) *twilio.Client {
	t.Helper()
	o := twilio.Options{
		AccountSID:        srv.AccountSID(),
		AuthToken:         srv.AuthToken(),
		From:              from,
		APIBaseURL:        srv.URL,
		StatusCallbackURL: callback,
	}
	if mod != nil {
		mod(&o)
	}
	c, err := twilio.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestSendFormAndAuth(t *testing.T) {
	srv := twiliotest.New(t, twiliotest.Options{From: from, RequireStatusCallback: callback})
	c := newClient(t, srv, nil)
	sid, err := c.Send(context.Background(), to, "Your Acme code is 123456")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
		t.Errorf("sid = %q", sid)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.SID != sid || m.To != to || m.From != from || m.MessagingServiceSID != "" ||
		m.Body != "Your Acme code is 123456" || m.StatusCallback != callback {
		t.Errorf("message = %+v", m)
	}
	if m.Code() != "123456" {
		t.Errorf("code = %q", m.Code())
	}
}

func TestSendMessagingService(t *testing.T) {
	const mss = "MG00000000000000000000000000000001"
	srv := twiliotest.New(t, twiliotest.Options{MessagingServiceSID: mss})
	c := newClient(t, srv, func(o *twilio.Options) { o.MessagingServiceSID, o.StatusCallbackURL = mss, "" })
	if _, err := c.Send(context.Background(), to, "code 654321"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Messages()[0]
	if m.MessagingServiceSID != mss || m.From != "" || m.StatusCallback != "" {
		t.Errorf("message = %+v", m)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name      string
		reply     twiliotest.Reply
		token     string // wrong auth token if set
		permanent bool
		text      string
	}{
		{"invalid number", twiliotest.Reply{Status: 400, Code: 21211, Message: "The 'To' number " + to + " is not a valid phone number."}, "", true, "twilio 21211: invalid number"},
		{"unsubscribed", twiliotest.Reply{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}, "", true, "twilio 21610: recipient unsubscribed"},
		{"not mobile", twiliotest.Reply{Status: 400, Code: 21614, Message: "'To' number is not a valid mobile number"}, "", true, "twilio 21614: not a mobile number"},
		{"region", twiliotest.Reply{Status: 400, Code: 21408, Message: "Permission to send an SMS has not been enabled for the region"}, "", true, "twilio 21408: region not enabled"},
		{"unknown code", twiliotest.Reply{Status: 400, Code: 21999, Message: "something"}, "", true, "twilio 21999: http 400"},
		{"wrong token", twiliotest.Reply{}, "ffffffffffffffffffffffffffffffff", true, "twilio 20003: authentication failed"},
		{"server error", twiliotest.Reply{Status: 500, Code: 20500, Message: "Internal Server Error"}, "", false, "twilio 20500: http 500"},
		{"rate limited", twiliotest.Reply{Status: 429, Code: 20429, Message: "Too Many Requests"}, "", false, "twilio 20429: too many requests"},
		{"proxy page", twiliotest.Reply{Status: 502, Raw: "<html>bad gateway</html>"}, "", false, "twilio: http 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := twiliotest.New(t, twiliotest.Options{})
			if tt.reply.Status != 0 {
				srv.Reply(tt.reply)
			}
			c := newClient(t, srv, func(o *twilio.Options) {
				if tt.token != "" {
					o.AuthToken = tt.token
				}
			})
			_, err := c.Send(context.Background(), to, "code 123456")
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if delivery.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", delivery.IsPermanent(err), tt.permanent, err)
			}
			if err.Error() != tt.text {
				t.Errorf("error = %q, want %q", err, tt.text)
			}
			if strings.Contains(err.Error(), "412345") || strings.Contains(err.Error(), "123456") {
				t.Errorf("error text carries the number or code: %q", err)
			}
		})
	}
}

func TestSendNetworkErrorsAreRetryable(t *testing.T) {
	srv := twiliotest.New(t, twiliotest.Options{})
	c := newClient(t, srv, nil)
	srv.Close()
	_, err := c.Send(context.Background(), to, "code 123456")
	if err == nil || delivery.IsPermanent(err) {
		t.Errorf("closed server: err = %v, want a retryable error", err)
	}

	srv2 := twiliotest.New(t, twiliotest.Options{})
	c2 := newClient(t, srv2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c2.Send(ctx, to, "code 123456")
	if !errors.Is(err, context.Canceled) || delivery.IsPermanent(err) {
		t.Errorf("cancelled context: err = %v", err)
	}
	if n := len(srv2.Requests()); n != 0 {
		t.Errorf("%d requests sent with a cancelled context", n)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		o    twilio.Options
	}{
		{"no sid", twilio.Options{AuthToken: "t", From: from}},
		{"no token", twilio.Options{AccountSID: "AC1", From: from}},
		{"no sender", twilio.Options{AccountSID: "AC1", AuthToken: "t"}},
		{"bad base", twilio.Options{AccountSID: "AC1", AuthToken: "t", From: from, APIBaseURL: "ftp://x"}},
	}
	for _, tt := range tests {
		if _, err := twilio.New(tt.o); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
	if _, err := twilio.New(twilio.Options{AccountSID: "AC1", AuthToken: "t", From: from, APIBaseURL: twilio.DefaultAPIBaseURL}); err != nil {
		t.Errorf("default base: %v", err)
	}
}

// sign computes Twilio's X-Twilio-Signature independently of twilio-go:
// base64(HMAC-SHA1(token, url + sorted key+value pairs)).
func sign(token, url string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := url
	for _, k := range keys {
		s += k + params[k]
	}
	h := hmac.New(sha1.New, []byte(token))
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestValidateSignature(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	params := map[string]string{"MessageSid": "SM0000000000000000000000000000000a", "MessageStatus": "delivered", "To": to}
	good := sign(token, callback, params)
	tampered := map[string]string{"MessageSid": "SM0000000000000000000000000000000a", "MessageStatus": "undelivered", "To": to}
	tests := []struct {
		name   string
		token  string
		url    string
		params map[string]string
		sig    string
		want   bool
	}{
		{"valid", token, callback, params, good, true},
		{"valid with default port", token, "https://stepup.example:443/v1/webhooks/twilio/status", params, good, true},
		{"tampered params", token, callback, tampered, good, false},
		{"other url", token, "https://evil.example/v1/webhooks/twilio/status", params, good, false},
		{"wrong token", "ffffffffffffffffffffffffffffffff", callback, params, good, false},
		{"no signature", token, callback, params, "", false},
		{"no token", "", callback, params, sign("", callback, params), false},
	}
	for _, tt := range tests {
		if got := twilio.ValidateSignature(tt.token, tt.url, tt.params, tt.sig); got != tt.want {
			t.Errorf("%s: ValidateSignature = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestThroughWorker runs the real twilio-go client inside the delivery
// worker on a real Redis: a 500 is retried and then sent, an invalid number
// fails at once and is not retried.
func TestThroughWorker(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	box := seal.New([]byte("0123456789abcdef0123456789abcdef-twilio-tests"), "queue", nil)
	srv := twiliotest.New(t, twiliotest.Options{From: from, RequireStatusCallback: callback})
	c := newClient(t, srv, nil)

	ctx, cancel := context.WithCancel(context.Background())
	w, err := delivery.New(rdb, delivery.Mux{message.KindSMS: delivery.SMSHandler(c)}, delivery.Options{
		Consumer: "t", PollInterval: 5 * time.Millisecond, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Box: box, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	q := delivery.NewQueue(rdb, box)
	challenge := func(shard int, id string) string {
		key := keyspace.Challenge(shard, id)
		exp := strconv.FormatInt(time.Now().Add(5*time.Minute).UnixMilli(), 10)
		if err := rdb.HSet(ctx, key, "status", "pending", "expires_at", exp).Err(); err != nil {
			t.Fatal(err)
		}
		return key
	}
	waitDelivery := func(key string, want message.DeliveryState) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for rdb.HGet(ctx, key, "delivery").Val() != string(want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: delivery = %q, want %q", key, rdb.HGet(ctx, key, "delivery").Val(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("500 then 201", func(t *testing.T) {
		srv.Reply(twiliotest.Reply{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"})
		ch := challenge(3, "retry")
		before := len(srv.Requests())
		if _, err := q.Enqueue(ctx, 3, message.KindSMS, "acme", ch, []byte(`{"to":"`+to+`","body":"Your code is 246810"}`)); err != nil {
			t.Fatal(err)
		}
		waitDelivery(ch, message.DeliverySent)
		msgs := srv.WaitMessages(t, 1, 0)
		if got := rdb.HGet(ctx, ch, "provider_id").Val(); got != msgs[len(msgs)-1].SID {
			t.Errorf("provider_id = %q, want %q", got, msgs[len(msgs)-1].SID)
		}
		if m, _ := srv.LastMessageTo(to); m.Code() != "246810" {
			t.Errorf("code = %q", m.Code())
		}
		if n := len(srv.Requests()) - before; n != 2 {
			t.Errorf("%d requests, want 2 (one failure, one retry)", n)
		}
	})

	t.Run("21211 fails without retry", func(t *testing.T) {
		srv.Reply(twiliotest.Reply{Status: http.StatusBadRequest, Code: 21211, Message: "The 'To' number +61400 is not a valid phone number."})
		ch := challenge(4, "invalid")
		before := len(srv.Requests())
		if _, err := q.Enqueue(ctx, 4, message.KindSMS, "acme", ch, []byte(`{"to":"+61400000001","body":"Your code is 135791"}`)); err != nil {
			t.Fatal(err)
		}
		waitDelivery(ch, message.DeliveryFailed)
		if got := rdb.HGet(ctx, ch, "delivery_error").Val(); got != "twilio 21211: invalid number" {
			t.Errorf("delivery_error = %q", got)
		}
		if n := len(srv.Requests()) - before; n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
		dl, err := delivery.DeadLetters(ctx, rdb, 0, 10)
		if err != nil || len(dl) != 1 || dl[0].Error != "twilio 21211: invalid number" {
			t.Errorf("dead letters = %+v, %v", dl, err)
		}
	})
}

func TestErrorClass(t *testing.T) {
	tests := []struct {
		err  *twilio.Error
		want delivery.ErrorClass
	}{
		{&twilio.Error{Status: 401, Code: 20003}, delivery.ClassAuthFailed},
		{&twilio.Error{Status: 400, Code: 21211}, delivery.ClassInvalidNumber},
		{&twilio.Error{Status: 400, Code: 21614}, delivery.ClassInvalidNumber},
		{&twilio.Error{Status: 503}, delivery.ClassUnavailable},
		{&twilio.Error{Status: 429, Code: 20429}, delivery.ClassUnavailable},
		{&twilio.Error{Status: 400, Code: 30007}, delivery.ClassProviderRejected},
	}
	for _, tt := range tests {
		if got := delivery.Classify(delivery.Permanent(tt.err)); got != tt.want {
			t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
