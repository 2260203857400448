package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// writePlan is the JSON argument of userWriteScript: a commit and, for an
// evaluation or a verification, a login's part. Keys are indexes into KEYS.
type writePlan struct {
	Ver       int64      `json:"ver"`
	Doc       *string    `json:"doc"`
	Ch        int        `json:"ch"`
	ChSt      string     `json:"chst"`
	Now       int64      `json:"now"`
	New       []planNew  `json:"new"`
	Cancel    []int      `json:"cancel"`
	Ev        []string   `json:"ev"`
	EvMax     int        `json:"evmax"`
	Jobs      []planJob  `json:"jobs"`
	Erase     bool       `json:"erase"`
	EraseKeys []int      `json:"erasekeys"`
	Force     string     `json:"force"`
	Grace     bool       `json:"grace_reset"`
	User      string     `json:"user"`
	Login     *planLogin `json:"login,omitempty"`
	Epoch     string     `json:"grace"` // count one grace login in this epoch ("": none)
	Learn     *planLearn `json:"learn,omitempty"`
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

// planLogin is a login record kept for its verification.
type planLogin struct {
	K       int    `json:"k"`
	Rec     string `json:"rec"`
	TTL     int64  `json:"ttl"`
	Learned string `json:"learned"`
}

// planLearn is a login taught to the user's history.
type planLearn struct {
	Once int        `json:"once"` // the login record's key (0: a login being evaluated)
	Meta int        `json:"meta"`
	Hist []planHist `json:"hist"`
	Size int        `json:"size"`
	TTL  int64      `json:"ttl"`
	Now  int64      `json:"now"`
	Last string     `json:"last"`
}

type planHist struct {
	K int    `json:"k"`
	H string `json:"h"`
}

// Commit applies c in one script on the user's shard. A commit that
// learned a verified login then adds it to the tenant's counts.
func (s *Store) Commit(ctx context.Context, u engine.UserRef, c engine.Commit) error {
	cmd, err := s.writeUser(ctx, s.rdb, u, c, nil)
	if err != nil {
		return err
	}
	learned, err := writeResult(cmd)
	if err != nil || !learned {
		return err
	}
	return s.pipelined(ctx, func(pipe redis.Pipeliner) {
		s.tenantWrite(ctx, pipe, u, *c.Learn, tenantSide{learn: true})
	})
}

// writeResult reads userWriteScript's answer: the commit's error, and
// whether a login was learned.
func writeResult(cmd *redis.Cmd) (learned bool, err error) {
	res, err := cmd.Slice()
	if err != nil {
		return false, err
	}
	if len(res) != 2 {
		return false, fmt.Errorf("redisstore: write: unexpected answer %v", res)
	}
	status := str(res[0])
	switch {
	case status == "OK":
		return toInt(res[1]) == 1, nil
	case status == "conflict":
		return false, engine.ErrConflict
	case strings.HasPrefix(status, "challenge:"):
		return false, engine.ChallengeStatusError(engine.Status(strings.TrimPrefix(status, "challenge:")))
	}
	return false, errors.New("redisstore: write: unexpected answer " + status)
}

// writeUser runs userWriteScript for c and, for an evaluation, its login
// w on rdb, which may be a pipeline.
func (s *Store) writeUser(ctx context.Context, rdb redis.Scripter, u engine.UserRef, c engine.Commit, w *engine.LoginWrite) (*redis.Cmd, error) {
	us := space(u)
	keys := []string{us.Account(), us.Queue(), us.Events(), us.Users(), us.OpenChallenges()}
	add := func(key string) int { keys = append(keys, key); return len(keys) }
	p, err := s.commitPlan(u, add, c)
	if err != nil {
		return nil, err
	}
	switch {
	case w != nil && c.Learn != nil:
		return nil, errors.New("redisstore: a login write's commit cannot learn another login")
	case w != nil:
		if w.RecordTTL > 0 { // only a login that may still be verified keeps its record
			b, err := json.Marshal(w.Record)
			if err != nil {
				return nil, err
			}
			p.Login = &planLogin{K: add(us.Login(w.Record.ID)), Rec: string(b), TTL: w.RecordTTL.Milliseconds(), Learned: flag(w.Learn)}
		}
		p.Epoch = w.GraceEpoch
		if w.Learn {
			p.Learn = learnPlan(us, add, w.Record, w.LearnOpt)
		}
	case c.Learn != nil:
		p.Learn = learnPlan(us, add, *c.Learn, c.LearnOpt)
		p.Learn.Once = add(us.Login(c.Learn.ID))
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return userWriteScript.Run(ctx, rdb, keys, b), nil
}

// commitPlan is the plan of c; add names a key and returns its index.
func (s *Store) commitPlan(u engine.UserRef, add func(string) int, c engine.Commit) (writePlan, error) {
	us := space(u)
	p := writePlan{Ver: c.Version, Now: ms(c.Now), EvMax: s.evmax, User: u.User,
		New: []planNew{}, Cancel: []int{}, Ev: []string{}, Jobs: []planJob{}, EraseKeys: []int{}, Grace: c.GraceReset}
	if c.Account != nil {
		b, err := json.Marshal(c.Account)
		if err != nil {
			return p, err
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
	return p, nil
}

// learnPlan is the history learning of rec; add names a key.
func learnPlan(us keyspace.User, add func(string) int, rec engine.LoginRecord, opt engine.LearnOptions) *planLearn {
	l := &planLearn{Meta: add(us.Meta()), Hist: make([]planHist, 0, len(rec.Levels)),
		Size: opt.HistorySize, TTL: opt.HistoryTTL.Milliseconds(), Now: rec.At.Unix()}
	if rec.Place != nil {
		b, _ := json.Marshal(rec.Place)
		l.Last = string(b)
	}
	for _, v := range rec.Levels {
		l.Hist = append(l.Hist, planHist{K: add(us.History(v.Level)), H: v.Hash})
	}
	return l
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
// by EVALSHA; when Redis does not know some yet (a fresh or failed-over
// node), they are loaded and only those are run again: the others ran, and
// running a write twice would apply it twice.
func (s *Store) pipelined(ctx context.Context, fill func(redis.Pipeliner)) error {
	pipe := s.rdb.Pipeline()
	fill(pipe)
	cmds, err := pipe.Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		return err
	}
	if err := s.loadScripts(ctx); err != nil {
		return err
	}
	pipe = s.rdb.Pipeline()
	for _, c := range cmds {
		if e := c.Err(); e != nil && strings.Contains(e.Error(), "NOSCRIPT") {
			c.SetErr(nil)
			_ = pipe.Process(ctx, c) // queues c again: its caller reads the new answer
		}
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// LoadLogin reads the user's and the tenant's side of an evaluation in one
// pipelined round trip (two scripts, one per slot).
func (s *Store) LoadLogin(ctx context.Context, u engine.UserRef, q engine.LoginQuery) (engine.LoginState, error) {
	from := ms(q.Now.Add(-q.Window))
	us, ts := space(u), keyspace.TenantOf(u.Tenant)
	ukeys := append(make([]string, 0, 4+len(q.Levels)), us.Account(), us.Meta(), us.FailedPw(), us.FailedCh())
	uargs := append(make([]any, 0, 1+len(q.Levels)), from)
	tkeys := append(make([]string, 0, 3+len(q.Levels)), ts.Policy(), ts.Stats(), ts.FailedIP(q.IPHash))
	targs := append(make([]any, 0, 1+len(q.Levels)), from)
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
	if len(ur) != 8+len(q.Levels) || len(tr) != 4+2*len(q.Levels) {
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
		i := strings.LastIndexByte(g, ':')
		st.GraceEpoch = g[:i]
		st.GraceUsed = int(toInt(g[i+1:]))
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
		st.Levels[i] = engine.LevelCount{Level: v.Level, UserCount: toInt(ur[8+i]), TenantCount: toInt(tr[4+2*i]), TenantDistinct: toInt(tr[5+2*i])}
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
	args := []any{decision, rec.At.Unix() / 3600, flag(side.blocked), flag(side.learn), flag(rec.First)}
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
