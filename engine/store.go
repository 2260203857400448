package engine

import (
	"context"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// The store interfaces below are the engine's persistence, declared by
// the flow that uses each, as small as that flow needs. store/redisstore
// implements them all (Store in engine.go joins them); store/storetest
// holds the conformance suite. Every method is one atomic operation;
// methods touching one user stay in that user's shard.

// coreStore is what every flow may need: cached tenant and policy reads,
// rate limits, alerts and the digest's tallies.
type coreStore interface {
	Tenant(ctx context.Context, id string) (Tenant, bool, error)
	// Policy returns the tenant's stored policy document (nil if none).
	Policy(ctx context.Context, tenant string) ([]byte, error)
	// Allow takes one unit of each limit (in one round trip) and names the
	// first exhausted one ("" when all allow), with how long to wait.
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
	// Commit applies c atomically or returns ErrConflict (account version
	// changed) or a challenge error (ErrChallengeNotPending).
	Commit(ctx context.Context, u UserRef, c Commit) error
}

// LoginQuery says what LoadLogin must read.
type LoginQuery struct {
	Values  []LevelValue
	Buckets []string // tenant count buckets, one per value
	IPHash  string
	Now     time.Time
	Window  time.Duration // velocity window
}

// LoginState is everything evaluate needs from storage.
type LoginState struct {
	Account        Account
	UserLogins     int64
	Last           *Place
	UserCounts     []int64 // per queried value
	FailedPwUser   int64
	FailedChUser   int64
	GraceEpoch     string
	GraceUsed      int
	Force          bool
	Policy         []byte
	TenantLogins   int64
	TenantUsers    int64
	TenantCounts   []int64 // per queried bucket
	TenantDistinct map[string]int64
	FailedIPUsers  int64
}

// LoginWrite is what SaveLogin stores.
type LoginWrite struct {
	Record     LoginRecord
	RecordTTL  time.Duration
	Learn      bool
	LearnOpt   LearnOptions
	GraceEpoch string  // non-empty: count one grace login in this epoch
	Commit     *Commit // challenge creation, events and jobs of this login
	// CountBlocked counts the login in the tenant's hourly tally of
	// challenged and denied logins (for spike alerts).
	CountBlocked bool
}

// LoginSaved is what SaveLogin reports back.
type LoginSaved struct {
	// Blocked is this hour's tally of challenged and denied logins and
	// Baseline the hourly average of the day before (with CountBlocked).
	Blocked  int64
	Baseline float64
}

// LearnOptions bound the history.
type LearnOptions struct {
	HistorySize int
	HistoryTTL  time.Duration
	Buckets     []string
	NewUser     bool
}

// Failure is one failed password or challenge.
type Failure struct {
	Kind   string // "password" or "challenge"
	IPHash string
	At     time.Time
	Window time.Duration
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
}

// EventQuery filters the audit log.
type EventQuery struct {
	User   string
	Type   message.EventType
	Since  time.Time
	Limit  int
	Cursor string
}
