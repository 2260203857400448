package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
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
	Closing   []string  `json:"closing"` // with Erase: the ids of Cancel
	// With Erase: the user's kept login records (key indexes and ids),
	// and the key of their index.
	EraseLogins   []int    `json:"erase_logins"`
	ClosingLogins []string `json:"closing_logins"`
	LoginIndex    int      `json:"login_index"`
	// With Erase: the shard's dead-letter stream and retry set, whose
	// jobs of the user's challenges (his number or address and a code)
	// go with them, as do his other jobs (notices to his address),
	// found by his keyed hash EraseUser (keyspace.FieldUser).
	Dead      int        `json:"dead"`
	Delay     int        `json:"delay"`
	EraseUser string     `json:"erase_user"`
	Force     string     `json:"force"`
	Grace     bool       `json:"grace_reset"`
	User      string     `json:"user"`
	Login     *planLogin `json:"login,omitempty"`
	Epoch     string     `json:"grace"` // count one grace login in this epoch ("": none)
	// GraceTTL (ms) is how long an account that is only a grace count
	// is kept after it (the history's TTL; count_grace).
	GraceTTL int64      `json:"grace_ttl"`
	Learn    *planLearn `json:"learn,omitempty"`
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
	Gates  string `json:"gates,omitempty"` // limit verdict keys, space-separated
	Send   string `json:"send,omitempty"`  // which send of its challenge the code is (keyspace.FieldSend)
	User   string `json:"user,omitempty"`  // keyed hash of the user it is addressed to (keyspace.FieldUser)
}

// planLogin is a login record kept for its verification.
type planLogin struct {
	K       int    `json:"k"`
	Index   int    `json:"ix"` // the user's index of kept records
	ID      string `json:"id"`
	Now     int64  `json:"now"`
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
	Init int64      `json:"init"` // a new history's first version
	// Seen, Set and Fresh are learn_seen's: the history's version read,
	// what the login writes into it then, and the levels it brings a new
	// value to (seenFrom).
	Seen  int64    `json:"seen"`
	Set   []any    `json:"-"` // arguments of the script of their own
	Fresh []string `json:"fresh"`
}

// seenFrom fills l's learning from what the login's read saw (learn_seen):
// each value's count and last-seen, and for a value new to the user his
// level's new-value count; his logins and last place. It leaves l to
// learn from the history as it is when the read saw no history version
// or other levels than rec's.
func (l *planLearn) seenFrom(rec engine.LoginRecord, seen *engine.LoginState) {
	if seen == nil || seen.HistoryVersion < 0 || len(seen.Levels) != len(rec.Levels) {
		return
	}
	now := strconv.FormatInt(l.Now, 10)
	set := make([]any, 0, 4*len(rec.Levels)+8)
	fresh := []string{}
	for i, v := range rec.Levels {
		c := seen.Levels[i]
		if c.Level != v.Level {
			return
		}
		if c.UserCount <= 0 {
			set = append(set, "nv:"+v.Level, strconv.FormatInt(c.UserDistinct+1, 10))
			fresh = append(fresh, v.Level)
		}
		set = append(set, historyField(v), strconv.FormatInt(max(c.UserCount, 0)+1, 10)+":"+now)
	}
	l.Seen, l.Set, l.Fresh = seen.HistoryVersion, append(set, "n", strconv.FormatInt(seen.UserLogins+1, 10), "last", l.Last), fresh // hv is 2 already: learn_seen checks it
}

// planHist is one of a login's values in the user's history: its field
// "<level>:<value hash>" and its level (historyLua).
type planHist struct {
	F string `json:"f"`
	L string `json:"l"`
}

// Commit applies c in one script on the user's shard. A commit that
// learned a verified login then counts it in the tenant's statistics.
func (s *Store) Commit(ctx context.Context, u engine.UserRef, c engine.Commit) error {
	cmd, err := s.writeUser(ctx, s.rdb, u, c, nil)
	if err != nil {
		return err
	}
	learned, err := writeResult(cmd)
	if err != nil || !learned {
		return err
	}
	_, err = s.countLogin(ctx, u, *c.Learn, tenantSide{learn: true})
	return err
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
	var rec []byte // the login record kept, if any
	switch {
	case w != nil && c.Learn != nil:
		return nil, errors.New("redisstore: a login write's commit cannot learn another login")
	case w != nil:
		if w.RecordTTL > 0 { // only a login that may still be verified keeps its record
			if rec, err = json.Marshal(w.Record); err != nil {
				return nil, err
			}
			p.Login = &planLogin{K: add(us.Login(w.Record.ID)), Index: add(us.Logins()), ID: w.Record.ID, Now: ms(w.Record.At),
				TTL: w.RecordTTL.Milliseconds(), Learned: flag(w.Learn)}
		}
		p.Epoch, p.GraceTTL = w.GraceEpoch, w.LearnOpt.HistoryTTL.Milliseconds()
		for i, j := range c.Jobs {
			if j.Challenge != "" {
				p.Jobs[i].Gates = strings.Join(limitVerdicts(w.Limits, j.Challenge), " ")
			}
		}
		if w.Learn {
			p.Learn = learnPlan(us, add, w.Record, w.LearnOpt)
			p.Learn.seenFrom(w.Record, w.Seen)
		}
	case c.Learn != nil:
		p.Learn = learnPlan(us, add, *c.Learn, c.LearnOpt)
		p.Learn.Once = add(us.Login(c.Learn.ID))
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	args := []any{b, rec}
	if p.Learn != nil {
		args = append(args, p.Learn.Set...)
	}
	return userWriteScript.Run(ctx, rdb, keys, args...), nil
}

// commitPlan is the plan of c; add names a key and returns its index.
func (s *Store) commitPlan(u engine.UserRef, add func(string) int, c engine.Commit) (writePlan, error) {
	us := space(u)
	p := writePlan{Ver: c.Version, Now: ms(c.Now), EvMax: s.evmax, User: u.User,
		New: []planNew{}, Cancel: []int{}, Ev: []string{}, Jobs: []planJob{}, EraseKeys: []int{}, EraseLogins: []int{}, ClosingLogins: []string{}, Closing: []string{}, Grace: c.GraceReset}
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
		pj := planJob{Kind: string(j.Kind), Tenant: u.Tenant, Data: base64.StdEncoding.EncodeToString(j.Payload), User: j.User}
		if j.Challenge != "" {
			pj.Ch = us.Challenge(j.Challenge)
			if slices.ContainsFunc(c.NewChallenges, func(n engine.Challenge) bool { return n.ID == j.Challenge }) {
				pj.Send = "1" // a new challenge's code is its first send
			}
		}
		p.Jobs = append(p.Jobs, pj)
	}
	if c.Erase {
		p.Erase, p.Closing = true, append([]string{}, c.CancelChallenges...)
		p.ClosingLogins, p.LoginIndex = append([]string{}, c.EraseLogins...), add(us.Logins())
		p.Dead, p.Delay, p.EraseUser = add(keyspace.Dead(us.Shard())), add(keyspace.Delay(us.Shard())), c.EraseUser
		for _, id := range c.EraseLogins {
			p.EraseLogins = append(p.EraseLogins, add(us.Login(id)))
		}
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
	return &planLearn{Meta: add(us.Meta()), Hist: histPlan(rec),
		Size: opt.HistorySize, TTL: opt.HistoryTTL.Milliseconds(), Now: rec.At.Unix(), Last: lastPlace(rec),
		Init: historyInit(rec.ID), Fresh: []string{}}
}

// historyInit is the first version of a history the login with the
// (random) id makes: a number below 2^52, exact in Lua's doubles.
func historyInit(id string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return int64(h.Sum64() >> 12)
}

// histPlan names the history field and level of each of rec's values.
func histPlan(rec engine.LoginRecord) []planHist {
	h := make([]planHist, 0, len(rec.Levels))
	for _, v := range rec.Levels {
		h = append(h, planHist{F: historyField(v), L: v.Level})
	}
	return h
}

// historyField is a value's field in the user's history (historyLua).
func historyField(v engine.LevelValue) string { return v.Level + ":" + v.Hash }

// lastPlace is the user's last place as rec leaves it in the history's
// "last" field (compared verbatim when rec is unlearnt), "" without one:
// "<unix s>|<country>" and, with a location, "|<lat>|<lon>" to 4 decimals
// (11 m; a GeoIP city is kilometres). Short on purpose: a value over 64
// bytes would cost the whole history hash Redis' compact encoding.
func lastPlace(rec engine.LoginRecord) string {
	p := rec.Place
	if p == nil {
		return ""
	}
	s := strconv.FormatInt(p.At.Unix(), 10) + "|" + p.Country
	if p.HasLoc {
		s += "|" + strconv.FormatFloat(p.Lat, 'f', 4, 64) + "|" + strconv.FormatFloat(p.Lon, 'f', 4, 64)
	}
	return s
}

// lastPlaceJSON is rec's last place as the store wrote it before
// lastPlace, for unlearning a login learnt then.
func lastPlaceJSON(rec engine.LoginRecord) string {
	if rec.Place == nil {
		return ""
	}
	b, _ := json.Marshal(rec.Place)
	return string(b)
}

// parsePlace reads a "last" field: lastPlace's form or the JSON of before.
func parsePlace(s string) (engine.Place, bool) {
	var p engine.Place
	if strings.HasPrefix(s, "{") {
		return p, json.Unmarshal([]byte(s), &p) == nil
	}
	f := strings.Split(s, "|")
	if len(f) != 2 && len(f) != 4 {
		return p, false
	}
	at, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return p, false
	}
	p.At, p.Country = time.Unix(at, 0).UTC(), f[1]
	if len(f) == 4 {
		lat, err1 := strconv.ParseFloat(f[2], 64)
		lon, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil {
			return p, false
		}
		p.Lat, p.Lon, p.HasLoc = lat, lon, true
	}
	return p, true
}

// space is u's key space.
func space(u engine.UserRef) keyspace.User { return keyspace.UserOf(u.Tenant, u.User) }

// ttlMillis keeps a challenge a day past its expiry so its final status can
// still be read.
func ttlMillis(exp, now time.Time) int64 {
	return max(exp.Sub(now), 0).Milliseconds() + int64(24*time.Hour/time.Millisecond)
}

// Users calls fn for every user of the tenant with an account (a history
// alone expires, and does not make one).
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
