package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// TestSaveLoginTakesSendLimits: a login write that creates a challenge
// takes its code's send limits in the same round trip. Each limit records
// its verdict on the challenge, the queued job carries those verdicts'
// keys, a refusal is reported, and the shared limits a refused send took
// are given back — on the embedded store, one node and a cluster.
func TestSaveLoginTakesSendLimits(t *testing.T) {
	onEachStore(t, "limits", func(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, tenant string) {
		ctx := context.Background()
		now := time.Now()
		u := engine.UserRef{Tenant: tenant, User: "ann"}
		limits := []engine.Limit{
			{Scope: "sms:t", Tenant: tenant, PerHour: 2, Name: "tenant", Shared: true},
			{Scope: "sms:u", Tenant: tenant, Subject: "ann", PerHour: 1, Name: "user"},
			{Scope: "sms:x", Tenant: tenant, Subject: "off", PerHour: 0, Name: "switched off"},
		}
		user, shared := keyspace.Limit("sms:u", tenant, "ann"), keyspace.Limit("sms:t", tenant, "")
		write := func(n int) (engine.LoginSaved, string) {
			t.Helper()
			id := fmt.Sprintf("ch_%s%024d", keyspace.Placement(tenant, "ann"), n)
			w := statsLogin(tenant, "ann", map[string]string{"ip.addr": "a"})
			// One instant for every limit: the writes', the refund's and
			// the checks' below.
			w.Learn, w.Record.Decision, w.Record.At = false, engine.DecisionChallenge, now
			w.Limits = limits
			w.Commit = &engine.Commit{Version: -1, Now: now, Jobs: []engine.Job{{Kind: message.KindSMS, Challenge: id, Payload: []byte("sealed")}},
				NewChallenges: []engine.Challenge{{ID: id, Tenant: tenant, User: "ann", Purpose: engine.PurposeLogin, Channel: engine.ChannelSMS,
					Status: engine.StatusPending, CreatedAt: now, ExpiresAt: now.Add(time.Minute), MaxAttempts: 5}}}
			saved, err := s.SaveLogin(ctx, u, w)
			if err != nil {
				t.Fatalf("write %d: %v", n, err)
			}
			return saved, id
		}
		verdict := func(limit, id string) string {
			t.Helper()
			v, err := rdb.Get(ctx, keyspace.LimitVerdict(limit, id)).Result()
			if err != nil && err != redis.Nil {
				t.Fatal(err)
			}
			return v
		}

		// The first code: every limit allows it, the caller's own first.
		saved, first := write(1)
		if saved.Refused != "" {
			t.Fatalf("first write refused by %q", saved.Refused)
		}
		if verdict(user, first) != "1" || verdict(shared, first) != "1" {
			t.Errorf("first code's verdicts: user %q, tenant %q, want 1 and 1", verdict(user, first), verdict(shared, first))
		}
		entries, err := rdb.XRange(ctx, keyspace.UserOf(tenant, "ann").Queue(), "-", "+").Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("queue: %v (%v), want the first code's job", entries, err)
		}
		want := keyspace.LimitVerdict(user, first) + " " + keyspace.LimitVerdict(shared, first)
		if g := entries[0].Values[keyspace.FieldGates]; g != want {
			t.Errorf("job gates %q, want %q", g, want)
		}

		// The second: the user's limit refuses it. The challenge and its
		// job are written all the same (the job waits on a "0"), and
		// the tenant's unit it took is given back.
		saved, second := write(2)
		if saved.Refused != "user" || saved.RetryAfter <= 0 || saved.RetryAfter > time.Hour {
			t.Fatalf("second write: %+v, want refused by user with a wait", saved)
		}
		if verdict(user, second) != "0" {
			t.Errorf("second code's user verdict %q, want 0", verdict(user, second))
		}
		if st, _ := rdb.HGet(ctx, keyspace.UserOf(tenant, "ann").Challenge(second), "status").Result(); st != "pending" {
			t.Errorf("second challenge status %q, want it written (pending)", st)
		}
		only := []engine.Limit{limits[0]}
		if tripped, _, err := s.Allow(ctx, only, now); err != nil || tripped != "" {
			t.Fatalf("the tenant's second unit: %q, %v; want it given back by the refused send", tripped, err)
		}
		if tripped, _, err := s.Allow(ctx, only, now); err != nil || tripped != "tenant" {
			t.Fatalf("the tenant's third unit: %q, %v; want refused", tripped, err)
		}
		if _, cluster := rdb.(*redis.ClusterClient); !cluster { // KEYS would ask one master
			if keys, _ := rdb.Keys(ctx, "*off*").Result(); len(keys) != 0 {
				t.Errorf("a switched-off limit wrote %v", keys)
			}
		}
	})
}
