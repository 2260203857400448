package redisstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// An erasure takes the jobs of the user's challenges out of his shard's
// dead-letter stream and retry set (each holds his number or address and
// a code); other jobs stay. On a cluster, so the erasure's keys are
// proven to share a slot.
func TestEraseDropsDeadAndDelayedJobsOfHisChallenges(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.Cluster(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, redisstore.Options{})
	t.Cleanup(s.Close)

	u := engine.UserRef{Tenant: "tn_erase", User: "ursula"}
	sh := keyspace.ShardOf(u.Tenant, u.User)
	id := "ch_" + s.Placement(u) + "abcdefghijklmnopqrstuvwx"
	now := time.Now()
	ch := engine.Challenge{ID: id, Tenant: u.Tenant, User: u.User, Purpose: engine.PurposeLogin, Channel: engine.ChannelSMS,
		CodeHash: "h", Status: engine.StatusPending, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute), MaxAttempts: 5}
	if err := s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{ch}, Now: now}); err != nil {
		t.Fatal(err)
	}
	his, other := keyspace.Challenge(sh, id), keyspace.Challenge(sh, "ch_"+s.Placement(u)+"zzzzzzzzzzzzzzzzzzzzzzzz")
	for _, c := range []string{his, other} {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Dead(sh), Values: []any{"kind", "sms", "ch", c, "data", "sealed"}}).Err(); err != nil {
			t.Fatal(err)
		}
		m, _ := json.Marshal(map[string]string{"id": c, "kind": "sms", "ch": c, "data": "sealed", "attempt": "1"})
		if err := rdb.ZAdd(ctx, keyspace.Delay(sh), redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	open, err := s.OpenChallenges(ctx, u, now)
	if err != nil {
		t.Fatal(err)
	}
	ev := engine.Event{Tenant: u.Tenant, User: u.User, Type: "user_erased", At: now}
	if err := s.Commit(ctx, u, engine.Commit{Version: -1, Erase: true, Now: now, CancelChallenges: open, Events: []engine.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	dead, err := rdb.XRange(ctx, keyspace.Dead(sh), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Values["ch"] != other {
		t.Errorf("dead letters after the erasure: %v, want only the other challenge's", dead)
	}
	delayed, err := rdb.ZRange(ctx, keyspace.Delay(sh), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(delayed) != 1 {
		t.Errorf("delayed jobs after the erasure: %v, want only the other challenge's", delayed)
	}
	if n, _ := rdb.Exists(ctx, his).Result(); n != 0 {
		t.Errorf("his challenge outlived the erasure")
	}
}
