package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Account reads a user's account document.
func (s *Store) Account(ctx context.Context, u engine.UserRef) (engine.Account, error) {
	vals, err := s.rdb.HMGet(ctx, space(u).Account(), "doc", "v").Result()
	if err != nil {
		return engine.Account{}, err
	}
	return decodeAccount(str(vals[0]), str(vals[1]))
}

func decodeAccount(doc, ver string) (engine.Account, error) {
	var a engine.Account
	if doc != "" {
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return a, err
		}
		a.Exists = true
	}
	a.Version, _ = strconv.ParseInt(ver, 10, 64)
	return a, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// commitPlan is the JSON argument of commitScript.
type commitPlan struct {
	Ver       int64     `json:"ver"`
	Doc       *string   `json:"doc"`
	Ch        int       `json:"ch"`
	ChSt      string    `json:"chst"`
	Now       int64     `json:"now"`
	New       []planNew `json:"new"`
	Cancel    []int     `json:"cancel"`
	Ev        []string  `json:"ev"`
	EvMax     int       `json:"evmax"`
	Jobs      []planJob `json:"jobs"`
	Erase     bool      `json:"erase"`
	EraseKeys []int     `json:"erasekeys"`
	Force     string    `json:"force"`
	Grace     bool      `json:"grace_reset"`
	User      string    `json:"user"`
}

type planNew struct {
	K   int      `json:"k"`
	ID  string   `json:"id"`
	F   []string `json:"f"`
	TTL int64    `json:"ttl"`
}

type planJob struct {
	Kind   string `json:"kind"`
	Tenant string `json:"tenant"`
	Ch     string `json:"ch"`
	Data   string `json:"data"`
}

// Commit applies c in one script on the user's shard.
func (s *Store) Commit(ctx context.Context, u engine.UserRef, c engine.Commit) error {
	cmd, err := s.commit(ctx, s.rdb, u, c)
	if err != nil {
		return err
	}
	return commitResult(cmd)
}

func commitResult(cmd *redis.Cmd) error {
	res, err := cmd.Text()
	if err != nil {
		return err
	}
	switch {
	case res == "OK":
		return nil
	case res == "conflict":
		return engine.ErrConflict
	case strings.HasPrefix(res, "challenge:"):
		return engine.ChallengeStatusError(engine.Status(strings.TrimPrefix(res, "challenge:")))
	}
	return errors.New("redisstore: commit: unexpected answer " + res)
}

// commit runs commitScript for c on rdb, which may be a pipeline.
func (s *Store) commit(ctx context.Context, rdb redis.Scripter, u engine.UserRef, c engine.Commit) (*redis.Cmd, error) {
	us := space(u)
	keys := []string{us.Account(), us.Queue(), us.Events(), us.Users(), us.OpenChallenges()}
	add := func(key string) int { keys = append(keys, key); return len(keys) }
	p := commitPlan{Ver: c.Version, Now: ms(c.Now), EvMax: s.evmax, User: u.User,
		New: []planNew{}, Cancel: []int{}, Ev: []string{}, Jobs: []planJob{}, EraseKeys: []int{}, Grace: c.GraceReset}
	if c.Account != nil {
		b, err := json.Marshal(c.Account)
		if err != nil {
			return nil, err
		}
		doc := string(b)
		p.Doc = &doc
	}
	if c.Challenge != "" {
		p.Ch = add(us.Challenge(c.Challenge))
		p.ChSt = string(c.ChallengeStatus)
	}
	for _, ch := range c.NewChallenges {
		p.New = append(p.New, planNew{K: add(us.Challenge(ch.ID)), ID: ch.ID, F: challengeFields(ch), TTL: ttlMillis(ch.ExpiresAt, c.Now)})
	}
	for _, id := range c.CancelChallenges {
		p.Cancel = append(p.Cancel, add(us.Challenge(id)))
	}
	for _, ev := range c.Events {
		b, _ := json.Marshal(ev)
		p.Ev = append(p.Ev, string(b))
	}
	for _, j := range c.Jobs {
		ch := ""
		if j.Challenge != "" {
			ch = us.Challenge(j.Challenge)
		}
		p.Jobs = append(p.Jobs, planJob{Kind: string(j.Kind), Tenant: u.Tenant, Ch: ch, Data: base64.StdEncoding.EncodeToString(j.Payload)})
	}
	if c.Erase {
		p.Erase = true
		for _, key := range us.DataKeys() {
			p.EraseKeys = append(p.EraseKeys, add(key))
		}
	}
	if c.ForceChallenge != nil {
		p.Force = "0"
		if *c.ForceChallenge {
			p.Force = "1"
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return commitScript.Run(ctx, rdb, keys, b), nil
}

// space is u's key space.
func space(u engine.UserRef) keyspace.User { return keyspace.UserOf(u.Tenant, u.User) }

// ttlMillis keeps a challenge a day past its expiry so its final status can
// still be read.
func ttlMillis(exp, now time.Time) int64 {
	return max(exp.Sub(now), 0).Milliseconds() + int64(24*time.Hour/time.Millisecond)
}

func challengeFields(c engine.Challenge) []string {
	data, _ := json.Marshal(c.Data)
	return []string{
		"tenant", c.Tenant, "user", c.User, "purpose", string(c.Purpose), "channel", string(c.Channel),
		"dest", c.Destination, "code", c.CodeHash, "status", string(c.Status),
		"created_at", strconv.FormatInt(ms(c.CreatedAt), 10), "expires_at", strconv.FormatInt(ms(c.ExpiresAt), 10),
		"attempts", strconv.Itoa(c.Attempts), "max_attempts", strconv.Itoa(c.MaxAttempts),
		"sends", strconv.Itoa(c.Sends), "last_sent_at", strconv.FormatInt(msOrZero(c.LastSentAt), 10),
		"delivery", string(c.Delivery), "login", c.LoginID, "data", string(data),
	}
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

func fromMs(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func parseChallenge(id string, m map[string]string) engine.Challenge {
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	c := engine.Challenge{
		ID: id, Tenant: m["tenant"], User: m["user"], Purpose: engine.Purpose(m["purpose"]),
		Channel: engine.Channel(m["channel"]), Destination: m["dest"], CodeHash: m["code"], Status: engine.Status(m["status"]),
		CreatedAt: fromMs(m["created_at"]), ExpiresAt: fromMs(m["expires_at"]),
		Attempts: atoi(m["attempts"]), MaxAttempts: atoi(m["max_attempts"]), Sends: atoi(m["sends"]),
		LastSentAt: fromMs(m["last_sent_at"]), Delivery: message.DeliveryState(m["delivery"]), DeliveryErr: m["delivery_error"], LoginID: m["login"],
	}
	_ = json.Unmarshal([]byte(m["data"]), &c.Data)
	return c
}

// AttemptChallenge counts one attempt, within the user's attempt budget,
// and returns the challenge. The challenge's user is read first to name
// the budget's key (it never changes; the script checks it again).
func (s *Store) AttemptChallenge(ctx context.Context, tenant, id string, now time.Time, b engine.AttemptBudget) (engine.Challenge, error) {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	ck := keyspace.Challenge(sh, id)
	user, err := s.rdb.HGet(ctx, ck, "user").Result()
	if errors.Is(err, redis.Nil) {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	if err != nil {
		return engine.Challenge{}, err
	}
	us := space(engine.UserRef{Tenant: tenant, User: user})
	if us.Shard() != sh {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	res, err := attemptScript.Run(ctx, s.rdb, []string{ck, us.Attempts()}, tenant, ms(now), user,
		max(b.Max, 0), b.Window.Milliseconds()).StringSlice()
	if err != nil {
		return engine.Challenge{}, err
	}
	switch res[0] {
	case "nf":
		return engine.Challenge{}, engine.ErrChallengeNotFound
	case "st":
		return engine.Challenge{}, engine.ChallengeStatusError(engine.Status(res[1]))
	case "cap":
		wait, _ := strconv.ParseInt(res[1], 10, 64)
		return engine.Challenge{}, engine.ErrAttemptBudget(time.Duration(wait) * time.Millisecond)
	}
	m := make(map[string]string, len(res)/2)
	for i := 1; i+1 < len(res); i += 2 {
		m[res[i]] = res[i+1]
	}
	return parseChallenge(id, m), nil
}

// ReleaseAttempt takes a right code's attempt out of the user's budget.
func (s *Store) ReleaseAttempt(ctx context.Context, u engine.UserRef, id string, attempt int) error {
	us := space(u)
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok || sh != us.Shard() {
		return nil
	}
	return releaseAttemptScript.Run(ctx, s.rdb, []string{us.Attempts(), us.Challenge(id)}, attempt).Err()
}

// Challenge reads a challenge of a tenant.
func (s *Store) Challenge(ctx context.Context, tenant, id string) (engine.Challenge, bool, error) {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.Challenge{}, false, nil
	}
	m, err := s.rdb.HGetAll(ctx, keyspace.Challenge(sh, id)).Result()
	if err != nil {
		return engine.Challenge{}, false, err
	}
	if len(m) == 0 || m["tenant"] != tenant {
		return engine.Challenge{}, false, nil
	}
	return parseChallenge(id, m), true, nil
}

// Rekey sets a new code hash, counts a send and queues its job.
func (s *Store) Rekey(ctx context.Context, tenant, id, codeHash string, now time.Time, cooldown time.Duration, maxSends int, job engine.Job) error {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.ErrChallengeNotFound
	}
	res, err := sendScript.Run(ctx, s.rdb, []string{keyspace.Challenge(sh, id), keyspace.Queue(sh)},
		tenant, ms(now), cooldown.Milliseconds(), maxSends, string(job.Kind), base64.StdEncoding.EncodeToString(job.Payload), codeHash).StringSlice()
	if err != nil {
		return err
	}
	switch res[0] {
	case "ok":
		return nil
	case "nf":
		return engine.ErrChallengeNotFound
	case "st":
		return engine.ChallengeStatusError(engine.Status(res[1]))
	case "wait":
		n, _ := strconv.ParseInt(res[1], 10, 64)
		return engine.ErrResendTooSoon(time.Duration(n) * time.Millisecond)
	case "max":
		return engine.ErrTooManySends
	}
	return errors.New("redisstore: send: unexpected answer " + res[0])
}

// OpenChallenges lists the ids of a user's challenges that have not
// expired (in whatever status).
func (s *Store) OpenChallenges(ctx context.Context, u engine.UserRef, now time.Time) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, space(u).OpenChallenges(), &redis.ZRangeBy{Min: strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
}

// Users calls fn for every user of the tenant with an account or history.
func (s *Store) Users(ctx context.Context, tenant string, fn func(user string) error) error {
	for sh := range keyspace.Shards {
		iter := s.rdb.SScan(ctx, keyspace.Users(sh, tenant), 0, "", 500).Iterator()
		for iter.Next(ctx) {
			if err := fn(iter.Val()); err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	return nil
}

// RecordFailure counts a failed password or challenge in its windows.
func (s *Store) RecordFailure(ctx context.Context, u engine.UserRef, f engine.Failure) error {
	member := strconv.FormatInt(f.At.UnixNano(), 36)
	return s.pipelined(ctx, func(pipe redis.Pipeliner) {
		switch f.Kind {
		case "password":
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

// pipelined runs the scripts fill queues as one round trip. Scripts run
// by EVALSHA; when Redis does not know one yet (a fresh or failed-over
// node), they are loaded and the pipeline runs again.
func (s *Store) pipelined(ctx context.Context, fill func(redis.Pipeliner)) error {
	pipe := s.rdb.Pipeline()
	fill(pipe)
	_, err := pipe.Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		return err
	}
	if err := s.loadScripts(ctx); err != nil {
		return err
	}
	pipe = s.rdb.Pipeline()
	fill(pipe)
	_, err = pipe.Exec(ctx)
	return err
}

// LoadLogin reads the user's and the tenant's side of an evaluation in one
// pipelined round trip (two scripts, one per slot).
func (s *Store) LoadLogin(ctx context.Context, u engine.UserRef, q engine.LoginQuery) (engine.LoginState, error) {
	from := ms(q.Now.Add(-q.Window))
	us, ts := space(u), keyspace.TenantOf(u.Tenant)
	ukeys := make([]string, 4, 4+len(q.Values))
	ukeys[0], ukeys[1], ukeys[2], ukeys[3] = us.Account(), us.Meta(), us.FailedPw(), us.FailedCh()
	uargs := make([]any, 1, 1+len(q.Values))
	uargs[0] = from
	tkeys := make([]string, 3, 3+len(q.Values))
	tkeys[0], tkeys[1], tkeys[2] = ts.Policy(), ts.Stats(), ts.FailedIP(q.IPHash)
	targs := make([]any, 1, 1+len(q.Values))
	targs[0] = from
	for i, v := range q.Values {
		ukeys = append(ukeys, us.History(v.Level))
		uargs = append(uargs, v.Hash)
		tkeys = append(tkeys, ts.Counts(v.Level))
		targs = append(targs, q.Buckets[i])
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
		i := strings.LastIndexByte(g, ':')
		st.GraceEpoch = g[:i]
		st.GraceUsed = int(toInt(g[i+1:]))
	}
	st.Force = str(ur[5]) == "1"
	st.FailedPwUser, st.FailedChUser = toInt(ur[6]), toInt(ur[7])
	for _, c := range ur[8:] {
		st.UserCounts = append(st.UserCounts, toInt(c))
	}
	st.Policy = []byte(str(tr[0]))
	if len(st.Policy) == 0 {
		st.Policy = nil
	}
	st.TenantLogins, st.TenantUsers, st.FailedIPUsers = toInt(tr[1]), toInt(tr[2]), toInt(tr[3])
	st.TenantDistinct = map[string]int64{}
	for i := 4; i+1 < len(tr); i += 2 {
		st.TenantCounts = append(st.TenantCounts, toInt(tr[i]))
		st.TenantDistinct[q.Values[(i-4)/2].Level] = toInt(tr[i+1])
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

func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// SaveLogin writes an evaluation's record, grace count, learning,
// challenge and blocked-login tally in one pipelined round trip (one
// script per slot).
func (s *Store) SaveLogin(ctx context.Context, u engine.UserRef, w engine.LoginWrite) (engine.LoginSaved, error) {
	var commit, blocked *redis.Cmd
	var buildErr error
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		s.saveLogin(ctx, pipe, saveLoginScript, u, w.Record, w.RecordTTL, w.Learn, w.GraceEpoch, w.LearnOpt)
		if w.Commit != nil {
			commit, buildErr = s.commit(ctx, pipe, u, *w.Commit)
		}
		blocked = s.tenantWrite(ctx, pipe, u, w.Record, string(w.Record.Decision), w.CountBlocked, w.Learn, w.LearnOpt)
	})
	if buildErr != nil {
		return engine.LoginSaved{}, buildErr
	}
	if err != nil {
		return engine.LoginSaved{}, err
	}
	var saved engine.LoginSaved
	if w.CountBlocked {
		if res, err := blocked.Int64Slice(); err == nil {
			saved.Blocked, saved.Baseline = res[0], float64(res[1])/24
		}
	}
	if commit != nil {
		return saved, commitResult(commit)
	}
	return saved, nil
}

func (s *Store) saveLogin(ctx context.Context, rdb redis.Scripter, sc *redis.Script, u engine.UserRef, rec engine.LoginRecord, ttl time.Duration, learn bool, grace string, opt engine.LearnOptions) *redis.Cmd {
	us := space(u)
	keys := make([]string, 4, 4+len(rec.Values))
	keys[0], keys[1], keys[2], keys[3] = us.Account(), us.Meta(), us.Login(rec.ID), us.Users()
	var b []byte
	if ttl > 0 { // only a login that may still be verified keeps its record
		b, _ = json.Marshal(rec)
	}
	last := []byte{}
	if rec.Place != nil {
		last, _ = json.Marshal(rec.Place)
	}
	args := []any{b, ttl.Milliseconds(), flag(learn), opt.HistorySize, opt.HistoryTTL.Milliseconds(), rec.At.Unix(), last, grace, u.User}
	for _, v := range rec.Values {
		keys = append(keys, us.History(v.Level))
		args = append(args, v.Hash)
	}
	return sc.Run(ctx, rdb, keys, args...)
}

// tenantWrite queues the tenant's side of a login's write: its tallies
// (decision "" counts nothing) and, when learn, the tenant-wide counts.
func (s *Store) tenantWrite(ctx context.Context, pipe redis.Pipeliner, u engine.UserRef, rec engine.LoginRecord, decision string, blocked, learn bool, opt engine.LearnOptions) *redis.Cmd {
	keys := []string{keyspace.TenantOf(u.Tenant).Tally(engine.Day(rec.At)), keyspace.TenantOf(u.Tenant).Blocked(), keyspace.TenantOf(u.Tenant).Stats()}
	args := []any{decision, rec.At.Unix() / 3600, flag(blocked), flag(learn), flag(opt.NewUser)}
	if learn {
		for i, v := range rec.Values {
			keys = append(keys, keyspace.TenantOf(u.Tenant).Counts(v.Level))
			args = append(args, opt.Buckets[i])
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
	var rec engine.LoginRecord
	return rec, true, json.Unmarshal(b, &rec)
}

// Learn teaches a verified login to the user's history and the tenant's
// counts, once per login.
func (s *Store) Learn(ctx context.Context, u engine.UserRef, rec engine.LoginRecord, opt engine.LearnOptions) error {
	// learnScript takes saveLoginScript's arguments; it keeps no new
	// record (ttl 0) and counts no grace login.
	res, err := s.saveLogin(ctx, s.rdb, learnScript, u, rec, 0, true, "", opt).Text()
	if err != nil || res != "OK" {
		return err
	}
	return s.pipelined(ctx, func(pipe redis.Pipeliner) { s.tenantWrite(ctx, pipe, u, rec, "", false, true, opt) })
}
