package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
				// retrying is not credential stuffing.
				failureScript.Run(ctx, pipe, []string{keyspace.TenantOf(u.Tenant).FailedIP(f.IPHash)}, ms(f.At), u.User, f.Window.Milliseconds())
			}
		default:
			failureScript.Run(ctx, pipe, []string{space(u).FailedCh()}, ms(f.At), member, f.Window.Milliseconds())
		}
	})
}

// LoadLogin reads the user's and the tenant's side of an evaluation in one
// pipelined round trip (two scripts, one per slot).
func (s *Store) LoadLogin(ctx context.Context, u engine.UserRef, q engine.LoginQuery) (engine.LoginState, error) {
	from := ms(q.Now.Add(-q.Window))
	us, ts := space(u), keyspace.TenantOf(u.Tenant)
	ukeys := append(make([]string, 0, 4+len(q.Levels)), us.Account(), us.Meta(), us.FailedPw(), us.FailedCh())
	uargs := append(make([]any, 0, 1+len(q.Levels)), from)
	tkeys := append(make([]string, 0, 4+len(q.Levels)), ts.Policy(), ts.Stats(), ts.FailedIP(q.IPHash), ts.Reports())
	targs := append(make([]any, 0, 2+len(q.Levels)+len(q.Networks)), from, len(q.Networks))
	for _, v := range q.Networks {
		targs = append(targs, reportField(v))
	}
	for _, v := range q.Levels {
		ukeys = append(ukeys, us.History(v.Level))
		uargs = append(uargs, v.Hash)
		tkeys = append(tkeys, ts.Counts(v.Level))
		targs = append(targs, v.Bucket)
	}
	var ucmd, tcmd *redis.Cmd
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		ucmd = loadUserScript.Run(ctx, pipe, ukeys, uargs...)
		tcmd = loadTenantScript.Run(ctx, pipe, tkeys, targs...)
	})
	if err != nil {
		return engine.LoginState{}, err
	}
	ur, err := ucmd.Slice()
	if err != nil {
		return engine.LoginState{}, err
	}
	tr, err := tcmd.Slice()
	if err != nil {
		return engine.LoginState{}, err
	}
	if len(ur) != 8+2*len(q.Levels) || len(tr) != 4+2*len(q.Levels)+len(q.Networks) {
		return engine.LoginState{}, fmt.Errorf("redisstore: load login: %d and %d answers for %d levels", len(ur), len(tr), len(q.Levels))
	}
	var st engine.LoginState
	if st.Account, err = decodeAccount(str(ur[0]), str(ur[1])); err != nil {
		return st, err
	}
	st.UserLogins = toInt(ur[2])
	if last := str(ur[3]); last != "" {
		var p engine.Place
		if json.Unmarshal([]byte(last), &p) == nil {
			st.Last = &p
		}
	}
	if g := str(ur[4]); g != "" {
		if i := strings.LastIndexByte(g, ':'); i >= 0 { // "epoch:used"; anything else counts as none
			st.GraceEpoch = g[:i]
			st.GraceUsed = int(toInt(g[i+1:]))
		}
	}
	st.Force = str(ur[5]) == "1"
	st.FailedPwUser, st.FailedChUser = toInt(ur[6]), toInt(ur[7])
	st.Policy = []byte(str(tr[0]))
	if len(st.Policy) == 0 {
		st.Policy = nil
	}
	st.TenantLogins, st.TenantUsers, st.FailedIPUsers = toInt(tr[1]), toInt(tr[2]), toInt(tr[3])
	if len(q.Levels) > 0 {
		st.Levels = make([]engine.LevelCount, len(q.Levels))
	}
	for i, v := range q.Levels {
		st.Levels[i] = engine.LevelCount{Level: v.Level, UserCount: toInt(ur[8+2*i]), UserDistinct: toInt(ur[9+2*i]), TenantCount: toInt(tr[4+2*i]), TenantDistinct: toInt(tr[5+2*i])}
	}
	for i, v := range q.Networks {
		if r, ok := parseReport(str(tr[4+2*len(q.Levels)+i])); ok {
			r.Level = v.Level
			st.Reports = append(st.Reports, r)
		}
	}
	return st, nil
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

// SaveLogin writes an evaluation in one pipelined round trip of two
// scripts: userWriteScript in the user's slot (the login record, grace
// count, learning and the commit, atomically) and tenantWriteScript in the
// tenant's (tallies and, for a learned login, the tenant-wide counts).
func (s *Store) SaveLogin(ctx context.Context, u engine.UserRef, w engine.LoginWrite) (engine.LoginSaved, error) {
	c := engine.Commit{Version: -1, Now: w.Record.At}
	if w.Commit != nil {
		c = *w.Commit
	}
	var user, tenant *redis.Cmd
	var buildErr error
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		if user, buildErr = s.writeUser(ctx, pipe, u, c, &w); buildErr != nil {
			return
		}
		tenant = s.tenantWrite(ctx, pipe, u, w.Record, tenantSide{tally: true, blocked: w.CountBlocked, learn: w.Learn})
	})
	if buildErr != nil {
		return engine.LoginSaved{}, buildErr
	}
	if err != nil {
		return engine.LoginSaved{}, err
	}
	var saved engine.LoginSaved
	if w.CountBlocked {
		if res, err := tenant.Int64Slice(); err == nil && len(res) == 2 {
			saved.Blocked, saved.Baseline = res[0], float64(res[1])/24
		}
	}
	_, err = writeResult(user)
	return saved, err
}

// tenantSide says what a login's tenant write counts.
type tenantSide struct {
	tally   bool // count the login's decision in the day's tally
	blocked bool // count it in the hour's blocked logins
	learn   bool // add it to the tenant-wide counts
}

// tenantWrite queues the tenant's side of a login's write.
func (s *Store) tenantWrite(ctx context.Context, pipe redis.Pipeliner, u engine.UserRef, rec engine.LoginRecord, side tenantSide) *redis.Cmd {
	ts := keyspace.TenantOf(u.Tenant)
	decision := ""
	if side.tally {
		decision = string(rec.Decision)
	}
	keys := []string{ts.Tally(engine.Day(rec.At)), ts.Blocked(), ts.Stats()}
	fields := ""
	if side.tally {
		fields = strings.Join(engine.TallyFields(rec), " ")
	}
	args := []any{decision, rec.At.Unix() / 3600, flag(side.blocked), flag(side.learn), flag(rec.First), fields}
	if side.learn {
		for _, v := range rec.Levels {
			keys = append(keys, ts.Counts(v.Level))
			args = append(args, v.Bucket)
		}
	}
	return tenantWriteScript.Run(ctx, pipe, keys, args...)
}

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
