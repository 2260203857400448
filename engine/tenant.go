package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Tenants creates tenants and their API keys and authenticates callers.
type Tenants struct {
	*core
	store        tenantStore
	operatorHash string
	authBlocks   *authBlocks // addresses throttled for failed key checks
}

// tenantStore is what Tenants keeps.
type tenantStore interface {
	PutTenant(ctx context.Context, t Tenant) error
	Tenants(ctx context.Context) ([]Tenant, error)
	PutKey(ctx context.Context, k Key, hash string) error
	KeyByHash(ctx context.Context, hash string) (Key, bool, error)
	Keys(ctx context.Context, tenant string) ([]Key, error)
	DeleteKey(ctx context.Context, tenant, id string) (bool, error)
	Ping(ctx context.Context) error
}

// Tenant is one organisation using stepup.
type Tenant struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	SenderName string    `json:"sender_name"`
	CreatedAt  time.Time `json:"created_at"`
}

// KeyKind says what a key may do.
type KeyKind string

// Key kinds. Operator keys come from configuration and belong to no tenant.
const (
	KeyApp      KeyKind = "app"
	KeyManager  KeyKind = "manager"
	KeyOperator KeyKind = "operator"
)

// Key is an API key's record; the secret itself is never stored.
type Key struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Kind      KeyKind   `json:"kind"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
}

// Principal is who made a request.
type Principal struct {
	Kind   KeyKind
	Tenant string // empty for the operator
	KeyID  string
	// Label is the key's label, named as the actor of the changes made
	// with it (empty for the operator).
	Label string
}

// NewKey is a key with its secret, returned once at creation.
type NewKey struct {
	Key
	Secret string `json:"secret"`
}

// HashSecret is how key secrets are stored and looked up. Secrets are 32
// random bytes, so a plain SHA-256 is a sufficient one-way index.
func HashSecret(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// CreateTenant creates a tenant (operator only).
func (e *Tenants) CreateTenant(ctx context.Context, name, senderName string) (Tenant, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 || !printable(name) {
		return Tenant{}, Invalid("name", "required, 1-100 printable characters")
	}
	senderName = strings.TrimSpace(senderName)
	if senderName == "" {
		senderName = name
	}
	if len(senderName) > 40 || !printable(senderName) {
		return Tenant{}, Invalid("sender_name", "at most 40 printable characters")
	}
	t := Tenant{ID: e.newID("tn_", ""), Name: name, SenderName: senderName, CreatedAt: e.now()}
	if err := e.store.PutTenant(ctx, t); err != nil {
		return Tenant{}, Internal(err)
	}
	return t, nil
}

// Tenants lists every tenant (operator only).
func (e *Tenants) Tenants(ctx context.Context) ([]Tenant, error) {
	ts, err := e.store.Tenants(ctx)
	if err != nil {
		return nil, Internal(err)
	}
	return ts, nil
}

// Tenant returns one tenant.
func (e *Tenants) Tenant(ctx context.Context, id string) (Tenant, error) {
	return e.core.tenant(ctx, id)
}

// tenant returns one tenant, from the cache when it was read recently.
func (e *core) tenant(ctx context.Context, id string) (Tenant, error) {
	if t, ok := e.tenants.get(id); ok {
		return t, nil
	}
	t, ok, err := e.store.Tenant(ctx, id)
	if err != nil {
		return Tenant{}, Internal(err)
	}
	if !ok {
		return Tenant{}, ErrTenantNotFound
	}
	e.tenants.put(id, t)
	return t, nil
}

// CreateKey makes a new app or manager key for a tenant; the secret is
// returned only here.
func (e *Tenants) CreateKey(ctx context.Context, tenant string, kind KeyKind, label string) (NewKey, error) {
	if _, err := e.tenant(ctx, tenant); err != nil {
		return NewKey{}, err
	}
	if kind != KeyApp && kind != KeyManager {
		return NewKey{}, Invalid("kind", "must be app or manager")
	}
	if len(label) > 100 || !printable(label) {
		return NewKey{}, Invalid("label", "at most 100 printable characters")
	}
	k := Key{ID: e.newID("key_", ""), Tenant: tenant, Kind: kind, Label: label, CreatedAt: e.now()}
	secret := "su_" + string(kind) + "_" + e.randomToken(32)
	if err := e.store.PutKey(ctx, k, HashSecret(secret)); err != nil {
		return NewKey{}, Internal(err)
	}
	return NewKey{Key: k, Secret: secret}, nil
}

// Keys lists a tenant's keys without secrets.
func (e *Tenants) Keys(ctx context.Context, tenant string) ([]Key, error) {
	if _, err := e.tenant(ctx, tenant); err != nil {
		return nil, err
	}
	ks, err := e.store.Keys(ctx, tenant)
	if err != nil {
		return nil, Internal(err)
	}
	return ks, nil
}

// DeleteKey revokes a key; it stops working at once on every process.
func (e *Tenants) DeleteKey(ctx context.Context, tenant, id string) error {
	if _, err := e.tenant(ctx, tenant); err != nil {
		return err
	}
	ok, err := e.store.DeleteKey(ctx, tenant, id)
	if err != nil {
		return Internal(err)
	}
	if !ok {
		return ErrKeyNotFound
	}
	return nil
}

// Authenticate resolves a bearer secret to its principal.
func (e *Tenants) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrUnauthenticated
	}
	if e.operatorHash != "" && constantEqual(HashSecret(secret), e.operatorHash) {
		return Principal{Kind: KeyOperator, KeyID: "operator"}, nil
	}
	return e.AuthenticateHash(ctx, HashSecret(secret))
}

// AuthenticateHash resolves the hash of a tenant key's secret (HashSecret)
// to its principal, for a caller that kept the hash and not the secret
// (the console's sessions): a revoked key no longer resolves.
func (e *Tenants) AuthenticateHash(ctx context.Context, hash string) (Principal, error) {
	k, ok, err := e.store.KeyByHash(ctx, hash)
	if err != nil {
		return Principal{}, Internal(err)
	}
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Kind: k.Kind, Tenant: k.Tenant, KeyID: k.ID, Label: k.Label}, nil
}

func printable(s string) bool {
	// A byte that is not UTF-8 ranges as U+FFFD, which is printable: one
	// id would name one thing in Redis and another in every JSON answer.
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Ping checks the store.
func (e *Tenants) Ping(ctx context.Context) error { return e.store.Ping(ctx) }
