package prompt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// openRecorder is a prompts that records the actor of Open.
type openRecorder struct {
	prompts
	actor engine.Actor
}

func (o *openRecorder) Open(_ context.Context, _, _ string, a engine.Actor) (string, error) {
	o.actor = a
	return "", engine.ErrPromptNotFound
}

// TestActorIPFromTrustedProxy: behind trusted_proxies the pages must
// see the browser's address as the API does (it is the IP the step-up's
// SMS cap and the audit events carry), not the proxy's.
func TestActorIPFromTrustedProxy(t *testing.T) {
	rec := &openRecorder{}
	h := New(rec, Options{ClientIP: func(*http.Request) string { return "198.51.100.7" }})
	r := httptest.NewRequest("GET", "/prompt/pr_x", nil)
	r.RemoteAddr = "10.0.0.2:5555"
	h.ServeHTTP(httptest.NewRecorder(), r)
	if rec.actor.IP != "198.51.100.7" {
		t.Fatalf("actor IP %q, want the client's 198.51.100.7", rec.actor.IP)
	}
}
