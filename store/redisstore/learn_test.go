package redisstore_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// learnUser is a user of a fresh tenant whose logins a test learns.
type learnUser struct {
	t   *testing.T
	s   *redisstore.Store
	rdb redis.UniversalClient
	u   engine.UserRef
	now time.Time
}

func newLearnUser(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, tenant, user string, now time.Time) learnUser {
	return learnUser{t: t, s: s, rdb: rdb, u: engine.UserRef{Tenant: tenant, User: user}, now: now}
}

// login is an allowed login with one value per level, in this order:
// address, browser, device.
func (l learnUser) login(addr, browser, device string) engine.LoginWrite {
	rec := engine.LoginRecord{ID: fmt.Sprintf("lg_%s%024d", keyspace.Placement(l.u.Tenant, l.u.User), l.now.UnixNano()%1e18),
		Tenant: l.u.Tenant, User: l.u.User, At: l.now, Decision: engine.DecisionAllow,
		Levels: []engine.LevelValue{{Level: "ip.addr", Hash: addr, Bucket: addr}, {Level: "ua.browser", Hash: browser, Bucket: browser},
			{Level: "dev.id", Hash: device, Bucket: device}}}
	return engine.LoginWrite{Record: rec, RecordTTL: time.Hour, Learn: true, LearnOpt: engine.LearnOptions{HistorySize: 2, HistoryTTL: time.Hour}}
}

// read is the evaluation's read of w's levels.
func (l learnUser) read(w engine.LoginWrite) engine.LoginState {
	l.t.Helper()
	st, err := l.s.LoadLogin(context.Background(), l.u, engine.LoginQuery{Levels: w.Record.Levels, Now: l.now, Window: time.Hour})
	must(l.t, err)
	return st
}

func (l learnUser) save(w engine.LoginWrite) {
	l.t.Helper()
	_, err := l.s.SaveLogin(context.Background(), l.u, w)
	must(l.t, err)
}

// history is the user's history hash without its version.
func (l learnUser) history() map[string]string {
	l.t.Helper()
	h, err := l.rdb.HGetAll(context.Background(), keyspace.UserOf(l.u.Tenant, l.u.User).Meta()).Result()
	must(l.t, err)
	delete(h, "w")
	return h
}

// An evaluated login is learnt from the counts its read saw, without
// reading the history again in the write, unless the history changed
// between the read and the write: then it is learnt from the history as
// it is. Either way the history is the one learning from scratch makes.
func TestLearnFromTheRead(t *testing.T) {
	logins := [][3]string{
		{"a1", "b1", "d1"}, {"a1", "b1", "d1"}, {"a2", "b1", "d1"}, // a new address
		{"a3", "b2", "d1"}, // a third address in a level of two: a1 or a2 goes
		{"a2", "b2", "d2"}, {"a2", "b2", "d2"}, {"a4", "b3", "d3"},
	}
	onEachStore(t, "learn", func(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, tenant string) {
		now := time.Now().Truncate(time.Second)
		seen := newLearnUser(t, s, rdb, tenant, "seen", now)
		fresh := newLearnUser(t, s, rdb, tenant, "fresh", now)
		for i, v := range logins {
			seen.now = now.Add(time.Duration(i) * time.Second)
			fresh.now = seen.now
			w := seen.login(v[0], v[1], v[2])
			st := seen.read(w)
			w.Seen = &st
			seen.save(w)
			fresh.save(fresh.login(v[0], v[1], v[2])) // no read: learnt from the history as it is
			if got, want := seen.history(), fresh.history(); !maps.Equal(got, want) {
				t.Fatalf("login %d %v: history learnt from the read\n%v\nwant\n%v", i, v, got, want)
			}
		}
		if h := seen.history(); h["len:ip.addr"] != "2" || h["nv:ip.addr"] != "4" || h["n"] != fmt.Sprint(len(logins)) {
			t.Errorf("history %v: want 2 addresses held of 4 seen and %d logins", h, len(logins))
		}

		// A read made stale by another login of his learnt in between
		// (its own read and write done first): the stale write learns
		// from the history as it is, so neither login is lost.
		stale := seen.login("a4", "b3", "d3")
		st := seen.read(stale)
		other := seen.login("a4", "b3", "d3")
		ost := seen.read(other)
		other.Seen = &ost
		seen.save(other)
		stale.Seen = &st
		seen.save(stale)
		fresh.save(fresh.login("a4", "b3", "d3"))
		fresh.save(fresh.login("a4", "b3", "d3"))
		if got, want := seen.history(), fresh.history(); !maps.Equal(got, want) {
			t.Fatalf("after a stale read: history\n%v\nwant\n%v", got, want)
		}
		if c := seen.history()["ip.addr:a4"]; !strings.HasPrefix(c, "3:") {
			t.Errorf("a4 counted %q after three logins from it", c)
		}

		// The write trusts an unchanged history's read: a read that
		// claims other counts is what gets written (which is how this
		// test knows the write did not read the history again).
		w := seen.login("a4", "b3", "d3")
		st = seen.read(w)
		st.Levels[0].UserCount = 40
		w.Seen = &st
		seen.save(w)
		if c := seen.history()["ip.addr:a4"]; !strings.HasPrefix(c, "41:") {
			t.Errorf("a4 counted %q, want the read's 40 and this login", c)
		}
	})
}

// A fraud verdict between a login's read and its write changes the
// history, so the write learns from the history as the verdict left it.
func TestLearnAfterAnUnlearn(t *testing.T) {
	onEachStore(t, "unlearn", func(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, tenant string) {
		ctx := context.Background()
		now := time.Now().Truncate(time.Second)
		l := newLearnUser(t, s, rdb, tenant, "victim", now)
		l.save(l.login("a1", "b1", "d1"))
		l.now = now.Add(time.Second)
		bad := l.login("a2", "b1", "d2")
		l.save(bad)

		l.now = now.Add(2 * time.Second)
		w := l.login("a2", "b1", "d1")
		st := l.read(w) // sees a2 once
		_, err := s.Feedback(ctx, l.u, engine.FeedbackWrite{Record: bad.Record, Verdict: engine.VerdictFraud, Commit: engine.Commit{Version: -1, Now: l.now}})
		must(t, err)
		w.Seen = &st
		l.save(w)
		h := l.history()
		if !strings.HasPrefix(h["ip.addr:a2"], "1:") || h["nv:ip.addr"] != "2" || h["len:ip.addr"] != "2" || h["n"] != "2" {
			t.Errorf("history %v: want a2 once (the fraud taken out, this login in), 2 addresses, 2 logins", h)
		}
		if _, ok := h["dev.id:d2"]; ok {
			t.Errorf("history %v still holds the fraudulent login's device", h)
		}
	})
}
