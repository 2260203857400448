package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// RecordFailure counts a failed password or challenge in its windows.
func (s *Store) RecordFailure(ctx context.Context, u engine.UserRef, f engine.Failure) error {
	member := strconv.FormatInt(f.At.UnixNano(), 36)
	return s.pipelined(ctx, func(pipe redis.Pipeliner) {
		switch f.Kind {
		case engine.FailedPassword:
			failureScript.Run(ctx, pipe, []string{space(u).FailedPw()}, ms(f.At), member, f.Window.Milliseconds())
			if f.IPHash != "" {
				// The IP window counts distinct users, so one user
				// retrying is not credential stuffing. It is the
				// tenant's key: its members are keyed hashes, never user
				// ids, which an erasure could not find there.
				failureScript.Run(ctx, pipe, []string{keyspace.TenantOf(u.Tenant).FailedIP(f.IPHash)}, ms(f.At), f.UserHash, f.Window.Milliseconds())
			}
		default:
			failureScript.Run(ctx, pipe, []string{space(u).FailedCh()}, ms(f.At), member, f.Window.Milliseconds())
		}
	})
}

// LoadLogin reads the user's side of an evaluation (account, history,
// failure windows) and the tenant's policy, failed-IP window and fraud
// reports with plain reads, pipelined as one round trip; the tenant-wide
// counts come from the process's copy (stats.go), not from Redis. No
// script: nothing read needs to be consistent with anything but itself
// (the account's document and version are one HMGET, and the write checks
// the version). A history still in the per-level hashes of before
// (historyLua) costs a second round trip, until the user's next write
// folds it in.
func (s *Store) LoadLogin(ctx context.Context, u engine.UserRef, q engine.LoginQuery) (engine.LoginState, error) {
	tv, err := s.stats.read(ctx, u.Tenant, q.Levels)
	if err != nil {
		return engine.LoginState{}, err
	}
	from := strconv.FormatInt(ms(q.Now.Add(-q.Window)), 10)
	us, ts := space(u), keyspace.TenantOf(u.Tenant)
	fields := append(make([]string, 0, 3+2*len(q.Levels)), "n", "last", "hv")
	for _, v := range q.Levels {
		fields = append(fields, historyField(v), "nv:"+v.Level) // nv ≥ the values held (historyLua)
	}
	fields = append(fields, "w")
	reports := make([]string, len(q.Networks))
	for i, v := range q.Networks {
		reports[i] = reportField(v)
	}
	var acct, meta, reported *redis.SliceCmd
	var failedPw, failedCh, failedIP *redis.IntCmd
	var policy *redis.StringCmd
	err = s.pipelined(ctx, func(pipe redis.Pipeliner) {
		acct = pipe.HMGet(ctx, us.Account(), "doc", "v", "grace", "force")
		meta = pipe.HMGet(ctx, us.Meta(), fields...)
		failedPw = pipe.ZCount(ctx, us.FailedPw(), from, "+inf")
		failedCh = pipe.ZCount(ctx, us.FailedCh(), from, "+inf")
		policy = pipe.Get(ctx, ts.Policy())
		failedIP = pipe.ZCount(ctx, ts.FailedIP(q.IPHash), from, "+inf")
		if len(reports) > 0 {
			reported = pipe.HMGet(ctx, ts.Reports(), reports...)
		}
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return engine.LoginState{}, err
	}
	a, err := acct.Result()
	if err != nil {
		return engine.LoginState{}, err
	}
	m, err := meta.Result()
	if err != nil {
		return engine.LoginState{}, err
	}
	var st engine.LoginState
	if st.Account, err = decodeAccount(str(a[0]), str(a[1])); err != nil {
		return st, err
	}
	st.UserLogins = toInt(m[0])
	if last := str(m[1]); last != "" {
		if p, ok := parsePlace(last); ok {
			st.Last = &p
		}
	}
	if g := str(a[2]); g != "" {
		if i := strings.LastIndexByte(g, ':'); i >= 0 { // "epoch:used"; anything else counts as none
			st.GraceEpoch = g[:i]
			st.GraceUsed = int(toInt(g[i+1:]))
		}
	}
	st.Force = str(a[3]) == "1"
	if st.FailedPwUser, err = failedPw.Result(); err != nil {
		return st, err
	}
	if st.FailedChUser, err = failedCh.Result(); err != nil {
		return st, err
	}
	switch doc, err := policy.Bytes(); {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return st, err
	default:
		st.Policy = doc
	}
	if st.FailedIPUsers, err = failedIP.Result(); err != nil {
		return st, err
	}
	st.TenantLogins, st.TenantUsers = tv.n, tv.u
	if len(q.Levels) > 0 {
		st.Levels = tv.levels
	}
	for i := range q.Levels {
		st.Levels[i].UserCount = historyCount(str(m[3+2*i]))
		st.Levels[i].UserDistinct = toInt(m[4+2*i])
	}
	st.HistoryVersion = -1
	switch {
	case m[2] != nil:
		st.HistoryVersion = toInt(m[len(m)-1])
	case st.UserLogins > 0:
		if err := s.oldHistory(ctx, us, q.Levels, st.Levels); err != nil {
			return st, err
		}
	}
	if reported != nil {
		vals, err := reported.Result()
		if err != nil {
			return st, err
		}
		for i, v := range q.Networks {
			if r, ok := parseReport(str(vals[i])); ok {
				r.Level = v.Level
				st.Reports = append(st.Reports, r)
			}
		}
	}
	return st, nil
}

// oldHistory reads the user's counts of levels from the per-level hashes
// of before (historyLua) into counts, with the level's new-value count
// (already in counts) as the floor of its distinct values.
func (s *Store) oldHistory(ctx context.Context, us keyspace.User, levels []engine.LevelValue, counts []engine.LevelCount) error {
	get := make([]*redis.StringCmd, len(levels))
	size := make([]*redis.IntCmd, len(levels))
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		for i, v := range levels {
			get[i] = pipe.HGet(ctx, us.History(v.Level), v.Hash)
			size[i] = pipe.HLen(ctx, us.History(v.Level))
		}
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i := range levels {
		c, err := get[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		counts[i].UserCount = historyCount(c)
		counts[i].UserDistinct = max(counts[i].UserDistinct, size[i].Val())
	}
	return nil
}

// historyCount is the count of a history entry "<count>:<last seen>", 0
// for none.
func historyCount(entry string) int64 {
	if entry == "" {
		return 0
	}
	c, _, _ := strings.Cut(entry, ":")
	n, _ := strconv.ParseInt(c, 10, 64)
	return n
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// SaveLogin writes an evaluation with one script in the user's slot (the
// login record, grace count, learning and the commit, atomically); its
// tenant-wide side (the day's tally, the hour's blocked logins, the counts
// of a learnt login) is counted in the process's copy and sent with the
// next flush (stats.go).
func (s *Store) SaveLogin(ctx context.Context, u engine.UserRef, w engine.LoginWrite) (engine.LoginSaved, error) {
	c := engine.Commit{Version: -1, Now: w.Record.At}
	if w.Commit != nil {
		c = *w.Commit
	}
	var saved engine.LoginSaved
	if len(w.Limits) > 0 {
		refused, wait, err := s.writeGated(ctx, u, c, &w)
		if err != nil {
			return engine.LoginSaved{}, err
		}
		saved.Refused, saved.RetryAfter = refused, wait
	} else {
		cmd, err := s.writeUser(ctx, s.rdb, u, c, &w)
		if err != nil {
			return engine.LoginSaved{}, err
		}
		if _, err := writeResult(cmd); err != nil {
			return engine.LoginSaved{}, err
		}
	}
	t, err := s.countLogin(ctx, u, w.Record, tenantSide{tally: true, blocked: w.CountBlocked, learn: w.Learn})
	if err != nil {
		return engine.LoginSaved{}, err
	}
	if w.CountBlocked {
		cur, before := t.blockedAt(w.Record.At.Unix() / 3600)
		saved.Blocked, saved.Baseline = cur, float64(before)/24
	}
	return saved, nil
}

// verdictTTL is how long a limit's verdict on a code is kept for the
// delivery worker: longer than any code lives.
const verdictTTL = time.Hour

// writeGated runs a login's write and the send limits of its challenge's
// code as one pipelined round trip: the limits first (each its own slot,
// recording its verdict on the challenge there), then the user's write,
// whose code job is gated on those verdicts. Returns the first limit that
// refused, the caller's own before the shared ones; when one of the
// caller's own refused, the shared ones that allowed are given back (as
// Allow never takes them then).
func (s *Store) writeGated(ctx context.Context, u engine.UserRef, c engine.Commit, w *engine.LoginWrite) (string, time.Duration, error) {
	if len(c.NewChallenges) != 1 {
		return "", 0, errors.New("redisstore: send limits need the write's one new challenge")
	}
	limits := sendOrder(w.Limits)
	w.Limits = limits
	verdicts := limitVerdicts(limits, c.NewChallenges[0].ID)
	now := w.Record.At
	var cmds []*redis.Cmd
	var write *redis.Cmd
	var planErr error
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		for i, l := range limits {
			cmds = append(cmds, limitScript.Run(ctx, pipe, []string{limitKey(l), verdicts[i]},
				ms(now), limitPeriod(l).Milliseconds(), l.PerHour, verdictTTL.Milliseconds()))
		}
		write, planErr = s.writeUser(ctx, pipe, u, c, w)
	})
	if planErr != nil {
		return "", 0, planErr
	}
	if err != nil {
		return "", 0, err
	}
	if _, err := writeResult(write); err != nil {
		return "", 0, err
	}
	refused, wait, err := firstRefused(limits, cmds)
	if err != nil || refused < 0 {
		return "", 0, err
	}
	if !limits[refused].Shared {
		s.refund(ctx, limits, cmds, now)
	}
	return limits[refused].Name, wait, nil
}

// refund gives back the units the shared limits of a refused send took.
// Best effort: a lost refund leaves a shared limit a unit short for an
// hour at most.
func (s *Store) refund(ctx context.Context, limits []engine.Limit, cmds []*redis.Cmd, now time.Time) {
	_ = s.pipelined(ctx, func(pipe redis.Pipeliner) {
		for i, l := range limits {
			if res, err := cmds[i].Int64Slice(); l.Shared && err == nil && res[0] == 1 {
				refundScript.Run(ctx, pipe, []string{limitKey(l)}, ms(now), limitPeriod(l).Milliseconds(), l.PerHour)
			}
		}
	})
}

// tenantSide says what a login counts in the tenant's statistics.
type tenantSide struct {
	tally   bool // count the login's decision in the day's tally
	blocked bool // count it in the hour's blocked logins
	learn   bool // add it to the tenant-wide counts
	unlearn bool // take a learnt login back out of them
	lastOne bool // (unlearn) the user has no learnt login left
}

// countLogin counts a login's tenant-wide side in the process's copy.
func (s *Store) countLogin(ctx context.Context, u engine.UserRef, rec engine.LoginRecord, side tenantSide) (*tenantStats, error) {
	l := loginCount{hour: -1}
	if side.tally {
		l.day = engine.Day(rec.At)
		l.fields = append([]string{"logins", string(rec.Decision)}, engine.TallyFields(rec)...)
	}
	if side.blocked {
		l.hour = rec.At.Unix() / 3600
	}
	switch {
	case side.learn:
		l.n, l.inc, l.levels = 1, 1, rec.Levels
		if rec.First {
			l.u = 1
		}
	case side.unlearn:
		l.n, l.inc, l.levels = -1, -1, rec.Levels
		if side.lastOne {
			l.u = -1
		}
	}
	return s.stats.add(ctx, u.Tenant, l)
}

// flag is a boolean as a hash field or script argument holds it: "1" or "0".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// RecentLogins returns up to n of the user's kept login records, newest
// first. A read: the index, then the records in one pipeline.
func (s *Store) RecentLogins(ctx context.Context, u engine.UserRef, now time.Time, n int) ([]engine.LoginRecord, error) {
	us := space(u)
	ids, err := s.rdb.ZRevRangeByScore(ctx, us.Logins(), &redis.ZRangeBy{Min: strconv.FormatInt(ms(now), 10), Max: "+inf", Count: int64(n)}).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, us.Login(id), "rec")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]engine.LoginRecord, 0, len(ids))
	for _, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue // expired between the two reads
		}
		rec, err := decodeLogin(b)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Login reads a login record.
func (s *Store) Login(ctx context.Context, id string) (engine.LoginRecord, bool, error) {
	sh, ok := keyspace.ParseID("lg_", id)
	if !ok {
		return engine.LoginRecord{}, false, nil
	}
	b, err := s.rdb.HGet(ctx, keyspace.Login(sh, id), "rec").Bytes()
	if errors.Is(err, redis.Nil) {
		return engine.LoginRecord{}, false, nil
	}
	if err != nil {
		return engine.LoginRecord{}, false, err
	}
	rec, err := decodeLogin(b)
	return rec, true, err
}

// decodeLogin reads a login record's JSON. A record written before each
// level carried its bucket (records live minutes) has the buckets in a
// list parallel to the levels; they are moved into the levels.
func decodeLogin(b []byte) (engine.LoginRecord, error) {
	var rec engine.LoginRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, err
	}
	if len(rec.Levels) == 0 || rec.Levels[0].Bucket != "" {
		return rec, nil
	}
	var old struct {
		Buckets []string `json:"buckets"`
	}
	if json.Unmarshal(b, &old) == nil && len(old.Buckets) == len(rec.Levels) {
		for i := range rec.Levels {
			rec.Levels[i].Bucket = old.Buckets[i]
		}
	}
	return rec, nil
}
