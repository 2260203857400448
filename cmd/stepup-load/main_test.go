package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/api"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/redisstore"
)

func TestRequireLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080/", true},
		{"https://[::1]:8443", true},
		{"http://127.0.0.2:1", true},
		{"http://10.0.0.5:8080", false},
		{"http://example.com", false},
		{"http://localhost.example.com", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
	}
	for _, tt := range tests {
		if err := requireLoopback(tt.url); (err == nil) != tt.ok {
			t.Errorf("requireLoopback(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-key", "k"}, ""},
		{[]string{}, "-key is required"},
		{[]string{"-key", "k", "-url", "http://192.0.2.1:8080"}, "not a loopback"},
		{[]string{"-key", "k", "-baseline-url", "http://example.com/echo"}, "-baseline-url"},
		{[]string{"-key", "k", "-c", "0"}, "must be positive"},
		{[]string{"-key", "k", "-familiar", "1.5"}, "between 0 and 1"},
		{[]string{"-key", "k", "-d", "0s"}, "-d must be positive"},
		{[]string{"-key", "k", "-rate", "-5"}, "-rate must not be negative"},
	}
	for _, tt := range tests {
		c, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("parseFlags(%q): %v", tt.args, err)
			} else if c.users != 10000 || c.concurrency != 32 || c.duration != 20*time.Second || c.url != "http://127.0.0.1:8080" {
				t.Errorf("parseFlags(%q) defaults = %+v", tt.args, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestLoadUsers(t *testing.T) {
	seen := map[string]bool{}
	for i := range 3000 {
		u := newLoadUser(1, "p-", i)
		if v := newLoadUser(1, "p-", i); v.id != u.id || v.home != u.home || len(v.devices) != len(u.devices) {
			t.Fatalf("user %d not deterministic", i)
		}
		if seen[u.home.String()] {
			t.Fatalf("user %d shares home %s", i, u.home)
		}
		seen[u.home.String()] = true
		if len(u.devices) < 1 || len(u.devices) > 2 {
			t.Fatalf("user %d has %d devices", i, len(u.devices))
		}
	}
	u := newLoadUser(1, "p-", 7)
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := u.history(r, 20, now)
	for k, l := range h {
		if !l.At.Before(now) || l.At.Before(now.AddDate(0, 0, -62)) || k > 0 && !l.At.After(h[k-1].At) {
			t.Fatalf("login %d at %s: not ascending within the 62 days before %s", k, l.At, now)
		}
	}
	familiar := 0
	for range 1000 {
		if req := u.login(r, 0.9); strings.HasPrefix(req.IP, u.home.Addr().String()[:len(u.home.Addr().String())-1]) {
			familiar++
		}
	}
	if familiar < 850 || familiar > 950 {
		t.Errorf("%d of 1000 logins from home, want about 900", familiar)
	}
}

func TestQuantile(t *testing.T) {
	var r result
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := r.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := (result{}).quantile(0.5); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
}

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(echoHandler().Handler())
	defer srv.Close()
	tests := []struct {
		body string
		code int
	}{
		{`{"user_id":"a","ip":"192.0.2.1","user_agent":"x","device_id":"d"}`, http.StatusOK},
		{`{"user_id":"a","extra":1}`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		resp, err := http.Post(srv.URL+"/echo", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("POST %s: %d %s, want %d", tt.body, resp.StatusCode, b, tt.code)
		}
		if tt.code == http.StatusOK && strings.TrimSpace(string(b)) != tt.body {
			t.Errorf("echo = %s, want %s", b, tt.body)
		}
	}
}

// TestRunAgainstAPI runs the whole tool against the real API handler on an
// in-process miniredis.
func TestRunAgainstAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("drives an API server for about a second")
	}
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	eng, err := engine.New(redisstore.New(rdb, redisstore.Options{}), engine.Options{Secret: bytes.Repeat([]byte("s"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := eng.Tenants.CreateTenant(ctx, "load", "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := eng.Tenants.CreateKey(ctx, tenant.ID, engine.KeyApp, "load")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.FromEngine(eng), api.Options{}).Handler())
	defer srv.Close()

	var out bytes.Buffer
	args := []string{"-url", srv.URL, "-key", key.Secret, "-users", "25", "-history", "5", "-c", "4", "-d", "400ms", "-warmup", "100ms",
		"-ceiling-redis", mr.Addr()}
	if err := run(ctx, args, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, re := range []string{
		`seeded 25 users with 5 past logins each`,
		`stepup evaluate\s+\d+\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms\s+0\s`,
		`baseline echo\s+\d+\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms\s+0\s`,
		`decisions: map\[allow:\d+`,
		`read\+write ceiling\s+\d+\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms\s+0\s`,
		`stepup / baseline: throughput [\d.]+×`,
		`stepup / read\+write ceiling: throughput [\d.]+×, p50 [\d.]+×, p99 [\d.]+×`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", re, out.String())
		}
	}
	// The ceiling read and wrote its users' keys.
	if keys, _ := rdb.Keys(ctx, "stepup-load:ceiling:*").Result(); len(keys) == 0 {
		t.Error("the read+write ceiling wrote no key")
	}
}

// TestOpenLoop: with -rate the phase offers that many requests a second,
// whatever the server's speed, and times each from when it was due: a
// server slower than the offered rate is charged for the queue it causes
// (no coordinated omission).
func TestOpenLoop(t *testing.T) {
	var served atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte(`{}`))
	}))
	defer slow.Close()
	p := phase{name: "slow", client: newClient(4), url: slow.URL, concurrency: 4, rate: 100,
		warmup: 100 * time.Millisecond, duration: 600 * time.Millisecond, seed: 1,
		body: func(*rand.Rand) any { return map[string]int{} }}

	// 100 req/s with four workers and 20 ms each: the server keeps up;
	// about 60 requests in the window, each timed near 20 ms.
	res := p.run(context.Background())
	if res.requests < 45 || res.requests > 75 || res.errors != 0 {
		t.Errorf("kept up: %d requests (%d errors) in 600 ms at 100 req/s, want about 60", res.requests, res.errors)
	}
	if q := res.quantile(0.5); q < 20*time.Millisecond || q > 60*time.Millisecond {
		t.Errorf("kept up: p50 %s, want about 20 ms", q)
	}

	// One worker cannot serve 100 req/s at 20 ms each: requests fall
	// behind their schedule, and the latency shows it.
	p.concurrency, p.client = 1, newClient(1)
	res = p.run(context.Background())
	if q := res.quantile(0.99); q < 200*time.Millisecond {
		t.Errorf("fell behind: p99 %s, want the growing queue (well over 200 ms)", q)
	}
}
