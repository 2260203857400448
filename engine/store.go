package engine

import (
	"context"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// The store interfaces below are the engine's persistence, declared by
// the flow that uses each, as small as that flow needs. store/redisstore
// implements them all (Store in engine.go joins them); store/storetest
// holds the conformance suite. Every method that changes one user's state
// is one atomic operation in that user's shard; reads and rate limits may
// span slots in one pipelined round trip. Two methods add a
// tenant-wide statistics write to their atomic user write, because the
// tenant's counts live in another shard: SaveLogin (in the same round
// trip) and a Commit that teaches a verified login (after it).

// coreStore is what every flow may need: cached tenant and policy reads,
// rate limits, alerts and the digest's tallies.
type coreStore interface {
	Tenant(ctx context.Context, id string) (Tenant, bool, error)
	// Policy returns the tenant's stored policy document (nil if none).
	Policy(ctx context.Context, tenant string) ([]byte, error)
	// Allow takes one unit of each limit and names the first exhausted one
	// ("" when all allow), with how long to wait: the caller's limits in one
	// round trip, then, only if they all allowed, the Shared ones in another.
	Allow(ctx context.Context, limits []Limit, now time.Time) (tripped string, retryAfter time.Duration, err error)
	// UseToken marks a single-use token as used; false if it already was.
	UseToken(ctx context.Context, hash string, ttl time.Duration) (bool, error)
	// AppendEvent records a tenant-level audit event (not tied to one user)
	// and queues its messages.
	AppendEvent(ctx context.Context, ev Event, jobs []Job) error
	// Count adds to a tenant's daily tally (for the digest).
	Count(ctx context.Context, tenant, day string, fields map[string]int64) error
	// Placement returns the opaque tag (two hex characters) that new
	// challenge and login ids of u carry, so the store finds their records
	// from the id alone. The engine splices it into ids and never reads it.
	Placement(u UserRef) string
}

// accountStore reads and changes one user's account.
type accountStore interface {
	// Account returns a user's account; Exists is false for a new user.
	Account(ctx context.Context, u UserRef) (Account, error)
	committer
}

// committer changes one user's state.
type committer interface {
	// Commit applies c atomically or returns ErrConflict (account version
	// changed) or a challenge error (ErrChallengeNotPending). With c.Learn
	// it then adds the learned login to the tenant's counts.
	Commit(ctx context.Context, u UserRef, c Commit) error
}

// LoginQuery says what LoadLogin must read.
type LoginQuery struct {
	Levels []LevelValue // the login's feature levels, each counted in LoginState.Levels
	IPHash string
	Now    time.Time
	Window time.Duration // velocity window
	// Networks are the login's network levels (prefix, AS) whose fraud
	// reports LoginState.Reports returns, read with the tenant's side.
	Networks []LevelValue
}

// LoginState is everything evaluate needs from storage.
type LoginState struct {
	Account       Account
	UserLogins    int64
	Last          *Place
	FailedPwUser  int64
	FailedChUser  int64
	GraceEpoch    string
	GraceUsed     int
	Force         bool
	Policy        []byte
	TenantLogins  int64
	TenantUsers   int64
	FailedIPUsers int64
	Levels        []LevelCount // one per queried level, in the query's order
	// Reports are the fraud reports on the queried networks (only those
	// with one), as stored: the engine decays them to now.
	Reports []NetworkReport
	// HistoryVersion is the store's version of the user's history when
	// read, -1 when the store has none to offer (see LoginWrite.Seen).
	HistoryVersion int64
}

// NetworkReport is the weight fraud reports gave a network level's value
// at At; it halves every Options.ReportHalfLife after.
type NetworkReport struct {
	Level  string
	Weight float64
	At     time.Time
}

// LevelCount is what the history and the tenant's counts say of one
// queried feature level.
type LevelCount struct {
	Level string
	// UserCount is how many of the user's learned logins had the value.
	UserCount int64
	// UserDistinct is how many new values the user's learned logins
	// brought at the level (at least the distinct values his history
	// holds): the numerator of his missing mass there.
	UserDistinct int64
	// TenantCount is the count of the value's bucket among the tenant's
	// learned logins.
	TenantCount int64
	// TenantDistinct is how many of the level's buckets are in use.
	TenantDistinct int64
}

// LoginWrite is what SaveLogin stores. The user's side (record, grace
// login, learning and Commit) is one atomic write; the tenant's side (its
// tallies and, when learned, its counts) is a second write in the same
// round trip, in another slot, applied whatever the first one's outcome.
type LoginWrite struct {
	// Record is the login; its Decision is counted in the tenant's daily
	// tally and its levels' buckets in the tenant's counts when learned.
	Record    LoginRecord
	RecordTTL time.Duration // > 0: keep the record this long, for its verification and a verdict
	Learn     bool          // teach the history and the tenant's counts this login
	LearnOpt  LearnOptions
	// Seen, if not nil, is what LoadLogin read for this login (its
	// UserLogins, Levels in Record.Levels' order, and HistoryVersion). A
	// store may then learn the login from those counts, without reading
	// the history again, when the history is still at that version; it
	// learns from the history as it is otherwise.
	Seen *LoginState
	// GraceEpoch, if not empty, counts one grace login in this epoch.
	GraceEpoch string
	// Commit is the login's challenge or denial event with their jobs. It
	// is applied with the record, grace and learning or, when it fails
	// (ErrConflict, a challenge error), none of them is.
	Commit *Commit
	// CountBlocked counts the login in the tenant's hourly tally of
	// challenged and denied logins (for spike alerts).
	CountBlocked bool
	// Limits are the send limits the code of the Commit's one new
	// challenge takes, in the same round trip as the write (each limit is
	// its own slot, so the write cannot wait for them): each limit
	// records its verdict for the challenge, and the code's message is
	// sent only once every verdict allowed it. LoginSaved reports a
	// refusal. As in Allow, the Shared limits are given back when one of
	// the caller's own refused.
	Limits []Limit
}

// LoginSaved is what SaveLogin reports back.
type LoginSaved struct {
	// Blocked is this hour's tally of challenged and denied logins and
	// Baseline the hourly average of the day before (with CountBlocked).
	Blocked  int64
	Baseline float64
	// Refused names the first of the write's Limits that refused its
	// code (the caller's own before the shared ones), "" when all
	// allowed; RetryAfter is when it allows again. The challenge is
	// written either way: its message is never sent.
	Refused    string
	RetryAfter time.Duration
}

// LearnOptions bound the history. Whether the learned login is the user's
// first is the record's First.
type LearnOptions struct {
	HistorySize int
	HistoryTTL  time.Duration
}

// FailureKind is what failed: a password (reported by the host) or a code.
type FailureKind string

// The failure kinds.
const (
	FailedPassword  FailureKind = "password"
	FailedChallenge FailureKind = "challenge"
)

// Failure is one failed password or challenge.
type Failure struct {
	Kind   FailureKind
	IPHash string
	// UserHash, with IPHash, is the user's member in the IP's window (a
	// keyed hash: that window is the tenant's, and an erasure cannot find
	// the user in it, so it must not name him).
	UserHash string
	At       time.Time
	Window   time.Duration
}

// AttemptBudget caps a user's code attempts across all the user's
// challenges: at most Max in any Window (Max 0: no cap).
type AttemptBudget struct {
	Max    int
	Window time.Duration
}

// Limit is one rate limit bucket: what is limited (Scope, such as "sms:u"),
// for whom (a tenant's Subject, often a hash); the store names its key.
type Limit struct {
	Scope   string
	Tenant  string
	Subject string
	PerHour int    // units per Period (the name predates Period)
	Name    string // for the error and the alert: user, number, country, ip
	// Period is the limit's window; zero means an hour.
	Period time.Duration
	// Shared marks a limit all of a tenant's users draw from (the
	// destination country, the tenant): it is taken only when every limit
	// keyed on the caller (user, number, address, client IP) allowed the
	// request, so one abuser who spent his own limits cannot go on
	// draining what everyone else needs.
	Shared bool
}

// EventQuery filters the audit log.
type EventQuery struct {
	User   string
	Type   message.EventType
	Since  time.Time
	Limit  int
	Cursor string
}
