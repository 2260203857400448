package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// Console sessions end when idle too long, at their absolute deadline, or
// when deleted; Redis forgets them by itself too.
func TestConsoleSessions(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	st := redisstore.New(rdb, redisstore.Options{})
	t.Cleanup(func() { st.Close(); _ = rdb.Close() })
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const idle = 30 * time.Minute
	deadline := t0.Add(12 * time.Hour)

	cases := []struct {
		name    string
		touches []time.Duration // offsets from t0 of earlier touches
		at      time.Duration
		del     bool
		want    bool
	}{
		{name: "fresh", at: time.Minute, want: true},
		{name: "idle too long", at: idle, want: false},
		{name: "kept alive by use", touches: []time.Duration{20 * time.Minute, 40 * time.Minute}, at: 60 * time.Minute, want: true},
		{name: "past the absolute deadline though in use", touches: every(20*time.Minute, 12*time.Hour), at: 12 * time.Hour, want: false},
		{name: "signed out", del: true, at: time.Minute, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "h-" + tc.name
			if err := st.PutSession(ctx, id, []byte(`{"t":"tn_1"}`), t0, idle, deadline); err != nil {
				t.Fatal(err)
			}
			ttl := rdb.PTTL(ctx, keyspace.ConsoleSession(id)).Val()
			if ttl <= 0 || ttl > idle {
				t.Fatalf("ttl %v, want within the idle expiry", ttl)
			}
			for _, at := range tc.touches {
				if _, ok, err := st.TouchSession(ctx, id, t0.Add(at), idle); !ok || err != nil {
					t.Fatalf("touch at %v: %v %v", at, ok, err)
				}
			}
			if tc.del {
				if err := st.DeleteSession(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			data, ok, err := st.TouchSession(ctx, id, t0.Add(tc.at), idle)
			if err != nil || ok != tc.want {
				t.Fatalf("touch at %v = %v, %v; want %v", tc.at, ok, err, tc.want)
			}
			if ok && string(data) != `{"t":"tn_1"}` {
				t.Fatalf("data %q", data)
			}
			if !ok && rdb.Exists(ctx, keyspace.ConsoleSession(id)).Val() != 0 {
				t.Fatal("an expired session is still stored")
			}
		})
	}
	if err := st.PutSession(ctx, "late", nil, deadline, idle, deadline); err == nil {
		t.Fatal("a session past its deadline was stored")
	}
}

// every returns the offsets step, 2·step, … before end.
func every(step, end time.Duration) []time.Duration {
	var out []time.Duration
	for d := step; d < end; d += step {
		out = append(out, d)
	}
	return out
}
