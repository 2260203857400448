package client

import (
	"context"
	"net/http"
	"time"
)

// PromptRequest asks for a hosted verification page: LoginID for a login
// Evaluate answered challenge or enroll, or UserID with Action "manage"
// for the user's 2FA settings. ReturnURL must be under one of the
// policy's return_urls; State comes back unchanged.
type PromptRequest struct {
	LoginID   string `json:"login_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Action    string `json:"action,omitempty"`
	ReturnURL string `json:"return_url"`
	State     string `json:"state,omitempty"`
}

// Prompt is the page to send the browser to (single use, 10 minutes).
type Prompt struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PromptResult is what a prompt's stepup_code is exchanged for.
type PromptResult struct {
	UserID      string `json:"user_id"`
	LoginID     string `json:"login_id,omitempty"`
	Verified    bool   `json:"verified"`
	Method      string `json:"method,omitempty"` // sms, totp, email, passkey or backup_code
	DeviceToken string `json:"device_token,omitempty"`
}

// Prompt asks for a hosted verification page (POST /v1/prompts).
func (c *Client) Prompt(ctx context.Context, r PromptRequest) (Prompt, error) {
	var p Prompt
	err := c.Do(ctx, http.MethodPost, "/v1/prompts", r, &p)
	return p, err
}

// Exchange trades the stepup_code the browser brought back for the
// verified result, once (POST /v1/prompts/exchange).
func (c *Client) Exchange(ctx context.Context, code string) (PromptResult, error) {
	var r PromptResult
	err := c.Do(ctx, http.MethodPost, "/v1/prompts/exchange", map[string]string{"code": code}, &r)
	return r, err
}
