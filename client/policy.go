package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Channel is a way to deliver or produce a code.
type Channel string

// The channels.
const (
	ChannelSMS   Channel = "sms"
	ChannelTOTP  Channel = "totp"
	ChannelEmail Channel = "email"
	// ChannelPasskey is a WebAuthn passkey, used on the hosted prompt.
	ChannelPasskey Channel = "passkey"
)

// Policy modes and challenge policies.
const (
	ModeOff      = "off"
	ModeOptional = "optional"
	ModeRequired = "required"

	ChallengeRiskBased  = "risk_based"
	ChallengeEveryLogin = "every_login"

	// EnforcementEnforce carries decisions out; EnforcementMonitor only
	// reports them (every login allowed, with its would_decide).
	EnforcementEnforce = "enforce"
	EnforcementMonitor = "monitor"
)

// Thresholds turn a risk score (0–100) into a decision.
type Thresholds struct {
	Challenge int `json:"challenge"`
	Deny      int `json:"deny"`
}

// Policy is a tenant's (or a group's effective) 2FA policy.
type Policy struct {
	Mode               string     `json:"mode"`
	Enforcement        string     `json:"enforcement"` // enforce or monitor
	Challenge          string     `json:"challenge"`
	GraceLogins        int        `json:"grace_logins"`
	Thresholds         Thresholds `json:"thresholds"`
	RememberDeviceDays int        `json:"remember_device_days"`
	AllowedChannels    []Channel  `json:"allowed_channels"` // also the preferred order
	SMSCountries       []string   `json:"sms_countries"`
	TrustedNetworks    []string   `json:"trusted_networks"`
	BlockedNetworks    []string   `json:"blocked_networks"`
	BlockedCountries   []string   `json:"blocked_countries"`
	ManagerEmails      []string   `json:"manager_emails"`
	ColdStart          string     `json:"cold_start"`
	SMSDisabled        bool       `json:"sms_disabled"`
	SMSPerHour         int        `json:"sms_per_hour"`
	ReturnURLs         []string   `json:"return_urls"` // where a hosted prompt may return the browser
	LogoURL            string     `json:"logo_url"`
	AccentColor        string     `json:"accent_color"`
}

// PolicyView is GET /v1/admin/policy's answer: the tenant's base policy,
// each group's overrides as stored, and each group's effective policy.
type PolicyView struct {
	Policy
	Groups          map[string]PolicyOverrides `json:"groups"`
	EffectiveGroups map[string]Policy          `json:"effective_groups"`
}

// ThresholdsUpdate changes one or both thresholds.
type ThresholdsUpdate struct {
	Challenge *int `json:"challenge,omitempty"`
	Deny      *int `json:"deny,omitempty"`
}

// PolicyOverrides is any subset of the policy's fields: a group's
// overrides, or the base fields of a PolicyUpdate. A nil field is left
// out; a non-nil empty slice is sent as [] (for sms_countries and the
// network and country lists, that means "none" / "all").
type PolicyOverrides struct {
	Mode               *string           `json:"mode,omitempty"`
	Enforcement        *string           `json:"enforcement,omitempty"`
	Challenge          *string           `json:"challenge,omitempty"`
	GraceLogins        *int              `json:"grace_logins,omitempty"`
	Thresholds         *ThresholdsUpdate `json:"thresholds,omitempty"`
	RememberDeviceDays *int              `json:"remember_device_days,omitempty"`
	AllowedChannels    []Channel         `json:"allowed_channels,omitzero"`
	SMSCountries       []string          `json:"sms_countries,omitzero"`
	TrustedNetworks    []string          `json:"trusted_networks,omitzero"`
	BlockedNetworks    []string          `json:"blocked_networks,omitzero"`
	BlockedCountries   []string          `json:"blocked_countries,omitzero"`
	ManagerEmails      []string          `json:"manager_emails,omitzero"`
	ColdStart          *string           `json:"cold_start,omitempty"`
	SMSDisabled        *bool             `json:"sms_disabled,omitempty"`
	SMSPerHour         *int              `json:"sms_per_hour,omitempty"`
	ReturnURLs         []string          `json:"return_urls,omitzero"`
	LogoURL            *string           `json:"logo_url,omitempty"`
	AccentColor        *string           `json:"accent_color,omitempty"`
}

// PolicyUpdate is the body of PUT /v1/admin/policy, which merges: the
// fields it names replace the current ones and the rest stay. Groups, when
// not nil, replaces the whole set of groups (an empty non-nil map removes
// them all).
type PolicyUpdate struct {
	PolicyOverrides
	Groups map[string]PolicyOverrides `json:"groups,omitzero"`
}

// Ptr returns a pointer to v, for the optional fields of PolicyOverrides
// and UserUpdate: client.Ptr(3), client.Ptr(client.ModeRequired).
func Ptr[T any](v T) *T { return &v }

// Policy returns the tenant's policy (manager key).
func (c *Client) Policy(ctx context.Context) (PolicyView, error) {
	var v PolicyView
	err := c.Do(ctx, http.MethodGet, "/v1/admin/policy", nil, &v)
	return v, err
}

// UpdatePolicy merges u into the tenant's policy and returns the result
// (manager key). Every change is audited and mailed to the managers.
func (c *Client) UpdatePolicy(ctx context.Context, u PolicyUpdate) (PolicyView, error) {
	var v PolicyView
	err := c.Do(ctx, http.MethodPut, "/v1/admin/policy", u, &v)
	return v, err
}

// UpdatePolicyJSON sends body, a JSON object of policy fields, as the
// merge body of PUT /v1/admin/policy (manager key). A GET answer sent back
// whole is accepted.
func (c *Client) UpdatePolicyJSON(ctx context.Context, body json.RawMessage) (PolicyView, error) {
	var v PolicyView
	err := c.Do(ctx, http.MethodPut, "/v1/admin/policy", body, &v)
	return v, err
}
