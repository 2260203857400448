package pagetest

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// Step is an authenticator app's time step in seconds.
const Step = 30

// Authenticator is the user's authenticator app for one secret. It never
// shows a 30-second step twice, as a user who waits for a fresh code would
// not (stepup refuses a step already used): each code is of the current
// step, or of the next one (which stepup accepts, ±1 step) when the
// current one was used; beyond that it waits for the clock.
type Authenticator struct {
	Secret string
	last   int64 // the last step shown
}

// Code returns a code of a step not shown before.
func (a *Authenticator) Code(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(2 * Step * time.Second)
	for {
		cur := time.Now().Unix() / Step
		if step := max(a.last+1, cur); step <= cur+1 {
			a.last = step
			return a.At(t, step)
		}
		if time.Now().After(deadline) {
			t.Fatalf("authenticator: no fresh step within %ds", 2*Step)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Used returns the code of the last step shown again: a replay.
func (a *Authenticator) Used(t testing.TB) string {
	t.Helper()
	return a.At(t, a.last)
}

// At returns the code of a step (unix seconds / Step).
func (a *Authenticator) At(t testing.TB, step int64) string {
	t.Helper()
	c, err := totp.GenerateCode(a.Secret, time.Unix(step*Step, 0))
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	return c
}
