package client

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Decisions of an evaluation.
const (
	DecisionAllow     = "allow"
	DecisionChallenge = "challenge"
	DecisionDeny      = "deny"
	DecisionEnroll    = "enroll"
)

// EvaluateRequest is one login attempt, sent after the password was
// accepted.
type EvaluateRequest struct {
	UserID      string `json:"user_id"`
	IP          string `json:"ip"`
	UserAgent   string `json:"user_agent,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`    // the host app's stable id of the browser or device
	DeviceToken string `json:"device_token,omitempty"` // a remembered device's token from an earlier Verify
}

// Signal is one reason behind a risk score.
type Signal struct {
	Name   string  `json:"name"`
	Detail string  `json:"detail,omitempty"`
	Weight float64 `json:"weight"`
}

// Risk is the risk part of an evaluation.
type Risk struct {
	Score   int      `json:"score"`
	Level   string   `json:"level"`
	Signals []Signal `json:"signals"`
}

// Enrollment tells the host app about the user's duty to enrol.
type Enrollment struct {
	Required        bool `json:"required"`
	GraceLoginsLeft *int `json:"grace_logins_left,omitempty"`
	Suggested       bool `json:"suggested"`
}

// Evaluation is the answer to Evaluate.
type Evaluation struct {
	LoginID    string     `json:"login_id"`
	Decision   string     `json:"decision"` // allow, challenge, deny or enroll
	Risk       Risk       `json:"risk"`
	Challenge  *Challenge `json:"challenge,omitempty"` // set when Decision is challenge
	Enrollment Enrollment `json:"enrollment"`

	// WouldDecide is, under a policy in monitor mode, what enforcing it
	// would have decided (challenge, deny or enroll); "" when allow.
	WouldDecide string `json:"would_decide,omitempty"`

	// FailOpen is set when stepup was unavailable and the client's fail
	// mode is FailSafe: Decision is allow although nothing was evaluated.
	// The host app should log it (with Failure) and may, say, keep the
	// session short.
	FailOpen bool `json:"-"`
	// Failure is why stepup was unavailable (it matches ErrUnavailable:
	// unreachable, timed out or a 5xx answer); nil when stepup answered.
	Failure error `json:"-"`
}

// Challenge is one request for a code.
type Challenge struct {
	ID                string    `json:"id"`
	Purpose           string    `json:"purpose"`
	Channel           Channel   `json:"channel"`
	Destination       string    `json:"destination,omitempty"` // masked
	Status            string    `json:"status"`                // pending, verified, expired, locked, cancelled
	ExpiresAt         time.Time `json:"expires_at"`
	AttemptsLeft      int       `json:"attempts_left"`
	DeliveryStatus    string    `json:"delivery_status,omitempty"`
	DeliveryError     string    `json:"delivery_error,omitempty"`
	AvailableChannels []Channel `json:"available_channels,omitempty"`
}

// Evaluate scores a login and says whether to allow it, challenge it, deny
// it or ask the user to enrol (app key).
//
// When stepup is unavailable (the error matches ErrUnavailable) the
// client's FailMode decides: FailSecure returns the error with Decision
// deny, FailSafe returns Decision allow with FailOpen and Failure set and
// no error. Any other error (a 4xx answer, the caller's ctx ending) is
// returned as it is, whatever the fail mode, with Decision deny and
// nothing else set: a host app that reads only the decision refuses the
// login.
func (c *Client) Evaluate(ctx context.Context, r EvaluateRequest) (Evaluation, error) {
	var ev Evaluation
	err := c.Do(ctx, http.MethodPost, "/v1/logins/evaluate", r, &ev)
	switch {
	case err == nil:
		return ev, nil
	case errors.Is(err, ErrUnavailable):
		return c.failEvaluation(err)
	}
	return Evaluation{Decision: DecisionDeny}, err
}

// FailedLoginRequest is a failed password attempt.
type FailedLoginRequest struct {
	UserID    string `json:"user_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent,omitempty"`
}

// FailedLogin reports a failed password attempt, which feeds the velocity
// signals (app key).
func (c *Client) FailedLogin(ctx context.Context, r FailedLoginRequest) error {
	return c.Do(ctx, http.MethodPost, "/v1/logins/failed", r, nil)
}

// FeedbackResult is the answer to a verdict on a login.
type FeedbackResult struct {
	LoginID          string `json:"login_id"`
	Verdict          string `json:"verdict"`
	Repeated         bool   `json:"repeated"`
	History          string `json:"history"` // learned, unlearned or unchanged
	DevicesForgotten int    `json:"devices_forgotten"`
}

// Feedback reports a login evaluated in the last days as "fraud" or
// "legit" (app key). The same verdict again changes nothing; the other
// one is refused (409 verdict_conflict).
func (c *Client) Feedback(ctx context.Context, loginID, verdict string) (FeedbackResult, error) {
	var res FeedbackResult
	err := c.Do(ctx, http.MethodPost, "/v1/logins/"+seg(loginID)+"/feedback", map[string]string{"verdict": verdict}, &res)
	return res, err
}

// Challenge returns a challenge's state (app key).
func (c *Client) Challenge(ctx context.Context, id string) (Challenge, error) {
	var ch Challenge
	err := c.Do(ctx, http.MethodGet, "/v1/challenges/"+seg(id), nil, &ch)
	return ch, err
}

// VerifyRequest is a code the user typed.
type VerifyRequest struct {
	Code string `json:"code"`
	// RememberDevice asks for a device token (login challenges only).
	RememberDevice bool   `json:"remember_device,omitempty"`
	IP             string `json:"ip,omitempty"`
	UserAgent      string `json:"user_agent,omitempty"`
}

// VerifyDetails is what a verification produced; which fields are set
// depends on the challenge's purpose.
type VerifyDetails struct {
	LoginID         string     `json:"login_id,omitempty"`
	DeviceToken     string     `json:"device_token,omitempty"`
	BackupCodes     []string   `json:"backup_codes,omitempty"` // shown once
	BackupCodesLeft *int       `json:"backup_codes_left,omitempty"`
	NextChallenge   *Challenge `json:"next_challenge,omitempty"` // after a step-up or the first half of a phone change
	OTPAuthURI      string     `json:"otpauth_uri,omitempty"`
	QRPNG           string     `json:"qr_png,omitempty"`
	Secret          string     `json:"secret,omitempty"`
}

// VerifyResult is the answer of a successful Verify.
type VerifyResult struct {
	Verified bool          `json:"verified"`
	Purpose  string        `json:"purpose"`
	Result   VerifyDetails `json:"result"`
}

// Verify checks a code (app key). A wrong code is an *APIError whose
// Fields carry attempts_left.
func (c *Client) Verify(ctx context.Context, challengeID string, r VerifyRequest) (VerifyResult, error) {
	var v VerifyResult
	err := c.Do(ctx, http.MethodPost, "/v1/challenges/"+seg(challengeID)+"/verify", r, &v)
	return v, err
}

// Resend sends a challenge's code again (app key). Too soon is an
// *APIError with RetryAfter set.
func (c *Client) Resend(ctx context.Context, challengeID string) (Challenge, error) {
	var ch Challenge
	err := c.Do(ctx, http.MethodPost, "/v1/challenges/"+seg(challengeID)+"/resend", nil, &ch)
	return ch, err
}

// SwitchChannel moves a challenge to another of the user's channels (app
// key).
func (c *Client) SwitchChannel(ctx context.Context, challengeID string, channel Channel) (Challenge, error) {
	var ch Challenge
	err := c.Do(ctx, http.MethodPost, "/v1/challenges/"+seg(challengeID)+"/switch", map[string]Channel{"channel": channel}, &ch)
	return ch, err
}
