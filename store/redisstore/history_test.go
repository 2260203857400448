package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// A user's history used to be one hash per level beside the meta hash; it
// now lives in the meta hash itself. A history of before is read where it
// is, folded into the meta hash at the user's first write (learning or
// unlearning) and keeps its counts, new-value counts and eviction order.
func TestHistoryOfBefore(t *testing.T) {
	for name, newClient := range statsClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx, s, rdb, u, us, now := oldTimer(t, name, newClient)
			tenant := u.Tenant
			at := func(daysAgo int) string { return strconv.FormatInt(now.AddDate(0, 0, -daysAgo).Unix(), 10) }

			// Three learnt logins as the store of before kept them.
			must(t, rdb.HSet(ctx, us.Meta(), "n", 3, "nv:ip.addr", 2, "d", "0").Err()) // ua.os: a level an older store did not count new values of
			must(t, rdb.HSet(ctx, us.History("ip.addr"), "a1", "2:"+at(1), "a2", "1:"+at(9)).Err())
			must(t, rdb.HSet(ctx, us.History("ua.os"), "o1", "3:"+at(1)).Err())
			// The third login's record, learnt, kept for feedback.
			third := statsLogin(tenant, u.User, map[string]string{"ip.addr": "a1", "ua.os": "o1"})
			must(t, rdb.HSet(ctx, us.Login(third.Record.ID), "rec", "{}", "learned", "1").Err())

			q := []engine.LevelValue{{Level: "ip.addr", Hash: "a1"}, {Level: "ip.addr", Hash: "a3"}, {Level: "ua.os", Hash: "o1"}, {Level: "dev.id", Hash: "d1"}}
			read := func(step string, n int64, want ...[2]int64) {
				t.Helper()
				st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: q, Now: now, Window: time.Hour})
				must(t, err)
				if st.UserLogins != n {
					t.Errorf("%s: %d logins, want %d", step, st.UserLogins, n)
				}
				for i, w := range want {
					if got := st.Levels[i]; got.UserCount != w[0] || got.UserDistinct != w[1] {
						t.Errorf("%s: %s %s count %d distinct %d, want %d and %d", step, q[i].Level, q[i].Hash, got.UserCount, got.UserDistinct, w[0], w[1])
					}
				}
			}
			read("before", 3, [2]int64{2, 2}, [2]int64{0, 2}, [2]int64{3, 1}, [2]int64{0, 0})

			// A new address into a level of two (size 2): the least recently
			// seen one of before (a2) goes, and the old hashes are gone.
			w := statsLogin(tenant, u.User, map[string]string{"ip.addr": "a3", "ua.os": "o1", "dev.id": "d1"})
			w.LearnOpt.HistorySize = 2
			_, err := s.SaveLogin(ctx, u, w)
			must(t, err)
			q[0].Hash = "a2"
			read("after a learnt login", 4, [2]int64{0, 3}, [2]int64{1, 3}, [2]int64{4, 1}, [2]int64{1, 1})
			for _, l := range []string{"ip.addr", "ua.os"} {
				if n, _ := rdb.Exists(ctx, us.History(l)).Result(); n != 0 {
					t.Errorf("the %s hash of before is still there", l)
				}
			}
			q[0].Hash = "a1"
			read("a1 kept", 4, [2]int64{2, 3})

			// Fraud on that login takes it back out: its new values go,
			// with their new-value counts.
			saved, err := s.Feedback(ctx, u, engine.FeedbackWrite{Record: w.Record, Verdict: engine.VerdictFraud, Commit: engine.Commit{Version: -1, Now: now}})
			must(t, err)
			if !saved.Changed {
				t.Fatal("the fraud verdict unlearnt nothing")
			}
			read("after fraud", 3, [2]int64{2, 2}, [2]int64{0, 2}, [2]int64{3, 1}, [2]int64{0, 0})
		})
	}
}

// Unlearning is also a first write: fraud on a login learnt before the
// upgrade folds the history of before in and takes the login out of it.
func TestHistoryOfBeforeUnlearnt(t *testing.T) {
	for name, newClient := range statsClients(t) {
		t.Run(name, func(t *testing.T) {
			ctx, s, rdb, u, us, now := oldTimer(t, name, newClient)
			tenant := u.Tenant
			ts := strconv.FormatInt(now.Unix(), 10)
			w := statsLogin(tenant, u.User, map[string]string{"ip.addr": "a2"})
			// The login left its place as the user's last, in the JSON the
			// store wrote then.
			w.Record.Place = &engine.Place{At: now.UTC(), Country: "NZ", Lat: -36.85, Lon: 174.76, HasLoc: true}
			last, _ := json.Marshal(w.Record.Place)
			must(t, rdb.HSet(ctx, us.Meta(), "n", 2, "nv:ip.addr", 2, "d", "0", "last", last).Err())
			must(t, rdb.HSet(ctx, us.History("ip.addr"), "a1", "1:"+ts, "a2", "1:"+ts).Err())
			must(t, rdb.HSet(ctx, us.Login(w.Record.ID), "rec", "{}", "learned", "1").Err())

			if _, err := s.Feedback(ctx, u, engine.FeedbackWrite{Record: w.Record, Verdict: engine.VerdictFraud, Commit: engine.Commit{Version: -1, Now: now}}); err != nil {
				t.Fatal(err)
			}
			st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: []engine.LevelValue{{Level: "ip.addr", Hash: "a1"}, {Level: "ip.addr", Hash: "a2"}}, Now: now, Window: time.Hour})
			must(t, err)
			if st.UserLogins != 1 || st.Levels[0].UserCount != 1 || st.Levels[1].UserCount != 0 || st.Levels[0].UserDistinct != 1 {
				t.Errorf("after fraud: %d logins, a1 %+v, a2 %+v; want 1 login, a1 once, a2 gone, 1 distinct", st.UserLogins, st.Levels[0], st.Levels[1])
			}
			if n, _ := rdb.Exists(ctx, us.History("ip.addr")).Result(); n != 0 {
				t.Error("the ip.addr hash of before is still there")
			}
			if st.Last != nil {
				t.Errorf("the fraudulent login's place is still the user's last: %+v", st.Last)
			}
		})
	}
}

// oldTimer is a store on a kind of Redis and a user of a fresh tenant,
// whose history the test writes as the store of before kept it.
func oldTimer(t *testing.T, name string, newClient func(t *testing.T) redis.UniversalClient) (context.Context, *redisstore.Store, redis.UniversalClient, engine.UserRef, keyspace.User, time.Time) {
	s, rdb := statsStore(t, newClient, time.Hour)
	now := time.Now()
	u := engine.UserRef{Tenant: fmt.Sprintf("tn_hist_%s_%d", name, now.UnixNano()%1e9), User: "old-timer"}
	return context.Background(), s, rdb, u, keyspace.UserOf(u.Tenant, u.User), now
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
}

// A user's history keeps Redis' compact encoding (listpack) with a
// located last place: every value stays within the 64 bytes that encoding
// allows, the last place included.
func TestHistoryCompact(t *testing.T) {
	ctx, s, rdb, u, us, now := oldTimer(t, "single", statsClients(t)["single"])
	for i := range 12 {
		w := statsLogin(u.Tenant, u.User, map[string]string{"ip.addr": fmt.Sprintf("a%d", i), "ip.net": fmt.Sprintf("n%d", i%3), "ua.full": "f", "dev.id": "d"})
		w.Record.At = now.Add(time.Duration(i) * time.Minute)
		w.Record.Place = &engine.Place{At: w.Record.At, Country: "NZ", Lat: -36.848461, Lon: 174.763336, HasLoc: true}
		_, err := s.SaveLogin(ctx, u, w)
		must(t, err)
	}
	if enc, err := rdb.ObjectEncoding(ctx, us.Meta()).Result(); err != nil || enc != "listpack" {
		t.Fatalf("the history hash is encoded %q (%v), want listpack", enc, err)
	}
	st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Now: now, Window: time.Hour})
	must(t, err)
	if st.Last == nil || !st.Last.HasLoc || st.Last.Country != "NZ" || st.Last.Lat != -36.8485 {
		t.Fatalf("last place read as %+v", st.Last)
	}
}
