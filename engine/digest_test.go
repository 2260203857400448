package engine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// A tenant asking for a daily digest gets yesterday's counts once.
func TestDailyDigest(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	st := redisstore.New(rdb, redisstore.Options{})
	t.Cleanup(st.Close)
	now := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eng, err := engine.New(st, engine.Options{Secret: []byte("digest-test-secret-0123456789abcdef"), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := eng.Tenants.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	quiet, _ := eng.Tenants.CreateTenant(ctx, "quiet", "Quiet")
	for _, id := range []string{tn.ID, quiet.ID} {
		u := engine.PolicyUpdate{Policy: engine.PolicyPatch{ManagerEmails: &[]string{"boss@example.test"}, DailyDigest: new(id != quiet.ID)}}
		if _, err := eng.Policies.PutPolicy(ctx, id, u, engine.Actor{Kind: message.ActorManager}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ip := range []string{"192.0.2.1", "192.0.2.1", "198.51.100.1"} {
		if _, err := eng.Logins.Evaluate(ctx, tn.ID, engine.EvaluateInput{UserID: "u" + string(rune('a'+i)), IP: ip, UserAgent: "Mozilla/5.0"}); err != nil {
			t.Fatal(err)
		}
	}
	queued := func() []message.Notice {
		var out []message.Notice
		for _, q := range keyspace.Queues() {
			msgs, _ := rdb.XRange(ctx, q, "-", "+").Result()
			for _, m := range msgs {
				var n message.Notice
				data, _ := m.Values["data"].(string)
				if err := eng.DecodeJob(b64(t, data), &n); err == nil && n.Event.Type == "daily_digest" {
					out = append(out, n)
				}
			}
		}
		return out
	}
	if err := eng.Policies.SendDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queued(); len(got) != 0 {
		t.Fatalf("a digest for a day not over yet: %+v", got)
	}
	now = now.Add(24 * time.Hour)
	for range 2 { // the second run finds the digest sent
		if err := eng.Policies.SendDigests(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := queued()
	if len(got) != 1 {
		t.Fatalf("%d digests queued, want 1 (for acme only, once)", len(got))
	}
	d := got[0].Event.Details
	if d["date"] != "2026-03-03" || d["logins"] != "3" || d["allowed"] != "3" || got[0].To[0] != "boss@example.test" {
		b, _ := json.Marshal(got[0])
		t.Fatalf("digest = %s", b)
	}
	for _, k := range []string{"would_challenge", "would_deny", "would_enroll"} {
		if _, ok := d[k]; ok {
			t.Errorf("an enforcing tenant's digest has %s: %v", k, d)
		}
	}
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
