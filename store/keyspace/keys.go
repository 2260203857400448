package keyspace

import (
	"encoding/base64"
	"strings"

	"github.com/stepup-auth/stepup/risk"
)

// prefix starts every key.
const prefix = "su:"

// Installation-wide keys, in the {g} slot.

// Tenants is the hash of tenant records by id.
func Tenants() string { return prefix + "{g}:tenants" }

// KeyHashes is the hash of API key records by the key's hash.
func KeyHashes() string { return prefix + "{g}:keys" }

// KeyIDs is the hash of API key hashes by key id.
func KeyIDs() string { return prefix + "{g}:keyids" }

// KeyEvents is the channel on which revoked keys' hashes are published.
func KeyEvents() string { return prefix + "{g}:keyrevoked" }

// Token is the key marking a single-use token, named by the engine, as used.
func Token(name string) string { return prefix + "{g}:tok:" + name }

// Provider maps a provider's message id to its challenge key. It lives in
// the installation slot; the challenge is written by a second call.
func Provider(id string) string { return prefix + "{g}:sid:" + id }

// Limit is a rate limit's key: scope names what is limited, subject (often
// a hash) whom. Each limit is its own slot.
func Limit(scope, tenant, subject string) string {
	return prefix + "{rl:" + scope + ":" + tenant + ":" + subject + "}"
}

// LimitVerdict is where a limit records whether it allowed the code of
// challenge id (in the limit's slot): a code job gated on it is sent only
// once every verdict says so.
func LimitVerdict(limitKey, challenge string) string { return limitKey + ":v:" + challenge }

// IsLimitVerdict reports whether key names a limit's verdict, the only
// keys a job's gates may name.
func IsLimitVerdict(key string) bool {
	return strings.HasPrefix(key, prefix+"{rl:") && strings.Contains(key, "}:v:")
}

// ConsoleSession is a web console session's hash, named by the hash of
// its id (never the id itself). Each session is its own slot: one is read
// per console request, by nobody else.
func ConsoleSession(idHash string) string { return prefix + "{cs:" + idHash + "}" }

// Keys of one shard.

// Challenge is a challenge's hash.
func Challenge(shard int, id string) string { return prefix + Tag(shard) + ":ch:" + id }

// Login is a login record, kept for its challenge and for a verdict.
func Login(shard int, id string) string { return prefix + Tag(shard) + ":lg:" + id }

// Queue is the shard's job stream.
func Queue(shard int) string { return prefix + Tag(shard) + ":q" }

// Queues are the job streams of all Shards, in shard order.
func Queues() []string {
	qs := make([]string, Shards)
	for sh := range qs {
		qs[sh] = Queue(sh)
	}
	return qs
}

// Delay is the shard's sorted set of jobs waiting for a retry.
func Delay(shard int) string { return prefix + Tag(shard) + ":qdelay" }

// Dead is the shard's dead-letter stream.
func Dead(shard int) string { return prefix + Tag(shard) + ":dlq" }

// Events is a tenant's audit stream in shard.
func Events(shard int, tenant string) string { return prefix + Tag(shard) + ":ev:" + tenant }

// Users is the set of a tenant's users in shard.
func Users(shard int, tenant string) string { return prefix + Tag(shard) + ":users:" + tenant }

// Tenant is the key space of one tenant. Its keys live in the tenant's home
// shard, so a tenant-level change, its audit event and the mails it queues
// are one script.
type Tenant struct {
	id, prefix string
	shard      int
}

// TenantOf returns tenant's key space.
func TenantOf(tenant string) Tenant {
	sh := ShardOf(tenant, "")
	return Tenant{id: tenant, prefix: prefix + Tag(sh) + ":t:" + tenant + ":", shard: sh}
}

// Shard is the tenant's home shard.
func (t Tenant) Shard() int { return t.shard }

// Policy is the tenant's policy document.
func (t Tenant) Policy() string { return t.prefix + "policy" }

// Stats is the tenant's login and user totals and distinct values per level.
func (t Tenant) Stats() string { return t.prefix + "stats" }

// StatsStream is the tenant's stream of statistics batches: what each
// process's flush added to Stats, Counts and Blocked, numbered, so every
// process keeps its copy current without reading them per login.
func (t Tenant) StatsStream() string { return t.prefix + "sx" }

// Counts is the tenant's count hash of a history level.
func (t Tenant) Counts(level string) string { return t.prefix + "c:" + level }

// FailedIP is the window of failed passwords from one client IP.
func (t Tenant) FailedIP(ipHash string) string { return t.prefix + "fip:" + ipHash }

// Reports is the tenant's fraud reports on networks: a hash of
// "<level>:<value hash>" → "<weight>:<unix s>", the weight as of that time.
func (t Tenant) Reports() string { return t.prefix + "rep" }

// Blocked is the tenant's hourly tally of challenged and denied logins.
func (t Tenant) Blocked() string { return t.prefix + "blocked" }

// Tally is the tenant's daily counts for the digest (day as 2006-01-02).
func (t Tenant) Tally(day string) string { return t.prefix + "day:" + day }

// Events is the tenant's audit stream in its home shard.
func (t Tenant) Events() string { return Events(t.shard, t.id) }

// Queue is the job stream of the tenant's home shard.
func (t Tenant) Queue() string { return Queue(t.shard) }

// User is the key space of one user of a tenant. Every key shares the
// user's shard's hash tag.
type User struct {
	tenant, prefix string
	shard          int
}

// UserOf returns the key space of a tenant's user.
func UserOf(tenant, user string) User {
	sh := ShardOf(tenant, user)
	return User{tenant: tenant, shard: sh,
		prefix: prefix + Tag(sh) + ":u:" + tenant + ":" + base64.RawURLEncoding.EncodeToString([]byte(user)) + ":"}
}

// Shard is the user's shard.
func (u User) Shard() int { return u.shard }

// Account is the user's account hash.
func (u User) Account() string { return u.prefix + "a" }

// Meta is the user's history: login count, last place, expiry day and,
// per level, the values he has had with their counts (the layout is the
// store's).
func (u User) Meta() string { return u.prefix + "m" }

// History is the user's history hash of a level as the store kept it
// before the history moved into Meta; the store reads it and folds it in.
func (u User) History(level string) string { return u.prefix + "h:" + level }

// FailedPw is the window of the user's failed passwords.
func (u User) FailedPw() string { return u.prefix + "fp" }

// FailedCh is the window of the user's failed challenges.
func (u User) FailedCh() string { return u.prefix + "fc" }

// OpenChallenges is the user's open challenges, a zset of ids by expiry.
func (u User) OpenChallenges() string { return u.prefix + "ch" }

// Logins indexes the user's kept login records (id → expiry), so an
// erasure can name them all.
func (u User) Logins() string { return u.prefix + "lgs" }

// Attempts is the user's window of code attempts (the wrong-code budget).
func (u User) Attempts() string { return u.prefix + "at" }

// Challenge is a challenge of the user's shard.
func (u User) Challenge(id string) string { return Challenge(u.shard, id) }

// Login is a login record of the user's shard.
func (u User) Login(id string) string { return Login(u.shard, id) }

// Queue is the job stream of the user's shard.
func (u User) Queue() string { return Queue(u.shard) }

// Events is the tenant's audit stream in the user's shard.
func (u User) Events() string { return Events(u.shard, u.tenant) }

// Users is the set of the tenant's users in the user's shard.
func (u User) Users() string { return Users(u.shard, u.tenant) }

// DataKeys are every key holding the user's own data, for erasure, with
// the history hashes of before (one per level risk knows) that a user not
// seen since may still have.
func (u User) DataKeys() []string {
	ks := []string{u.Account(), u.Meta(), u.FailedPw(), u.FailedCh(), u.OpenChallenges(), u.Attempts(), u.Logins()}
	for _, l := range risk.LevelNames() {
		ks = append(ks, u.History(l))
	}
	return ks
}

// Prompt is a hosted prompt's hash (engine.Prompt), in its user's shard.
func Prompt(shard int, id string) string { return prefix + Tag(shard) + ":pr:" + id }

// Exchange is a prompt's exchange code: the tenant and the verified
// result, in the prompt's shard so one script closes the prompt and
// writes it.
func Exchange(shard int, code string) string { return prefix + Tag(shard) + ":px:" + code }
