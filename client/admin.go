package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Profile is what the host app told stepup about a user.
type Profile struct {
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Locale      string `json:"locale,omitempty"`
	TimeZone    string `json:"time_zone,omitempty"`
}

// Factor is one enrolled second factor; the destination is masked.
type Factor struct {
	Channel     Channel   `json:"channel"`
	Destination string    `json:"destination,omitempty"`
	AddedAt     time.Time `json:"added_at"`
}

// User is a user's 2FA status.
type User struct {
	UserID             string    `json:"user_id"`
	Profile            Profile   `json:"profile"`
	Group              string    `json:"group,omitempty"`
	Enrolled           bool      `json:"enrolled"`
	Factors            []Factor  `json:"factors"`
	BackupCodesLeft    int       `json:"backup_codes_left"`
	RememberedDevices  int       `json:"remembered_devices"`
	GraceLoginsLeft    *int      `json:"grace_logins_left,omitempty"` // set only while enrolment is required
	PhoneChangePending bool      `json:"phone_change_pending"`
	EmailChangePending bool      `json:"email_change_pending"` // a new e-mail address waits for confirmation
	Mode               string    `json:"mode"`                 // the user's effective policy mode
	CreatedAt          time.Time `json:"created_at,omitzero"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
	// Challenge is set only in PutUser's answer (202) when a new e-mail
	// address of an enrolled user waits for confirmation: verify it (a
	// current factor), then the next_challenge its result holds (a code
	// sent to the new address).
	Challenge *Challenge `json:"challenge,omitempty"`
}

// AdminUser returns a user's 2FA status (manager key).
func (c *Client) AdminUser(ctx context.Context, userID string) (User, error) {
	var u User
	err := c.Do(ctx, http.MethodGet, "/v1/admin/users/"+seg(userID), nil, &u)
	return u, err
}

// ResetUser turns a user's 2FA off, clearing factors, backup codes and
// remembered devices — the lost-phone case (manager key). The reason is
// required; it is audited and mailed to the user and the managers.
func (c *Client) ResetUser(ctx context.Context, userID, reason string) (User, error) {
	var u User
	err := c.Do(ctx, http.MethodPost, "/v1/admin/users/"+seg(userID)+"/reset", map[string]string{"reason": reason}, &u)
	return u, err
}

// DisableAllResult counts what DisableAll did.
type DisableAllResult struct {
	Reset int `json:"reset"`
}

// DisableAll resets every enrolled user of the tenant, or of one group
// when group is not empty (manager key). The reason is required.
func (c *Client) DisableAll(ctx context.Context, reason, group string) (DisableAllResult, error) {
	body := map[string]string{"reason": reason}
	if group != "" {
		body["group"] = group
	}
	var r DisableAllResult
	err := c.Do(ctx, http.MethodPost, "/v1/admin/2fa/disable-all", body, &r)
	return r, err
}

// Event is one record of the tenant's audit log.
type Event struct {
	ID      string            `json:"id"`
	Tenant  string            `json:"tenant"`
	UserID  string            `json:"user_id,omitempty"`
	Type    string            `json:"type"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`        // user, manager, operator, system
	IP      string            `json:"ip,omitempty"` // masked: 203.0.113.x
	Country string            `json:"country,omitempty"`
	Browser string            `json:"browser,omitempty"`
	OS      string            `json:"os,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// EventQuery filters the audit log; the zero value asks for the newest
// events of every type.
type EventQuery struct {
	UserID string    // only this user's events
	Type   string    // only events of this type, e.g. "admin_reset"
	Since  time.Time // only events at or after this time
	Limit  int       // page size, 1–1000; 0 = the server's default
	Cursor string    // EventPage.NextCursor of the previous page
}

// EventPage is one page of the audit log, newest first.
type EventPage struct {
	Events []Event `json:"events"`
	// NextCursor, when not empty, fetches the next (older) page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Events returns one page of the tenant's audit log, newest first
// (manager key).
func (c *Client) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	v := url.Values{}
	if q.UserID != "" {
		v.Set("user_id", q.UserID)
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	path := "/v1/admin/events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p EventPage
	err := c.Do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// AllEvents walks the audit log from q, newest first, following the
// cursor from page to page (manager key). q.Limit is the page size. The
// walk stops at the first error, which it yields with a zero Event.
func (c *Client) AllEvents(ctx context.Context, q EventQuery) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			p, err := c.Events(ctx, q)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range p.Events {
				if !yield(ev, nil) {
					return
				}
			}
			if p.NextCursor == "" || p.NextCursor == q.Cursor {
				return
			}
			q.Cursor = p.NextCursor
		}
	}
}
