package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// The tenant-wide statistics live in each process's memory and travel
// between processes through the tenant's statistics stream (stats.go).
// These tests run several stores (processes) on one Redis, write through
// some and read through others, on every kind of Redis stepupd supports.

// statsClients returns a function making a new client on each kind of
// Redis.
func statsClients(t *testing.T) map[string]func(t *testing.T) redis.UniversalClient {
	mr := miniredis.RunT(t)
	single := redistest.Server(t)
	cluster := redistest.Cluster(t)
	return map[string]func(t *testing.T) redis.UniversalClient{
		"embedded": func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: mr.Addr()})
		},
		"single": func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: single})
		},
		"cluster": func(t *testing.T) redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster})
		},
	}
}

// onEachStore runs f on a store over each kind of Redis (statsClients,
// statistics ticking hourly), with a fresh tenant id named after prefix.
func onEachStore(t *testing.T, prefix string, f func(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, tenant string)) {
	for name, newClient := range statsClients(t) {
		t.Run(name, func(t *testing.T) {
			s, rdb := statsStore(t, newClient, time.Hour)
			f(t, s, rdb, fmt.Sprintf("tn_%s_%s_%d", prefix, name, time.Now().UnixNano()%1e9))
		})
	}
}

func statsStore(t *testing.T, newClient func(t *testing.T) redis.UniversalClient, every time.Duration) (*redisstore.Store, redis.UniversalClient) {
	t.Helper()
	rdb := newClient(t)
	s := redisstore.New(rdb, redisstore.Options{FlushEvery: every})
	t.Cleanup(func() {
		s.Close()
		_ = rdb.Close()
	})
	return s, rdb
}

// statsLogin is a learnt login of user with one value per level.
func statsLogin(tenant, user string, values map[string]string) engine.LoginWrite {
	rec := engine.LoginRecord{ID: fmt.Sprintf("lg_%s%024d", keyspace.Placement(tenant, user), rand.Int64N(1e18)),
		Tenant: tenant, User: user, At: time.Now(), Decision: engine.DecisionAllow}
	for l, v := range values {
		rec.Levels = append(rec.Levels, engine.LevelValue{Level: l, Hash: v, Bucket: v})
	}
	return engine.LoginWrite{Record: rec, RecordTTL: time.Hour, Learn: true, LearnOpt: engine.LearnOptions{HistorySize: 50, HistoryTTL: time.Hour}}
}

func statsRead(t *testing.T, s *redisstore.Store, tenant string, levels ...engine.LevelValue) engine.LoginState {
	t.Helper()
	st, err := s.LoadLogin(context.Background(), engine.UserRef{Tenant: tenant, User: "reader"}, engine.LoginQuery{Levels: levels, Now: time.Now(), Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStatsAcrossProcesses: three stores learn logins concurrently, some
// into the same buckets; after a sync every store, and a store started
// afterwards, reads exactly the counts a single process would have: N, |U|,
// every bucket's count and M, the buckets in use.
func TestStatsAcrossProcesses(t *testing.T) {
	for name, newClient := range statsClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tenant := fmt.Sprintf("tn_stats_%s_%d", name, time.Now().UnixNano()%1e9)
			var stores []*redisstore.Store
			for range 3 {
				s, _ := statsStore(t, newClient, time.Hour) // synced by hand below
				stores = append(stores, s)
			}
			// 3 stores × 40 users × 2 logins; the ip.cc bucket is shared by
			// all ("DE" or "FR"), ip.net by users of one store.
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					for u := range 40 {
						user := fmt.Sprintf("u%d-%d", i, u)
						for l := range 2 {
							cc := []string{"DE", "FR"}[u%2]
							w := statsLogin(tenant, user, map[string]string{"ip.cc": cc, "ip.net": fmt.Sprintf("net%d", i)})
							w.Record.First = l == 0
							if _, err := s.SaveLogin(ctx, engine.UserRef{Tenant: tenant, User: user}, w); err != nil {
								t.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			for range 2 { // flush everyone's batch, then read everyone's
				for _, s := range stores {
					s.SyncStats(ctx)
				}
			}
			late, _ := statsStore(t, newClient, time.Hour)
			want := func(s *redisstore.Store, who string) {
				t.Helper()
				st := statsRead(t, s, tenant, engine.LevelValue{Level: "ip.cc", Bucket: "DE"}, engine.LevelValue{Level: "ip.net", Bucket: "net1"})
				if st.TenantLogins != 240 || st.TenantUsers != 120 {
					t.Errorf("%s: N %d, |U| %d; want 240 and 120", who, st.TenantLogins, st.TenantUsers)
				}
				if c := st.Levels[0]; c.TenantCount != 120 || c.TenantDistinct != 2 {
					t.Errorf("%s: ip.cc DE count %d, M %d; want 120 and 2", who, c.TenantCount, c.TenantDistinct)
				}
				if c := st.Levels[1]; c.TenantCount != 80 || c.TenantDistinct != 3 {
					t.Errorf("%s: ip.net net1 count %d, M %d; want 80 and 3", who, c.TenantCount, c.TenantDistinct)
				}
			}
			for i, s := range stores {
				want(s, fmt.Sprintf("store %d", i))
			}
			want(late, "a store started afterwards")
		})
	}
}

// TestStatsOwnWritesAtOnce: a store reads its own learnt logins before any
// flush, and another store sees them within two flush intervals.
func TestStatsOwnWritesAtOnce(t *testing.T) {
	newClient := statsClients(t)["single"]
	ctx := context.Background()
	tenant := fmt.Sprintf("tn_own_%d", time.Now().UnixNano()%1e9)
	a, _ := statsStore(t, newClient, 20*time.Millisecond)
	b, _ := statsStore(t, newClient, 20*time.Millisecond)
	cc := engine.LevelValue{Level: "ip.cc", Bucket: "SE"}
	if st := statsRead(t, b, tenant, cc); st.TenantLogins != 0 {
		t.Fatalf("a new tenant has %d logins", st.TenantLogins)
	}
	w := statsLogin(tenant, "ada", map[string]string{"ip.cc": "SE"})
	w.Record.First = true
	if _, err := a.SaveLogin(ctx, engine.UserRef{Tenant: tenant, User: "ada"}, w); err != nil {
		t.Fatal(err)
	}
	if st := statsRead(t, a, tenant, cc); st.TenantLogins != 1 || st.Levels[0].TenantCount != 1 || st.Levels[0].TenantDistinct != 1 {
		t.Fatalf("the writing store reads %+v, want its login counted at once", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := statsRead(t, b, tenant, cc)
		if st.TenantLogins == 1 && st.TenantUsers == 1 && st.Levels[0].TenantCount == 1 && st.Levels[0].TenantDistinct == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other store still reads %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStatsReloadAfterGap: a store that missed entries trimmed from the
// stream notices the gap in their numbering and reloads, exact again.
func TestStatsReloadAfterGap(t *testing.T) {
	newClient := statsClients(t)["single"]
	ctx := context.Background()
	tenant := fmt.Sprintf("tn_gap_%d", time.Now().UnixNano()%1e9)
	a, _ := statsStore(t, newClient, time.Hour)
	b, rdb := statsStore(t, newClient, time.Hour)
	cc := engine.LevelValue{Level: "ip.cc", Bucket: "NO"}
	statsRead(t, b, tenant, cc) // b loads the tenant (empty)
	for i := range 3 {
		w := statsLogin(tenant, fmt.Sprintf("u%d", i), map[string]string{"ip.cc": "NO"})
		if _, err := a.SaveLogin(ctx, engine.UserRef{Tenant: tenant, User: w.Record.User}, w); err != nil {
			t.Fatal(err)
		}
		a.SyncStats(ctx) // one stream entry per login
	}
	// The first two entries are trimmed before b reads them.
	stream := keyspace.TenantOf(tenant).StatsStream()
	if err := rdb.XTrimMaxLen(ctx, stream, 1).Err(); err != nil {
		t.Fatal(err)
	}
	b.SyncStats(ctx)
	if st := statsRead(t, b, tenant, cc); st.TenantLogins != 3 || st.Levels[0].TenantCount != 3 || st.Levels[0].TenantDistinct != 1 {
		t.Fatalf("after a gap: %+v, want 3 logins in one bucket", st)
	}
}

// TestStatsFlushRetries: a batch whose flush fails (Redis gone) stays
// counted and is sent once Redis is back, exactly once.
func TestStatsFlushRetries(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	newClient := func(t *testing.T) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	}
	tenant := "tn_retry"
	a, _ := statsStore(t, newClient, time.Hour)
	cc := engine.LevelValue{Level: "ip.cc", Bucket: "IS"}
	statsRead(t, a, tenant, cc)
	w := statsLogin(tenant, "ada", map[string]string{"ip.cc": "IS"})
	if _, err := a.SaveLogin(ctx, engine.UserRef{Tenant: tenant, User: "ada"}, w); err != nil {
		t.Fatal(err)
	}
	mr.SetError("LOADING down for the test")
	a.SyncStats(ctx) // fails: the batch stays pending
	mr.SetError("")
	if st := statsRead(t, a, tenant, cc); st.TenantLogins != 1 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("after a failed flush: %+v, want the login still counted", st)
	}
	a.SyncStats(ctx)
	a.SyncStats(ctx)
	b, _ := statsStore(t, newClient, time.Hour)
	if st := statsRead(t, b, tenant, cc); st.TenantLogins != 1 || st.Levels[0].TenantCount != 1 || st.Levels[0].TenantDistinct != 1 {
		t.Fatalf("stored after the retry: %+v, want exactly one login", st)
	}
}

// TestStatsFullBatchFlushedEarly: a pending batch that reaches its size
// bound goes to Redis before its tick, so one flush script stays short
// however busy the tenant; a small batch waits for the tick.
func TestStatsFullBatchFlushedEarly(t *testing.T) {
	for name, newClient := range statsClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tenant := fmt.Sprintf("tn_full_%s_%d", name, time.Now().UnixNano()%1e9)
			s, rdb := statsStore(t, newClient, time.Hour) // no tick in this test
			stored := func() int64 {
				n, _ := rdb.HGet(ctx, keyspace.TenantOf(tenant).Stats(), "n").Int64()
				return n
			}
			learn := func(from, to int) {
				for i := from; i < to; i++ {
					user := fmt.Sprintf("u%d", i)
					values := map[string]string{}
					for _, l := range []string{"ip.addr", "ip.net", "ip.block", "ua.full", "dev.id", "ip.cc"} {
						values[l] = fmt.Sprintf("%s-%d", l, i)
					}
					if _, err := s.SaveLogin(ctx, engine.UserRef{Tenant: tenant, User: user}, statsLogin(tenant, user, values)); err != nil {
						t.Fatal(err)
					}
				}
			}
			learn(0, 20) // 20 × 6 increments plus tallies: waits for the tick
			time.Sleep(300 * time.Millisecond)
			if n := stored(); n != 0 {
				t.Fatalf("a small batch was flushed before its tick (n = %d)", n)
			}
			learn(20, 600) // past the bound
			deadline := time.Now().Add(5 * time.Second)
			for stored() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("a full batch still waits for its tick")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
