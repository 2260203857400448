package redisstore

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
)

// TestStatsIdleTenantDropped: a tenant unused for statsIdle leaves the
// process's table; a request holding its old copy counts into a fresh one
// loaded from Redis, so nothing is counted where no flush would send it.
func TestStatsIdleTenantDropped(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s := newStats(rdb, time.Hour, slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	one := loginCount{n: 1, inc: 1, levels: []engine.LevelValue{{Level: "ip.cc", Bucket: "a"}}, hour: -1}

	old, err := s.add(ctx, "tn", one)
	if err != nil {
		t.Fatal(err)
	}
	s.sync(ctx) // flushed: nothing pending
	now = now.Add(statsIdle + time.Minute)
	s.sync(ctx) // idle: dropped
	if !old.dropped || len(s.tenants) != 0 {
		t.Fatalf("after %s idle: dropped %v, %d tenants in the table", statsIdle, old.dropped, len(s.tenants))
	}
	cur, err := s.add(ctx, "tn", one)
	if err != nil {
		t.Fatal(err)
	}
	if cur == old {
		t.Fatal("counted into the dropped copy")
	}
	v, err := s.read(ctx, "tn", one.levels)
	if err != nil {
		t.Fatal(err)
	}
	if v.n != 2 || v.levels[0].TenantCount != 2 || v.levels[0].TenantDistinct != 1 {
		t.Fatalf("after reloading: N %d, count %d, M %d; want 2, 2, 1", v.n, v.levels[0].TenantCount, v.levels[0].TenantDistinct)
	}
}
