package engine

import (
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/seal"
)

// The fingerprint follows the factors and the security address, not what
// logins change.
func TestFingerprint(t *testing.T) {
	e := &core{codeMAC: seal.NewMAC([]byte("stale-test-secret-0123456789abcdef"), "codes")}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Account{Version: 3, Profile: Profile{Email: "a@example.test"},
		Factors: Factors{SMS: &PhoneFactor{Sealed: []byte{1, 2}}, TOTP: &TOTPFactor{Sealed: []byte{3}, LastStep: 10}}}
	fp := e.fingerprint(base)

	same := base
	same.Version, same.UpdatedAt = 9, at
	same.Factors.TOTP = &TOTPFactor{Sealed: []byte{3}, LastStep: 99}
	same.Devices = []Device{{ID: "dv_1"}}
	same.BackupCodes = []string{"x"}
	same.Profile.DisplayName = "A"
	same.Group = "staff"
	if e.fingerprint(same) != fp {
		t.Error("a login's changes (version, TOTP step, devices, backup codes, name) changed the fingerprint")
	}
	for name, change := range map[string]func(a *Account){
		"new number":   func(a *Account) { a.Factors.SMS = &PhoneFactor{Sealed: []byte{9}} },
		"no SMS":       func(a *Account) { a.Factors.SMS = nil },
		"new TOTP":     func(a *Account) { a.Factors.TOTP = &TOTPFactor{Sealed: []byte{4}} },
		"e-mail":       func(a *Account) { a.Profile.Email = "b@example.test" },
		"e-mail added": func(a *Account) { a.Factors.Email = &EmailFactor{AddedAt: at} },
		"reset":        func(a *Account) { a.Factors = Factors{} },
	} {
		a := base
		change(&a)
		if e.fingerprint(a) == fp {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	c := Challenge{}
	if e.stale(c, Account{}) {
		t.Error("a challenge without a fingerprint is judged stale")
	}
}
