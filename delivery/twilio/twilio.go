package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	"go.opentelemetry.io/otel/trace"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/tracing"
)

// DefaultAPIBaseURL is Twilio's API endpoint.
const DefaultAPIBaseURL = "https://api.twilio.com"

// twilioHost is the host twilio-go addresses; requests to it are sent to
// Options.APIBaseURL instead.
const twilioHost = "api.twilio.com"

// Options configures a Client.
type Options struct {
	AccountSID string
	AuthToken  string
	// From is the sender (an E.164 number or alphanumeric id); it is used
	// when MessagingServiceSID is empty. One of the two is required.
	From                string
	MessagingServiceSID string
	// APIBaseURL replaces https://api.twilio.com, for edge locations
	// (https://api.sydney.au1.twilio.com) and contract tests.
	APIBaseURL string
	// StatusCallbackURL, if set, receives Twilio's delivery status updates.
	StatusCallbackURL string
	// HTTPClient carries the requests; a client with a 10s timeout that
	// does not follow redirects when nil.
	HTTPClient *http.Client
	// TracerProvider traces each send (span "twilio.send" with the tenant,
	// never the number or body); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// Client sends SMS through Twilio. It is safe for concurrent use.
type Client struct {
	opts   Options
	base   *url.URL // nil: Twilio's own host
	http   *http.Client
	tracer trace.Tracer
}

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.AccountSID == "" || opts.AuthToken == "" {
		return nil, errors.New("twilio: account SID and auth token are required")
	}
	if opts.From == "" && opts.MessagingServiceSID == "" {
		return nil, errors.New("twilio: From or MessagingServiceSID is required")
	}
	c := &Client{opts: opts, http: opts.HTTPClient, tracer: tracing.Tracer(opts.TracerProvider)}
	if c.http == nil {
		c.http = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if opts.APIBaseURL != "" && strings.TrimRight(opts.APIBaseURL, "/") != DefaultAPIBaseURL {
		u, err := url.Parse(strings.TrimRight(opts.APIBaseURL, "/"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("twilio: APIBaseURL %q is not an http(s) URL", opts.APIBaseURL)
		}
		c.base = u
	}
	return c, nil
}

// Send sends body to the E.164 number to and returns the message SID.
func (c *Client) Send(ctx context.Context, to, body string) (sid string, err error) {
	ctx, span := tracing.StartSend(ctx, c.tracer, "twilio")
	defer func() { tracing.EndSend(span, err) }()
	// twilio-go builds its requests without a context, so each Send gets a
	// client whose transport attaches ctx (and redirects to APIBaseURL). It
	// also notes the HTTP status, which twilio-go drops when an error body
	// is not JSON.
	rt := &transport{ctx: ctx, base: c.http.Transport, target: c.base}
	hc := *c.http
	hc.Transport = rt
	tc := &client.Client{
		Credentials: client.NewCredentials(c.opts.AccountSID, c.opts.AuthToken),
		HTTPClient:  &hc,
	}
	tc.SetAccountSid(c.opts.AccountSID)
	// Edge and region come from APIBaseURL only, not from TWILIO_EDGE or
	// TWILIO_REGION in the environment.
	api := openapi.NewApiService(&client.RequestHandler{Client: tc})

	p := &openapi.CreateMessageParams{}
	p.SetTo(to)
	p.SetBody(body)
	if c.opts.MessagingServiceSID != "" {
		p.SetMessagingServiceSid(c.opts.MessagingServiceSID)
	} else {
		p.SetFrom(c.opts.From)
	}
	if c.opts.StatusCallbackURL != "" {
		p.SetStatusCallback(c.opts.StatusCallbackURL)
	}
	m, err := api.CreateMessage(p)
	if err != nil {
		return "", classify(ctx, err, int(rt.status.Load()))
	}
	if m.Sid == nil || *m.Sid == "" {
		return "", errors.New("twilio: answer without a message sid")
	}
	return *m.Sid, nil
}

// transport binds a request to the caller's context and points it at the
// configured API base.
type transport struct {
	ctx    context.Context
	base   http.RoundTripper
	target *url.URL
	status atomic.Int64 // last HTTP status seen
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.ctx)
	if t.target != nil && strings.EqualFold(r.URL.Host, twilioHost) {
		r.URL.Scheme = t.target.Scheme
		r.URL.Host = t.target.Host
		r.URL.Path = strings.TrimRight(t.target.Path, "/") + r.URL.Path
		r.Host = ""
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if resp != nil {
		t.status.Store(int64(resp.StatusCode))
	}
	return resp, err
}

// Error is a refusal by Twilio. Its text names the Twilio error code and a
// short meaning, never Twilio's own message, which may quote the number.
type Error struct {
	Status int // HTTP status
	Code   int // Twilio error code, 0 when the answer had none
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("twilio: http %d", e.Status)
	}
	if what, ok := codes[e.Code]; ok {
		return fmt.Sprintf("twilio %d: %s", e.Code, what)
	}
	return fmt.Sprintf("twilio %d: http %d", e.Code, e.Status)
}

// ErrorClass classifies the refusal for audit events and managers' mails.
func (e *Error) ErrorClass() delivery.ErrorClass {
	switch {
	case e.Code == 20003 || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return delivery.ClassAuthFailed
	case e.Code == 21211 || e.Code == 21265 || e.Code == 21604 || e.Code == 21614 || e.Code == 21612 || e.Code == 21408:
		return delivery.ClassInvalidNumber
	case retryable(e.Status):
		return delivery.ClassUnavailable
	default:
		return delivery.ClassProviderRejected
	}
}

// codes are the short meanings of the Twilio error codes a sender meets.
var codes = map[int]string{
	20003: "authentication failed",
	20404: "resource not found",
	20429: "too many requests",
	21211: "invalid number",
	21212: "invalid sender",
	21265: "to number is a short code",
	21266: "to and from are the same",
	21408: "region not enabled",
	21602: "message body required",
	21603: "sender required",
	21604: "to number required",
	21606: "sender cannot send sms",
	21608: "unverified number on trial account",
	21610: "recipient unsubscribed",
	21612: "route not supported",
	21614: "not a mobile number",
	21617: "message body too long",
	21701: "invalid messaging service",
	30007: "message filtered",
}

// classify turns a twilio-go error into a retryable or permanent one.
func classify(ctx context.Context, err error, httpStatus int) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("twilio: %w", ctxErr)
	}
	var rest *client.TwilioRestError
	if errors.As(err, &rest) {
		status := rest.Status
		if status == 0 {
			status = httpStatus
		}
		e := &Error{Status: status, Code: rest.Code}
		if retryable(status) {
			return e
		}
		return delivery.Permanent(e)
	}
	if httpStatus >= 400 {
		// An error answer that is not a Twilio document (a proxy's page).
		e := &Error{Status: httpStatus}
		if retryable(httpStatus) {
			return e
		}
		return delivery.Permanent(e)
	}
	// Network errors and the like: the text of a url.Error names the URL,
	// which holds nothing secret, but not the form.
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("twilio: %s: %w", ue.Op, ue.Err)
	}
	return fmt.Errorf("twilio: %w", err)
}

// retryable reports whether an HTTP status is worth a retry.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests ||
		status == http.StatusRequestTimeout || status == 0
}

// ValidateSignature reports whether signature (the X-Twilio-Signature
// header) was made by Twilio with authToken for a request to url (the full
// URL Twilio called, as configured) with the POST form params.
func ValidateSignature(authToken, url string, params map[string]string, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	v := client.NewRequestValidator(authToken)
	return v.Validate(url, params, signature)
}
