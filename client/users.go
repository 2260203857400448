package client

import (
	"context"
	"net/http"
	"time"
)

// UserUpdate is the body of PUT /v1/users/{id}: nil fields stay as they
// are; Group must name a group of the tenant's policy ("" leaves every
// group).
type UserUpdate struct {
	Email       *string `json:"email,omitempty"`
	DisplayName *string `json:"display_name,omitempty"`
	Locale      *string `json:"locale,omitempty"`
	TimeZone    *string `json:"time_zone,omitempty"`
	Group       *string `json:"group,omitempty"`
}

// PutUser registers a user or updates their profile and group (app key).
// A new e-mail address of a user with a factor is not applied at once: the
// answer keeps the old address, has EmailChangePending set and Challenge
// holds step one of the confirmation.
func (c *Client) PutUser(ctx context.Context, userID string, u UserUpdate) (User, error) {
	var v User
	err := c.Do(ctx, http.MethodPut, "/v1/users/"+seg(userID), u, &v)
	return v, err
}

// GetUser returns a user's 2FA status (app key; managers use AdminUser).
func (c *Client) GetUser(ctx context.Context, userID string) (User, error) {
	var v User
	err := c.Do(ctx, http.MethodGet, "/v1/users/"+seg(userID), nil, &v)
	return v, err
}

// DeleteUser erases a user: account, factors, devices and history (app
// key).
func (c *Client) DeleteUser(ctx context.Context, userID string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/users/"+seg(userID), nil, nil)
}

// Started is the answer to a lifecycle call: the challenge whose code
// completes it.
type Started struct {
	Challenge Challenge `json:"challenge"`
	// StepUp is set when the user must first prove a factor they already
	// have; verifying this challenge answers with the next one.
	StepUp bool `json:"step_up,omitempty"`
	// OTPAuthURI, QRPNG (base64 PNG) and Secret come with a TOTP
	// enrolment that needs no step-up.
	OTPAuthURI string `json:"otpauth_uri,omitempty"`
	QRPNG      string `json:"qr_png,omitempty"`
	Secret     string `json:"secret,omitempty"`
}

func (c *Client) start(ctx context.Context, userID, what string, body any) (Started, error) {
	var s Started
	err := c.Do(ctx, http.MethodPost, "/v1/users/"+seg(userID)+"/"+what, body, &s)
	return s, err
}

// StartSMS starts enrolling a phone number (E.164, e.g. +61491570156) as
// the user's SMS factor (app key).
func (c *Client) StartSMS(ctx context.Context, userID, phone string, a Actor) (Started, error) {
	return c.start(ctx, userID, "sms", struct {
		Phone string `json:"phone"`
		Actor
	}{phone, a})
}

// StartPhoneChange starts changing the user's SMS number: a code on the
// user's current factor first, then one sent to the new number (app key).
func (c *Client) StartPhoneChange(ctx context.Context, userID, newPhone string, a Actor) (Started, error) {
	return c.start(ctx, userID, "phone-change", struct {
		NewPhone string `json:"new_phone"`
		Actor
	}{newPhone, a})
}

// StartDisable starts turning the user's 2FA off, confirmed with a code
// (app key).
func (c *Client) StartDisable(ctx context.Context, userID string, a Actor) (Started, error) {
	return c.start(ctx, userID, "2fa/disable", a)
}

// StartBackupCodes starts (re)generating the user's backup codes; the
// codes come with the verification (app key).
func (c *Client) StartBackupCodes(ctx context.Context, userID string, a Actor) (Started, error) {
	return c.start(ctx, userID, "backup-codes", a)
}

// StartTOTP starts enrolling (or resetting) an authenticator app (app key).
func (c *Client) StartTOTP(ctx context.Context, userID string, a Actor) (Started, error) {
	return c.start(ctx, userID, "totp", a)
}

// StartEmailFactor starts enrolling the profile's e-mail address as a
// code channel (app key).
func (c *Client) StartEmailFactor(ctx context.Context, userID string, a Actor) (Started, error) {
	return c.start(ctx, userID, "email-factor", a)
}

// Device is one remembered device.
type Device struct {
	ID        string    `json:"id"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	Browser   string    `json:"browser,omitempty"`
	OS        string    `json:"os,omitempty"`
	Country   string    `json:"country,omitempty"`
}

// Devices lists the user's remembered devices (app key).
func (c *Client) Devices(ctx context.Context, userID string) ([]Device, error) {
	var out struct {
		Devices []Device `json:"devices"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/users/"+seg(userID)+"/devices", nil, &out)
	return out.Devices, err
}

type forgotten struct {
	Forgotten int `json:"forgotten"`
}

// ForgetDevices forgets every remembered device of the user and returns
// how many there were (app key).
func (c *Client) ForgetDevices(ctx context.Context, userID string) (int, error) {
	var f forgotten
	err := c.Do(ctx, http.MethodDelete, "/v1/users/"+seg(userID)+"/devices", nil, &f)
	return f.Forgotten, err
}

// ForgetDevice forgets one remembered device (app key).
func (c *Client) ForgetDevice(ctx context.Context, userID, deviceID string) (int, error) {
	var f forgotten
	err := c.Do(ctx, http.MethodDelete, "/v1/users/"+seg(userID)+"/devices/"+seg(deviceID), nil, &f)
	return f.Forgotten, err
}

// PasswordChanged tells stepup the user changed their password, which
// forgets their remembered devices; it returns how many (app key).
func (c *Client) PasswordChanged(ctx context.Context, userID string, a Actor) (int, error) {
	var f forgotten
	err := c.Do(ctx, http.MethodPost, "/v1/users/"+seg(userID)+"/events/password-changed", a, &f)
	return f.Forgotten, err
}

// SignedOutEverywhere tells stepup the user signed out of every session,
// which forgets their remembered devices; it returns how many (app key).
func (c *Client) SignedOutEverywhere(ctx context.Context, userID string, a Actor) (int, error) {
	var f forgotten
	err := c.Do(ctx, http.MethodPost, "/v1/users/"+seg(userID)+"/events/signed-out-everywhere", a, &f)
	return f.Forgotten, err
}

// PastLogin is one successful login from the host app's own records.
type PastLogin struct {
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	DeviceID  string    `json:"device_id,omitempty"`
	At        time.Time `json:"at"`
}

// ImportHistory teaches a new user's login history from past logins, so
// their familiar logins are not challenged on day one; it returns how many
// were imported (app key).
func (c *Client) ImportHistory(ctx context.Context, userID string, logins []PastLogin) (int, error) {
	var out struct {
		Imported int `json:"imported"`
	}
	err := c.Do(ctx, http.MethodPost, "/v1/users/"+seg(userID)+"/history", map[string][]PastLogin{"logins": logins}, &out)
	return out.Imported, err
}
