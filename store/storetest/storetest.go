package storetest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

// Run runs the suite against the store newStore returns; each subtest gets
// a fresh tenant name so stores may be shared.
func Run(t *testing.T, newStore func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s engine.Store, tenant string)
	}{
		{"tenants and keys", testTenantsKeys},
		{"commit compare-and-set", testCommitCAS},
		{"commit is atomic with its challenge", testCommitChallenge},
		{"attempts are counted and lock", testAttempts},
		{"attempts across challenges stop at the user's budget", testAttemptBudget},
		{"concurrent attempts never overspend the budget", testAttemptBudgetConcurrent},
		{"concurrent commits on one challenge: one wins", testConcurrentVerify},
		{"login history is bounded and learned once", testHistory},
		{"per-level counts come back one per queried level", testLevelCounts},
		{"a login's record, grace, learning and commit are one write", testLoginWriteAtomic},
		{"a commit learns its verified login once, and nothing when it fails", testCommitLearn},
		{"a verdict unlearns or learns its login once, and reports its network", testFeedback},
		{"failures are windowed", testFailures},
		{"erase removes everything", testErase},
		{"events are paged newest first", testEvents},
		{"tokens are single use", testTokens},
		{"rekey respects cooldown and cap", testRekey},
		{"rate limits refuse past the limit and say when", testLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s, fmt.Sprintf("tn_%s_%d", t.Name()[len(t.Name())-4:], time.Now().UnixNano()%1e9))
		})
	}
}

var ctx = context.Background()

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testTenantsKeys(t *testing.T, s engine.Store, tenant string) {
	must(t, s.PutTenant(ctx, engine.Tenant{ID: tenant, Name: "n", CreatedAt: t0}))
	got, ok, err := s.Tenant(ctx, tenant)
	must(t, err)
	if !ok || got.Name != "n" {
		t.Fatalf("tenant = %+v, %v", got, ok)
	}
	k := engine.Key{ID: "key_" + tenant, Tenant: tenant, Kind: engine.KeyApp, CreatedAt: t0}
	must(t, s.PutKey(ctx, k, "hash-"+tenant))
	if got, ok, _ := s.KeyByHash(ctx, "hash-"+tenant); !ok || got.ID != k.ID {
		t.Fatalf("key by hash = %+v %v", got, ok)
	}
	if ok, _ := s.DeleteKey(ctx, "other-tenant", k.ID); ok {
		t.Fatal("a key was deleted through another tenant")
	}
	if ok, _ := s.DeleteKey(ctx, tenant, k.ID); !ok {
		t.Fatal("delete failed")
	}
	if _, ok, _ := s.KeyByHash(ctx, "hash-"+tenant); ok {
		t.Fatal("deleted key still found")
	}
}

func account(email string) *engine.Account {
	return &engine.Account{Exists: true, Profile: engine.Profile{Email: email}, CreatedAt: t0}
}

func testCommitCAS(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "alice:with:colons"}
	a, err := s.Account(ctx, u)
	must(t, err)
	if a.Exists || a.Version != 0 {
		t.Fatalf("new account = %+v", a)
	}
	must(t, s.Commit(ctx, u, engine.Commit{Version: 0, Account: account("a@x"), Now: t0}))
	if err := s.Commit(ctx, u, engine.Commit{Version: 0, Account: account("b@x"), Now: t0}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale commit: %v, want conflict", err)
	}
	a, _ = s.Account(ctx, u)
	if a.Profile.Email != "a@x" || a.Version != 1 {
		t.Fatalf("account = %+v", a)
	}
	// A user whose id is another's prefix must not collide.
	b, _ := s.Account(ctx, engine.UserRef{Tenant: tenant, User: "alice"})
	if b.Exists {
		t.Fatal("keys of two users collide")
	}
	var users []string
	must(t, s.Users(ctx, tenant, func(u string) error { users = append(users, u); return nil }))
	if len(users) != 1 || users[0] != u.User {
		t.Fatalf("users = %v", users)
	}
}

func challenge(u engine.UserRef, id string) engine.Challenge {
	return engine.Challenge{ID: id, Tenant: u.Tenant, User: u.User, Purpose: engine.PurposeLogin, Channel: engine.ChannelSMS,
		CodeHash: "h", Status: engine.StatusPending, CreatedAt: t0, ExpiresAt: time.Now().Add(time.Minute), MaxAttempts: 3}
}

// id builds a challenge or login id of the user, as the engine does:
// prefix, the store's placement of the user, 24 base32 letters.
func id(s engine.Store, prefix string, u engine.UserRef, n int) string {
	// The user is part of the id: tests share a server, and two users of
	// one shard must not share a record.
	h := fnv.New32a()
	h.Write([]byte(u.Tenant + "\x00" + u.User))
	n += int(h.Sum32()%1_000_000) * 1000
	tail := []byte("aaaaaaaaaaaaaaaaaaaaaaaa")
	for i := len(tail) - 1; n > 0; i-- {
		tail[i] = byte('a' + n%26)
		n /= 26
	}
	return prefix + s.Placement(u) + string(tail)
}

func chID(s engine.Store, u engine.UserRef, n int) string { return id(s, "ch_", u, n) }

func testCommitChallenge(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "bob"}
	id := chID(s, u, 1)
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{challenge(u, id)}, Now: time.Now(),
		Jobs: []engine.Job{{Kind: "sms", Challenge: id, Payload: []byte("sealed")}}}))
	// A commit guarded by the challenge whose account CAS fails changes nothing.
	err := s.Commit(ctx, u, engine.Commit{Version: 7, Account: account("x@x"), Challenge: id, ChallengeStatus: engine.StatusVerified, Now: time.Now()})
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	c, ok, _ := s.Challenge(ctx, tenant, id)
	if !ok || c.Status != engine.StatusPending {
		t.Fatalf("challenge after failed commit = %+v", c)
	}
	must(t, s.Commit(ctx, u, engine.Commit{Version: 0, Account: account("x@x"), Challenge: id, ChallengeStatus: engine.StatusVerified, Now: time.Now()}))
	err = s.Commit(ctx, u, engine.Commit{Version: 1, Account: account("y@x"), Challenge: id, ChallengeStatus: engine.StatusVerified, Now: time.Now()})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Code != "challenge_used" {
		t.Fatalf("second verification: %v", err)
	}
	if _, ok, _ := s.Challenge(ctx, "another-tenant", id); ok {
		t.Fatal("a challenge is visible to another tenant")
	}
}

func testAttempts(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "carol"}
	id := chID(s, u, 2)
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{challenge(u, id)}, Now: time.Now()}))
	if _, err := s.AttemptChallenge(ctx, "another-tenant", id, time.Now(), engine.AttemptBudget{}); !errors.Is(err, engine.ErrChallengeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	for i := 1; i <= 3; i++ {
		c, err := s.AttemptChallenge(ctx, tenant, id, time.Now(), engine.AttemptBudget{})
		must(t, err)
		if c.Attempts != i {
			t.Fatalf("attempt %d counted as %d", i, c.Attempts)
		}
	}
	_, err := s.AttemptChallenge(ctx, tenant, id, time.Now(), engine.AttemptBudget{})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Code != "too_many_attempts" {
		t.Fatalf("fourth attempt: %v", err)
	}
	// Expiry.
	id2 := chID(s, u, 3)
	c := challenge(u, id2)
	c.ExpiresAt = time.Now().Add(-time.Second)
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{c}, Now: time.Now()}))
	if _, err := s.AttemptChallenge(ctx, tenant, id2, time.Now(), engine.AttemptBudget{}); !errors.As(err, &ee) || ee.Code != "challenge_expired" {
		t.Fatalf("expired: %v", err)
	}
}

func testConcurrentVerify(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "dave"}
	id := chID(s, u, 4)
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{challenge(u, id)}, Now: time.Now()}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Commit(ctx, u, engine.Commit{Version: -1, Challenge: id, ChallengeStatus: engine.StatusVerified, Now: time.Now()}) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d commits won, want exactly 1", wins)
	}
}

func record(u engine.UserRef, id string, at time.Time, vals ...string) engine.LoginRecord {
	rec := engine.LoginRecord{ID: id, Tenant: u.Tenant, User: u.User, At: at}
	for _, v := range vals {
		rec.Levels = append(rec.Levels, engine.LevelValue{Level: "ip.addr", Hash: v, Bucket: v})
	}
	return rec
}

func lgID(s engine.Store, u engine.UserRef, n int) string { return id(s, "lg_", u, n) }

// load reads the login state of u for the levels of rec.
func load(t *testing.T, s engine.Store, u engine.UserRef, rec engine.LoginRecord) engine.LoginState {
	t.Helper()
	st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: rec.Levels, Now: time.Now(), Window: time.Hour})
	must(t, err)
	if len(st.Levels) != len(rec.Levels) {
		t.Fatalf("%d level counts for %d levels", len(st.Levels), len(rec.Levels))
	}
	return st
}

func testHistory(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "erin"}
	opt := engine.LearnOptions{HistorySize: 3, HistoryTTL: time.Hour}
	for i, v := range []string{"a", "b", "c", "a", "d"} {
		rec := record(u, lgID(s, u, i), t0.Add(time.Duration(i)*time.Minute), v)
		rec.First = i == 0
		_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: time.Minute, Learn: true, LearnOpt: opt})
		must(t, err)
	}
	st := load(t, s, u, record(u, "", t0, "a", "b", "d"))
	if st.UserLogins != 5 {
		t.Fatalf("n_u = %d", st.UserLogins)
	}
	// Size 3: "b" (least recently seen when "d" arrived) was evicted, "a" kept with 2.
	if st.Levels[0].UserCount != 2 || st.Levels[1].UserCount != 0 || st.Levels[2].UserCount != 1 {
		t.Fatalf("user counts = %+v", st.Levels)
	}
	if st.TenantLogins != 5 || st.TenantUsers != 1 || st.Levels[0].TenantCount != 2 {
		t.Fatalf("tenant = N %d U %d counts %+v", st.TenantLogins, st.TenantUsers, st.Levels)
	}
	if m := st.Levels[0].TenantDistinct; m != 4 {
		t.Fatalf("distinct values M = %d, want 4 (a, b, c, d)", m)
	}
	// A login saved without learning, then learned twice, counts once.
	rec := record(u, lgID(s, u, 9), t0.Add(time.Hour), "z")
	_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: time.Minute, LearnOpt: opt})
	must(t, err)
	if st := load(t, s, u, rec); st.Levels[0].UserCount != 0 || st.UserLogins != 5 {
		t.Fatalf("an unlearned login taught the history: %+v", st)
	}
	got, ok, err := s.Login(ctx, rec.ID)
	must(t, err)
	if !ok || got.ID != rec.ID || len(got.Levels) != 1 || got.Levels[0] != rec.Levels[0] {
		t.Fatalf("login record = %+v, %v; want %+v", got, ok, rec)
	}
	must(t, learn(s, u, got, opt))
	must(t, learn(s, u, got, opt))
	if st := load(t, s, u, rec); st.Levels[0].UserCount != 1 || st.UserLogins != 6 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("learned twice or not at all: %+v n %d", st.Levels[0], st.UserLogins)
	}
}

// testLevelCounts: each queried level comes back as its own count, in the
// query's order, whatever the level.
func testLevelCounts(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "lev"}
	other := engine.UserRef{Tenant: tenant, User: "lev2"}
	opt := engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}
	levels := func(ip, browser, country string) []engine.LevelValue {
		return []engine.LevelValue{{Level: "ip.addr", Hash: ip, Bucket: "b" + ip},
			{Level: "ua.browser", Hash: browser, Bucket: "b" + browser}, {Level: "geo.country", Hash: country, Bucket: "b" + country}}
	}
	learn := func(u engine.UserRef, n int, first bool, l []engine.LevelValue) {
		rec := engine.LoginRecord{ID: lgID(s, u, n), Tenant: tenant, User: u.User, At: t0, Decision: engine.DecisionAllow, First: first, Levels: l}
		_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, Learn: true, LearnOpt: opt})
		must(t, err)
	}
	learn(u, 1, true, levels("i1", "firefox", "au"))
	learn(u, 2, false, levels("i2", "firefox", "au"))
	learn(other, 3, true, levels("i3", "chrome", "au"))
	q := levels("i1", "chrome", "au")
	st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: q, Now: time.Now(), Window: time.Hour})
	must(t, err)
	want := []engine.LevelCount{
		{Level: "ip.addr", UserCount: 1, UserDistinct: 2, TenantCount: 1, TenantDistinct: 3},
		{Level: "ua.browser", UserCount: 0, UserDistinct: 1, TenantCount: 1, TenantDistinct: 2},
		{Level: "geo.country", UserCount: 2, UserDistinct: 1, TenantCount: 3, TenantDistinct: 1},
	}
	if fmt.Sprint(st.Levels) != fmt.Sprint(want) {
		t.Fatalf("levels = %+v, want %+v", st.Levels, want)
	}
	// UserDistinct counts every value that was new when learned, beyond
	// the history's bound (HistorySize 5): the missing mass's numerator.
	v := engine.UserRef{Tenant: tenant, User: "lev3"}
	for i := range 7 {
		learn(v, 10+i, i == 0, levels(fmt.Sprintf("j%d", i), "firefox", "au"))
	}
	if st, _ := s.LoadLogin(ctx, v, engine.LoginQuery{Levels: q, Now: time.Now(), Window: time.Hour}); st.Levels[0].UserDistinct != 7 || st.Levels[1].UserDistinct != 1 {
		t.Fatalf("after 7 addresses with a history of 5: %+v", st.Levels)
	}
	if st.UserLogins != 2 || st.TenantLogins != 3 || st.TenantUsers != 2 {
		t.Fatalf("n_u %d N %d U %d", st.UserLogins, st.TenantLogins, st.TenantUsers)
	}
	if st, _ := s.LoadLogin(ctx, u, engine.LoginQuery{Now: time.Now(), Window: time.Hour}); len(st.Levels) != 0 || st.UserLogins != 2 {
		t.Fatalf("no levels queried: %+v", st)
	}
}

// testLoginWriteAtomic: an evaluation's record, grace login, learning and
// commit are one write; when the commit fails none of them is written.
func testLoginWriteAtomic(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "atom"}
	must(t, s.Commit(ctx, u, engine.Commit{Version: 0, Account: account("a@x"), Now: t0}))
	opt := engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}
	write := func(n, version int) (engine.LoginWrite, string) {
		rec := record(u, lgID(s, u, n), time.Now(), "v")
		rec.Decision, rec.First = engine.DecisionChallenge, n == 1
		ch := chID(s, u, n)
		return engine.LoginWrite{Record: rec, RecordTTL: time.Minute, Learn: true, LearnOpt: opt, GraceEpoch: "e1", CountBlocked: true,
			Commit: &engine.Commit{Version: int64(version), NewChallenges: []engine.Challenge{challenge(u, ch)}, Now: time.Now(),
				Events: []engine.Event{{Tenant: tenant, User: u.User, Type: "login_challenged", At: t0}}}}, ch
	}
	w, ch := write(1, 7)
	if _, err := s.SaveLogin(ctx, u, w); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("save with a stale commit: %v, want conflict", err)
	}
	if _, ok, _ := s.Login(ctx, w.Record.ID); ok {
		t.Fatal("a failed commit left its login record")
	}
	if _, ok, _ := s.Challenge(ctx, tenant, ch); ok {
		t.Fatal("a failed commit left its challenge")
	}
	st := load(t, s, u, w.Record)
	if st.GraceEpoch != "" || st.UserLogins != 0 || st.Levels[0].UserCount != 0 {
		t.Fatalf("a failed commit counted a grace login or taught the history: %+v", st)
	}
	if evs, _, _ := s.Events(ctx, tenant, engine.EventQuery{User: u.User}); len(evs) != 0 {
		t.Fatalf("a failed commit wrote events: %+v", evs)
	}
	w, ch = write(2, 1)
	if _, err := s.SaveLogin(ctx, u, w); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Login(ctx, w.Record.ID)
	must(t, err)
	if !ok || got.Decision != engine.DecisionChallenge || got.Levels[0] != w.Record.Levels[0] {
		t.Fatalf("login record = %+v %v", got, ok)
	}
	if c, ok, _ := s.Challenge(ctx, tenant, ch); !ok || c.Status != engine.StatusPending {
		t.Fatalf("challenge = %+v %v", c, ok)
	}
	st = load(t, s, u, w.Record)
	if st.GraceEpoch != "e1" || st.GraceUsed != 1 || st.UserLogins != 1 || st.Levels[0].UserCount != 1 {
		t.Fatalf("state after the write = %+v", st)
	}
	// The login was learned with its write: learning it again is a no-op.
	// (The tenant's side is counted only after the user's write succeeded:
	// the failed write's login is not in the tenant's counts.)
	must(t, learn(s, u, got, opt))
	if st := load(t, s, u, w.Record); st.UserLogins != 1 || st.Levels[0].UserCount != 1 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("a learned login was learned again: %+v", st)
	}
}

// testCommitLearn: a verification's commit may teach the history its login,
// atomically, once per login, and nothing when it fails.
func testCommitLearn(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "verified"}
	opt := engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}
	rec := record(u, lgID(s, u, 1), time.Now(), "v")
	rec.Decision, rec.First = engine.DecisionChallenge, true
	ch := chID(s, u, 1)
	c := challenge(u, ch)
	c.LoginID = rec.ID
	_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: time.Minute, LearnOpt: opt,
		Commit: &engine.Commit{Version: -1, NewChallenges: []engine.Challenge{c}, Now: time.Now()}})
	must(t, err)
	got, ok, err := s.Login(ctx, rec.ID)
	must(t, err)
	if !ok {
		t.Fatal("login record not kept")
	}
	verify := func(version int64) error {
		return s.Commit(ctx, u, engine.Commit{Version: version, Account: account("v@x"), Challenge: ch, ChallengeStatus: engine.StatusVerified,
			Now: time.Now(), Learn: &got, LearnOpt: opt})
	}
	if err := verify(7); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale verification: %v, want conflict", err)
	}
	if st := load(t, s, u, rec); st.UserLogins != 0 || st.Levels[0].UserCount != 0 || st.TenantLogins != 0 || st.Levels[0].TenantCount != 0 {
		t.Fatalf("a failed commit learned its login: %+v", st)
	}
	must(t, verify(0))
	st := load(t, s, u, rec)
	if st.UserLogins != 1 || st.Levels[0].UserCount != 1 || st.TenantLogins != 1 || st.TenantUsers != 1 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("the verified login was not learned once: %+v", st)
	}
	// Learning it again (another commit, or Learn) changes nothing.
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, Now: time.Now(), Learn: &got, LearnOpt: opt}))
	must(t, learn(s, u, got, opt))
	if st := load(t, s, u, rec); st.UserLogins != 1 || st.Levels[0].UserCount != 1 || st.TenantLogins != 1 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("learned twice: %+v", st)
	}
	// A login whose record is gone teaches nothing, and the commit holds.
	gone := record(u, lgID(s, u, 2), time.Now(), "w")
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, Now: time.Now(), Learn: &gone, LearnOpt: opt,
		Events: []engine.Event{{Tenant: tenant, User: u.User, Type: "x", At: t0}}}))
	if st := load(t, s, u, gone); st.UserLogins != 1 || st.Levels[0].UserCount != 0 || st.Levels[0].TenantCount != 0 {
		t.Fatalf("a login without its record was learned: %+v", st)
	}
	if evs, _, _ := s.Events(ctx, tenant, engine.EventQuery{User: u.User}); len(evs) != 1 {
		t.Fatalf("events = %+v, want the commit's one", evs)
	}
}

func testFailures(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "fred"}
	now := time.Now()
	for i := range 3 {
		must(t, s.RecordFailure(ctx, u, engine.Failure{Kind: "password", IPHash: "ip1", UserHash: "fred-hash", At: now.Add(time.Duration(i) * time.Millisecond), Window: time.Hour}))
	}
	must(t, s.RecordFailure(ctx, engine.UserRef{Tenant: tenant, User: "gina"}, engine.Failure{Kind: "password", IPHash: "ip1", UserHash: "gina-hash", At: now, Window: time.Hour}))
	must(t, s.RecordFailure(ctx, u, engine.Failure{Kind: "challenge", At: now, Window: time.Hour}))
	st, err := s.LoadLogin(ctx, u, engine.LoginQuery{IPHash: "ip1", Now: now.Add(time.Second), Window: time.Hour})
	must(t, err)
	if st.FailedPwUser != 3 || st.FailedIPUsers != 2 || st.FailedChUser != 1 {
		t.Fatalf("failures = user %d ip-users %d challenges %d", st.FailedPwUser, st.FailedIPUsers, st.FailedChUser)
	}
	st, _ = s.LoadLogin(ctx, u, engine.LoginQuery{IPHash: "ip1", Now: now.Add(2 * time.Hour), Window: time.Hour})
	if st.FailedPwUser != 0 {
		t.Fatalf("failures outside the window counted: %d", st.FailedPwUser)
	}
}

func testErase(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "hank"}
	must(t, s.Commit(ctx, u, engine.Commit{Version: 0, Account: account("h@x"), Now: t0}))
	rec := record(u, lgID(s, u, 1), time.Now(), "a") // kept a minute from now
	rec.First = true
	_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: time.Minute, Learn: true,
		LearnOpt: engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}})
	must(t, err)
	// A challenge opened after the caller listed the open ones makes the
	// erasure a conflict: an erasure must close every open challenge.
	late := chID(s, u, 2)
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{challenge(u, late)}, Now: time.Now()}))
	erase := engine.Commit{Version: -1, Erase: true, Now: time.Now(), Events: []engine.Event{{Tenant: tenant, User: u.User, Type: "user_erased", At: t0}}}
	if err := s.Commit(ctx, u, erase); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("erasure not naming an open challenge: %v, want conflict", err)
	}
	erase.CancelChallenges = []string{late}
	// The kept login record must be named too: an erasure leaves none.
	if err := s.Commit(ctx, u, erase); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("erasure not naming a kept login: %v, want conflict", err)
	}
	kept, err := s.KeptLogins(ctx, u, time.Now())
	must(t, err)
	if len(kept) != 1 || kept[0] != rec.ID {
		t.Fatalf("kept logins = %v, want [%s]", kept, rec.ID)
	}
	erase.EraseLogins = kept
	must(t, s.Commit(ctx, u, erase))
	if c, ok, _ := s.Challenge(ctx, tenant, late); ok {
		t.Fatalf("a challenge outlived the erasure: %+v", c)
	}
	if _, ok, _ := s.Login(ctx, rec.ID); ok {
		t.Fatal("a login record outlived the erasure")
	}
	a, _ := s.Account(ctx, u)
	st := load(t, s, u, rec)
	if a.Exists || st.UserLogins != 0 || st.Levels[0].UserCount != 0 {
		t.Fatalf("erased user still has data: %+v %+v", a, st)
	}
	evs, _, err := s.Events(ctx, tenant, engine.EventQuery{User: u.User})
	must(t, err)
	if len(evs) != 1 || evs[0].Type != "user_erased" {
		t.Fatalf("events = %+v", evs)
	}
}

func testEvents(t *testing.T, s engine.Store, tenant string) {
	for i := range 25 {
		u := engine.UserRef{Tenant: tenant, User: fmt.Sprintf("user-%d", i)}
		typ := message.EventType("a")
		if i%2 == 1 {
			typ = "b"
		}
		must(t, s.Commit(ctx, u, engine.Commit{Version: -1, Now: t0, Events: []engine.Event{{Tenant: tenant, User: u.User, Type: typ, At: t0.Add(time.Duration(i) * time.Second)}}}))
		time.Sleep(time.Millisecond) // stream ids are time ordered per shard
	}
	var all []engine.Event
	cursor := ""
	for {
		page, next, err := s.Events(ctx, tenant, engine.EventQuery{Limit: 10, Cursor: cursor})
		must(t, err)
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 25 {
		t.Fatalf("paged %d events, want 25", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].At.After(all[i-1].At) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	bs, _, _ := s.Events(ctx, tenant, engine.EventQuery{Type: "b", Limit: 100})
	if len(bs) != 12 {
		t.Fatalf("type filter: %d events, want 12", len(bs))
	}
	if got, _, _ := s.Events(ctx, "another-tenant", engine.EventQuery{}); len(got) != 0 {
		t.Fatal("events leak across tenants")
	}
}

func testTokens(t *testing.T, s engine.Store, tenant string) {
	first, err := s.UseToken(ctx, "tok-"+tenant, time.Minute)
	must(t, err)
	again, _ := s.UseToken(ctx, "tok-"+tenant, time.Minute)
	if !first || again {
		t.Fatalf("token use = %v then %v", first, again)
	}
}

func testRekey(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "ivy"}
	id := chID(s, u, 5)
	c := challenge(u, id)
	c.Sends, c.LastSentAt = 1, time.Now()
	must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{c}, Now: time.Now()}))
	job := engine.Job{Kind: "sms", Challenge: id, Payload: []byte("x")}
	var ee *engine.Error
	if err := s.Rekey(ctx, tenant, id, "h2", time.Now(), 10*time.Second, 2, job); !errors.As(err, &ee) || ee.Code != "rate_limited" {
		t.Fatalf("resend inside cooldown: %v", err)
	}
	must(t, s.Rekey(ctx, tenant, id, "h2", time.Now().Add(11*time.Second), 10*time.Second, 2, job))
	got, _, _ := s.Challenge(ctx, tenant, id)
	if got.CodeHash != "h2" || got.Sends != 2 {
		t.Fatalf("after resend: %+v", got)
	}
	if err := s.Rekey(ctx, tenant, id, "h3", time.Now().Add(22*time.Second), 10*time.Second, 2, job); !errors.As(err, &ee) || ee.Code != "too_many_sends" {
		t.Fatalf("resend past the cap: %v", err)
	}
}

func testLimits(t *testing.T, s engine.Store, tenant string) {
	now := time.Now()
	user := engine.Limit{Scope: "u", Tenant: tenant, PerHour: 2, Name: "user"}
	ip := engine.Limit{Scope: "ip", Tenant: tenant, PerHour: 100, Name: "ip"}
	for i := range 2 {
		tripped, _, err := s.Allow(ctx, []engine.Limit{user, ip}, now)
		must(t, err)
		if tripped != "" {
			t.Fatalf("unit %d refused by %s", i+1, tripped)
		}
	}
	tripped, wait, err := s.Allow(ctx, []engine.Limit{ip, user}, now)
	must(t, err)
	if tripped != "user" || wait <= 0 || wait > time.Hour {
		t.Fatalf("third unit: tripped %q, wait %v; want user, within the hour", tripped, wait)
	}
	// After the wait a unit is free again.
	if tripped, _, _ := s.Allow(ctx, []engine.Limit{user}, now.Add(wait)); tripped != "" {
		t.Fatalf("still refused after the advertised wait %v", wait)
	}
}

// longChallenge is a challenge that outlives the budget's window.
func longChallenge(u engine.UserRef, id string, maxAttempts int) engine.Challenge {
	c := challenge(u, id)
	c.ExpiresAt, c.MaxAttempts = time.Now().Add(3*time.Hour), maxAttempts
	return c
}

func testAttemptBudget(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "erin"}
	other := engine.UserRef{Tenant: tenant, User: "frank"}
	ids := []string{chID(s, u, 11), chID(s, u, 12), chID(s, u, 13)}
	oid := chID(s, other, 14)
	for _, id := range ids {
		must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{longChallenge(u, id, 3)}, Now: time.Now()}))
	}
	must(t, s.Commit(ctx, other, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{longChallenge(other, oid, 3)}, Now: time.Now()}))
	b := engine.AttemptBudget{Max: 4, Window: time.Hour}
	now := time.Now()
	attempt := func(id string, at time.Time) (engine.Challenge, error) {
		return s.AttemptChallenge(ctx, tenant, id, at, b)
	}
	if _, err := s.AttemptChallenge(ctx, "another-tenant", ids[0], now, b); !errors.Is(err, engine.ErrChallengeNotFound) {
		t.Fatalf("other tenant: %v", err)
	}
	for i := 0; i < 3; i++ {
		_, err := attempt(ids[0], now.Add(time.Duration(i)*time.Minute))
		must(t, err)
	}
	c, err := attempt(ids[1], now.Add(3*time.Minute))
	must(t, err)
	if c.Attempts != 1 {
		t.Fatalf("second challenge's attempts = %d", c.Attempts)
	}
	// The budget is spent: every challenge of the user is refused, nothing is
	// counted, and the wait is until the oldest attempt leaves the window.
	for _, id := range ids[1:] {
		_, err := attempt(id, now.Add(10*time.Minute))
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Code != "too_many_attempts" || ee.Kind != engine.KindRateLimited {
			t.Fatalf("over budget: %v", err)
		}
		if ra := ee.Meta["retry_after"]; ra != 50*60 {
			t.Fatalf("retry_after = %v, want %d", ra, 50*60)
		}
	}
	if c, _, _ := s.Challenge(ctx, tenant, ids[1]); c.Attempts != 1 || c.Status != engine.StatusPending {
		t.Fatalf("a refused attempt changed the challenge: %+v", c)
	}
	// Another user's budget is their own.
	if _, err := s.AttemptChallenge(ctx, tenant, oid, now.Add(10*time.Minute), b); err != nil {
		t.Fatalf("other user: %v", err)
	}
	// A right code gives its attempt back.
	must(t, s.ReleaseAttempt(ctx, u, ids[1], 1))
	if _, err := attempt(ids[2], now.Add(11*time.Minute)); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := attempt(ids[2], now.Add(11*time.Minute)); !errors.As(err, new(*engine.Error)) {
		t.Fatalf("over budget again: %v", err)
	}
	// The window slides: the first attempt leaves it after an hour.
	if _, err := attempt(ids[2], now.Add(time.Hour+time.Millisecond)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// No budget: no cap.
	if _, err := s.AttemptChallenge(ctx, tenant, ids[1], now.Add(time.Hour+time.Second), engine.AttemptBudget{}); err != nil {
		t.Fatalf("no budget: %v", err)
	}
}

func testAttemptBudgetConcurrent(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "gina"}
	var ids []string
	for i := 0; i < 4; i++ {
		id := chID(s, u, 20+i)
		ids = append(ids, id)
		must(t, s.Commit(ctx, u, engine.Commit{Version: -1, NewChallenges: []engine.Challenge{longChallenge(u, id, 10)}, Now: time.Now()}))
	}
	b := engine.AttemptBudget{Max: 5, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, capped := 0, 0
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AttemptChallenge(ctx, tenant, ids[i%len(ids)], time.Now(), b)
			mu.Lock()
			defer mu.Unlock()
			var ee *engine.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ee) && ee.Kind == engine.KindRateLimited:
				capped++
			default:
				t.Errorf("attempt: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || capped != 19 {
		t.Fatalf("%d attempts counted, %d refused; want 5 and 19", ok, capped)
	}
}

// learn teaches u's history a kept login record the way a verification
// does: a commit that only learns.
func learn(s engine.Store, u engine.UserRef, rec engine.LoginRecord, opt engine.LearnOptions) error {
	return s.Commit(ctx, u, engine.Commit{Version: -1, Now: rec.At, Learn: &rec, LearnOpt: opt})
}

// testFeedback: fraud takes a learnt login back out of the user's history
// (its counts, the new values it brought, the last place it left) and the
// tenant's counts, and reports its network; the same or the other verdict
// again changes nothing; legit teaches a login that was not learnt.
func testFeedback(t *testing.T, s engine.Store, tenant string) {
	u := engine.UserRef{Tenant: tenant, User: "fb"}
	opt := engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}
	// The user's own login from home (address a0 in network n1), then the
	// attacker's from a new address a1 of the same network, far away.
	home := []engine.LevelValue{{Level: "ip.addr", Hash: "a0", Bucket: "x0"}, {Level: "ip.net", Hash: "n1", Bucket: "y1"}}
	lv := []engine.LevelValue{{Level: "ip.addr", Hash: "a1", Bucket: "x1"}, {Level: "ip.net", Hash: "n1", Bucket: "y1"}}
	nets := lv[1:]
	now := time.Now().Truncate(time.Second)
	homePlace := &engine.Place{At: now.Add(-time.Hour), Country: "DE", Lat: 52.5, Lon: 13.4, HasLoc: true}
	own := engine.LoginRecord{ID: lgID(s, u, 4), Tenant: tenant, User: u.User, At: now.Add(-time.Hour), Decision: engine.DecisionAllow,
		First: true, Levels: home, Place: homePlace}
	_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: own, RecordTTL: time.Hour, Learn: true, LearnOpt: opt})
	must(t, err)
	rec := engine.LoginRecord{ID: lgID(s, u, 1), Tenant: tenant, User: u.User, At: now, Decision: engine.DecisionAllow, Levels: lv,
		Place: &engine.Place{At: now, Country: "BR", Lat: -23.5, Lon: -46.6, HasLoc: true}}
	_, err = s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: time.Hour, Learn: true, LearnOpt: opt})
	must(t, err)
	read := func() engine.LoginState {
		st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: lv, Networks: nets, Now: now, Window: time.Hour})
		must(t, err)
		return st
	}
	if st := read(); st.UserLogins != 2 || st.Levels[0].UserCount != 1 || st.Levels[0].UserDistinct != 2 ||
		st.Levels[1].UserCount != 2 || st.Levels[1].UserDistinct != 1 || st.Levels[1].TenantCount != 2 ||
		st.Last == nil || st.Last.Country != "BR" || len(st.Reports) != 0 {
		t.Fatalf("before the verdict: %+v", st)
	}
	fraud := engine.FeedbackWrite{Record: rec, Verdict: engine.VerdictFraud, Commit: engine.Commit{Version: -1, Now: now},
		LearnOpt: opt, Networks: nets, HalfLife: 72 * time.Hour}
	saved, err := s.Feedback(ctx, u, fraud)
	must(t, err)
	if !saved.Changed || saved.Previous != "" {
		t.Fatalf("fraud: %+v", saved)
	}
	st := read()
	if st.UserLogins != 1 || st.Levels[0].UserCount != 0 || st.Levels[1].UserCount != 1 ||
		st.TenantLogins != 1 || st.Levels[1].TenantCount != 1 || st.Levels[1].TenantDistinct != 1 {
		t.Fatalf("fraud left the login learnt: %+v", st)
	}
	// The address the attacker brought is no longer a new value the user
	// had; the network, which the user's own login brought, still is.
	if st.Levels[0].UserDistinct != 1 || st.Levels[1].UserDistinct != 1 {
		t.Errorf("new values after fraud: addr %d, net %d; want 1 and 1", st.Levels[0].UserDistinct, st.Levels[1].UserDistinct)
	}
	if st.Last != nil {
		t.Errorf("the attacker's place is still the user's last: %+v", st.Last)
	}
	if len(st.Reports) != 1 || st.Reports[0].Level != "ip.net" || st.Reports[0].Weight != 1 || !st.Reports[0].At.Equal(now) {
		t.Fatalf("reports = %+v, want ip.net weight 1 at %v", st.Reports, now)
	}
	for _, v := range []engine.Verdict{engine.VerdictFraud, engine.VerdictLegit} {
		w := fraud
		w.Verdict = v
		saved, err := s.Feedback(ctx, u, w)
		must(t, err)
		if saved.Previous != engine.VerdictFraud || saved.Changed {
			t.Fatalf("%s after fraud: %+v", v, saved)
		}
	}
	if st := read(); st.UserLogins != 1 || len(st.Reports) != 1 || st.Reports[0].Weight != 1 {
		t.Fatalf("a repeated verdict changed something: %+v", st)
	}
	// A denied login (not learnt) judged legit is learnt, once.
	denied := rec
	denied.ID, denied.Decision = lgID(s, u, 2), engine.DecisionDeny
	_, err = s.SaveLogin(ctx, u, engine.LoginWrite{Record: denied, RecordTTL: time.Hour, LearnOpt: opt})
	must(t, err)
	legit := engine.FeedbackWrite{Record: denied, Verdict: engine.VerdictLegit, Commit: engine.Commit{Version: -1, Now: now}, LearnOpt: opt}
	saved, err = s.Feedback(ctx, u, legit)
	must(t, err)
	if !saved.Changed {
		t.Fatalf("legit on a denied login: %+v", saved)
	}
	if st := read(); st.UserLogins != 2 || st.Levels[0].UserCount != 1 || st.TenantLogins != 2 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("legit did not teach the login: %+v", st)
	}
	if saved, err := s.Feedback(ctx, u, legit); err != nil || saved.Previous != engine.VerdictLegit || saved.Changed {
		t.Fatalf("legit again: %+v %v", saved, err)
	}
	// A login without a record is not found.
	gone := legit
	gone.Record.ID = lgID(s, u, 3)
	if _, err := s.Feedback(ctx, u, gone); err == nil {
		t.Fatal("a verdict on a missing login succeeded")
	}
}
