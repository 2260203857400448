package redisstore_test

import (
	"context"
	"encoding/json"
	"slices"
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
// a code), and his notices (his address), found by his keyed hash; other
// jobs stay: another user's notices, a manager's mail (no user hash). On a
// cluster, so the erasure's keys are proven to share a slot.
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
	// His notice carries his keyed hash in the queue; a manager's mail
	// about him carries none.
	const hisHash, otherHash = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
	if err := s.Commit(ctx, u, engine.Commit{Version: -1, Now: now, Jobs: []engine.Job{
		{Kind: "notify", Payload: []byte("his notice"), User: hisHash},
		{Kind: "notify", Payload: []byte("managers' notice")},
	}}); err != nil {
		t.Fatal(err)
	}
	queued, err := rdb.XRange(ctx, keyspace.Queue(sh), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 2 || queued[0].Values[keyspace.FieldUser] != hisHash || queued[1].Values[keyspace.FieldUser] != nil {
		t.Errorf("queued jobs %v: want his notice with user %q, the managers' without one", queued, hisHash)
	}

	his, other := keyspace.Challenge(sh, id), keyspace.Challenge(sh, "ch_"+s.Placement(u)+"zzzzzzzzzzzzzzzzzzzzzzzz")
	jobs := []struct{ ch, user, name string }{
		{ch: his, name: "his challenge's"},
		{ch: other, name: "other challenge's"},
		{user: hisHash, name: "his notice"},
		{user: otherHash, name: "other user's notice"},
		{name: "managers' notice"},
	}
	for _, j := range jobs {
		// As the delivery worker writes them (deadScript, retry's member).
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Dead(sh), Values: []any{"origin", j.name, "kind", "notify", "ch", j.ch,
			"data", "sealed", "send", "", keyspace.FieldUser, j.user}}).Err(); err != nil {
			t.Fatal(err)
		}
		d := map[string]string{"id": j.name, "kind": "notify", "data": "sealed", "attempt": "1"}
		if j.ch != "" {
			d["ch"] = j.ch
		}
		if j.user != "" {
			d["user"] = j.user
		}
		m, _ := json.Marshal(d)
		if err := rdb.ZAdd(ctx, keyspace.Delay(sh), redis.Z{Score: float64(now.Add(time.Hour).UnixMilli()), Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	open, err := s.OpenChallenges(ctx, u, now)
	if err != nil {
		t.Fatal(err)
	}
	ev := engine.Event{Tenant: u.Tenant, User: u.User, Type: "user_erased", At: now}
	if err := s.Commit(ctx, u, engine.Commit{Version: -1, Erase: true, EraseUser: hisHash, Now: now, CancelChallenges: open, Events: []engine.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"other challenge's", "other user's notice", "managers' notice"}
	dead, err := rdb.XRange(ctx, keyspace.Dead(sh), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, m := range dead {
		kept = append(kept, m.Values["origin"].(string))
	}
	if !slices.Equal(kept, want) {
		t.Errorf("dead letters after the erasure: %q, want %q", kept, want)
	}
	delayed, err := rdb.ZRange(ctx, keyspace.Delay(sh), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	kept = nil
	for _, m := range delayed {
		var d map[string]string
		if err := json.Unmarshal([]byte(m), &d); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, d["id"])
	}
	slices.Sort(kept)
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(kept, w) {
		t.Errorf("delayed jobs after the erasure: %q, want %q", kept, w)
	}
	if n, _ := rdb.Exists(ctx, his).Result(); n != 0 {
		t.Errorf("his challenge outlived the erasure")
	}
}
