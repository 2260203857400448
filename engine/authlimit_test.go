package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// TestAuthFailuresThrottledPerAddress: 20 bad keys a minute from one
// address, then 429 for any key from it until the wait is over; another
// address's valid key is never refused, on either of two engines sharing
// the Redis.
func TestAuthFailuresThrottledPerAddress(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	clock := &reportClock{now: time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)}
	newEngine := func() *engine.Engine {
		st := redisstore.New(rdb, redisstore.Options{})
		t.Cleanup(st.Close)
		eng, err := engine.New(st, engine.Options{Secret: []byte("auth-limit-test-secret-0123456789abcdef"), Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	eng, other := newEngine(), newEngine()
	tn, err := eng.Tenants.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	key, err := eng.Tenants.CreateKey(ctx, tn.ID, engine.KeyManager, "test")
	if err != nil {
		t.Fatal(err)
	}
	const attacker, client = "203.0.113.9", "192.0.2.50"
	code := func(err error) string {
		var e *engine.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return fmt.Sprint(err)
	}
	for i := range 20 {
		if _, err := eng.Tenants.AuthenticateFrom(ctx, fmt.Sprintf("su_manager_bad%d", i), attacker); code(err) != "unauthenticated" {
			t.Fatalf("bad key %d: %v, want unauthenticated", i+1, err)
		}
	}
	_, err = eng.Tenants.AuthenticateFrom(ctx, "su_manager_bad20", attacker)
	var e *engine.Error
	if !errors.As(err, &e) || e.Code != "too_many_auth_failures" || e.Meta["retry_after"] != 3 {
		t.Fatalf("21st bad key: %v, want too_many_auth_failures with retry_after 3", err)
	}
	if _, err := eng.Tenants.AuthenticateFrom(ctx, key.Secret, attacker); code(err) != "too_many_auth_failures" {
		t.Errorf("valid key from the throttled address: %v, want too_many_auth_failures", err)
	}
	if _, err := other.Tenants.AuthenticateFrom(ctx, "su_manager_bad21", attacker); code(err) != "too_many_auth_failures" {
		t.Errorf("bad key on the second engine: %v, want too_many_auth_failures", err)
	}
	for _, en := range []*engine.Engine{eng, other} {
		if p, err := en.Tenants.AuthenticateFrom(ctx, key.Secret, client); err != nil || p.Tenant != tn.ID {
			t.Errorf("valid key from another address: %v %v", p, err)
		}
	}
	// After the wait one more try is allowed, then the limit holds again.
	clock.Set(clock.Now().Add(3 * time.Second))
	if p, err := eng.Tenants.AuthenticateFrom(ctx, key.Secret, attacker); err != nil || p.Tenant != tn.ID {
		t.Errorf("valid key from the address after the wait: %v %v", p, err)
	}
	if _, err := eng.Tenants.AuthenticateFrom(ctx, "su_manager_bad22", attacker); code(err) != "unauthenticated" {
		t.Errorf("bad key after the wait: %v, want unauthenticated", err)
	}
	if _, err := eng.Tenants.AuthenticateFrom(ctx, "su_manager_bad23", attacker); code(err) != "too_many_auth_failures" {
		t.Errorf("next bad key: %v, want too_many_auth_failures", err)
	}
}
