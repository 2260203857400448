package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// authFailureWindow is the window of Limits.AuthFailuresPerIP.
const authFailureWindow = time.Minute

// maxAuthBlocks bounds the addresses remembered as blocked in one process;
// past it, blocks are still enforced through the store.
const maxAuthBlocks = 10000

// ErrTooManyAuthFailures answers a client address that failed too many
// authentications: it must wait before presenting any key again.
func ErrTooManyAuthFailures(wait time.Duration) *Error {
	return E(KindRateLimited, "too_many_auth_failures", "too many failed authentications from this address; wait before trying again").
		With("retry_after", int((wait+time.Second-1)/time.Second))
}

// AuthenticateFrom is Authenticate for a request from client (the caller's
// address): failed checks are counted per address in the store, so every
// stepupd process sees them, and past Limits.AuthFailuresPerIP a minute
// the address gets ErrTooManyAuthFailures. Valid keys cost nothing extra
// and are never throttled for another address's failures.
//
// Once an address is over its limit, this process answers it without
// checking keys until the limit's wait has passed, so a throttled client
// learns nothing about the keys it tries; another process learns of the
// block at that client's first failure there.
func (e *Tenants) AuthenticateFrom(ctx context.Context, secret, client string) (Principal, error) {
	if secret == "" {
		// No key is no guess: nothing to throttle, and a misconfigured
		// client behind a shared address must not lock its neighbours out.
		return Principal{}, ErrUnauthenticated
	}
	key := e.authFailureKey(client)
	now := e.now()
	if wait := e.authBlocks.wait(key, now); wait > 0 {
		return Principal{}, ErrTooManyAuthFailures(wait)
	}
	p, err := e.Authenticate(ctx, secret)
	if !errors.Is(err, ErrUnauthenticated) {
		return p, err
	}
	limit := Limit{Scope: "authfail", Subject: key, PerHour: e.opt.Limits.AuthFailuresPerIP, Name: "auth", Period: authFailureWindow}
	tripped, wait, lerr := e.core.store.Allow(ctx, []Limit{limit}, now)
	if lerr != nil {
		// The key was wrong either way; the store's trouble shows at
		// /readyz and must not turn a 401 into a 500.
		e.log.Warn("auth failure limit unavailable", "err", lerr)
		return p, err
	}
	if tripped != "" {
		e.authBlocks.block(key, now, now.Add(wait))
		return Principal{}, ErrTooManyAuthFailures(wait)
	}
	return p, err
}

// authFailureKey is the limit subject of a client address (an IPv6
// client's /64): a keyed hash, so no address is stored in the clear.
func (e *Tenants) authFailureKey(client string) string {
	ip, err := netip.ParseAddr(client)
	if err != nil {
		return "unknown"
	}
	return e.clientHash("", ip)
}

// authBlocks remembers, per process, until when an address is throttled.
type authBlocks struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (b *authBlocks) wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.m[key]
	if !ok {
		return 0
	}
	if !now.Before(until) {
		delete(b.m, key)
		return 0
	}
	return until.Sub(now)
}

func (b *authBlocks) block(key string, now, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.m) >= maxAuthBlocks {
		for k, u := range b.m {
			if !now.Before(u) {
				delete(b.m, k)
			}
		}
		if len(b.m) >= maxAuthBlocks {
			return
		}
	}
	b.m[key] = until
}
