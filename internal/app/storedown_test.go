//go:build unix

package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/app"
	"github.com/stepup-auth/stepup/internal/redistest"
)

// TestStoreUnavailable: while Redis is hung (paused) or down (killed),
// requests come back 503 store_unavailable with Retry-After instead of
// hanging, /readyz says not ready, and both recover once Redis is back.
func TestStoreUnavailable(t *testing.T) {
	node := redistest.Controlled(t)
	cfg := config.Default()
	cfg.Secret = "app-test-secret-0123456789abcdef0123"
	cfg.Redis.URL = "redis://" + node.Addr()
	cfg.SMS.Driver, cfg.Mail.Driver = "console", "console"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, io.Discard, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	// The bound: a request must be answered well within it, whatever Redis
	// does (stepupd's own: two tries of a 2 s read timeout).
	hc := &http.Client{Timeout: 20 * time.Second}

	key := appKey(t, a)
	if st, body := evaluate(t, hc, srv.URL, key); st != http.StatusOK {
		t.Fatalf("evaluate with Redis up: %d %s", st, body)
	}

	tests := []struct {
		name     string
		down, up func()
		emptied  bool // Redis comes back without its data
	}{
		{"paused", node.Pause, node.Resume, false},
		{"stopped", node.Stop, node.Start, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.down()
			st, body, hdr := post(t, hc, srv.URL+"/v1/logins/evaluate", key, evalBody)
			if st != http.StatusServiceUnavailable || errorCode(body) != "store_unavailable" || hdr.Get("Retry-After") != "2" {
				t.Errorf("evaluate with Redis %s: %d Retry-After %q %s; want 503 store_unavailable, Retry-After 2",
					tt.name, st, hdr.Get("Retry-After"), body)
			}
			if st, body := readyz(t, hc, srv.URL); st != http.StatusServiceUnavailable || !strings.Contains(body, `"not_ready"`) {
				t.Errorf("/readyz with Redis %s: %d %s; want 503 not_ready", tt.name, st, body)
			}

			tt.up()
			if tt.emptied {
				key = appKey(t, a)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				st, body := evaluate(t, hc, srv.URL, key)
				if st == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("evaluate after Redis came back: %d %s", st, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if st, body := readyz(t, hc, srv.URL); st != http.StatusOK {
				t.Errorf("/readyz after Redis came back: %d %s", st, body)
			}
		})
	}
}

const evalBody = `{"user_id":"alice","ip":"192.0.2.10","user_agent":"curl/8"}`

// appKey creates a tenant and returns an app key's secret.
func appKey(t *testing.T, a *app.App) string {
	t.Helper()
	tn, err := a.Engine.Tenants.CreateTenant(t.Context(), "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	k, err := a.Engine.Tenants.CreateKey(t.Context(), tn.ID, engine.KeyApp, "test")
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

func evaluate(t *testing.T, hc *http.Client, base, key string) (int, string) {
	t.Helper()
	st, body, _ := post(t, hc, base+"/v1/logins/evaluate", key, evalBody)
	return st, body
}

func post(t *testing.T, hc *http.Client, url, key, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func readyz(t *testing.T, hc *http.Client, base string) (int, string) {
	t.Helper()
	res, err := hc.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func errorCode(body string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}
