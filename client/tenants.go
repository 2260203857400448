package client

import (
	"context"
	"net/http"
	"time"
)

// Tenant is one organisation using stepup.
type Tenant struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	SenderName string    `json:"sender_name"`
	CreatedAt  time.Time `json:"created_at"`
}

// KeyKind says what a key may do.
type KeyKind string

// The kinds of tenant keys an operator can create. (The operator key
// itself comes from the server's configuration.)
const (
	KeyApp     KeyKind = "app"
	KeyManager KeyKind = "manager"
)

// Key is an API key's record, without its secret.
type Key struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Kind      KeyKind   `json:"kind"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
}

// NewKey is a freshly created key with its secret, which the API shows
// only this once.
type NewKey struct {
	Key
	Secret string `json:"secret"`
}

// CreateTenant creates a tenant (operator key). senderName, the name its
// users' e-mails and SMS come from, defaults to name when empty.
func (c *Client) CreateTenant(ctx context.Context, name, senderName string) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, http.MethodPost, "/v1/tenants", map[string]string{"name": name, "sender_name": senderName}, &t)
	return t, err
}

// Tenants lists every tenant (operator key).
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var out struct {
		Tenants []Tenant `json:"tenants"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/tenants", nil, &out)
	return out.Tenants, err
}

// CreateKey creates an app or manager key for a tenant (operator key).
func (c *Client) CreateKey(ctx context.Context, tenant string, kind KeyKind, label string) (NewKey, error) {
	var k NewKey
	err := c.Do(ctx, http.MethodPost, "/v1/tenants/"+seg(tenant)+"/keys", map[string]string{"kind": string(kind), "label": label}, &k)
	return k, err
}

// Keys lists a tenant's keys, without secrets (operator key).
func (c *Client) Keys(ctx context.Context, tenant string) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/tenants/"+seg(tenant)+"/keys", nil, &out)
	return out.Keys, err
}

// RevokeKey deletes a tenant's key; it stops working at once (operator
// key).
func (c *Client) RevokeKey(ctx context.Context, tenant, keyID string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/tenants/"+seg(tenant)+"/keys/"+seg(keyID), nil, nil)
}
