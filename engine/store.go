package engine

import (
	"context"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Store is the persistence the engine needs. store/redisstore implements it
// on Redis (and, for the embedded default, on an in-process miniredis);
// store/storetest holds the conformance suite.
//
// Every method is one atomic operation. Methods touching one user stay in
// that user's slot.
type Store interface {
	PutTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, bool, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	PutKey(ctx context.Context, k Key, hash string) error
	KeyByHash(ctx context.Context, hash string) (Key, bool, error)
	Keys(ctx context.Context, tenant string) ([]Key, error)
	DeleteKey(ctx context.Context, tenant, id string) (bool, error)

	// Policy returns the tenant's stored policy document (nil if none).
	Policy(ctx context.Context, tenant string) ([]byte, error)
	// PutPolicy replaces the policy document prev (nil: none stored) by
	// doc, with its audit event and mails, or returns ErrConflict when the
	// stored document is no longer prev.
	PutPolicy(ctx context.Context, tenant string, prev, doc []byte, ev Event, jobs []Job) error

	// Account returns a user's account; Exists is false for a new user.
	Account(ctx context.Context, u UserRef) (Account, error)
	// Commit applies c atomically or returns ErrConflict (account version
	// changed) or a challenge error (ErrChallengeNotPending).
	Commit(ctx context.Context, u UserRef, c Commit) error
	// Users calls fn for every user of the tenant that has an account.
	Users(ctx context.Context, tenant string, fn func(user string) error) error

	// LoadLogin reads everything the score needs in one round trip.
	LoadLogin(ctx context.Context, u UserRef, q LoginQuery) (LoginState, error)
	// SaveLogin writes what an evaluation produced in one round trip.
	SaveLogin(ctx context.Context, u UserRef, w LoginWrite) (LoginSaved, error)
	// Login returns a login record kept for its challenge.
	Login(ctx context.Context, id string) (LoginRecord, bool, error)
	// Learn teaches the history a verified login (idempotent per login id).
	Learn(ctx context.Context, u UserRef, rec LoginRecord, opt LearnOptions) error
	// RecordFailure counts a failed password (user and IP windows) or a
	// failed challenge (user window).
	RecordFailure(ctx context.Context, u UserRef, f Failure) error

	// AttemptChallenge counts one verification attempt and returns the
	// challenge as it is after counting. It returns ErrChallengeNotFound for
	// an unknown id or another tenant's challenge.
	AttemptChallenge(ctx context.Context, tenant, id string, now time.Time) (Challenge, error)
	// OpenChallenges lists the ids of a user's unexpired challenges.
	OpenChallenges(ctx context.Context, u UserRef, now time.Time) ([]string, error)
	// Challenge reads a challenge without counting an attempt.
	Challenge(ctx context.Context, tenant, id string) (Challenge, bool, error)
	// Rekey gives a pending challenge a new code hash, counts a send and
	// queues its message, within the cooldown and the send cap.
	Rekey(ctx context.Context, tenant, id, codeHash string, now time.Time, cooldown time.Duration, maxSends int, job Job) error

	// Allow takes one unit of each limit (in one round trip) and names the
	// first exhausted one ("" when all allow), with how long to wait.
	Allow(ctx context.Context, limits []Limit, now time.Time) (tripped string, retryAfter time.Duration, err error)

	// AppendEvent records a tenant-level audit event (not tied to one user)
	// and queues its messages.
	AppendEvent(ctx context.Context, ev Event, jobs []Job) error
	// Events pages through the tenant's audit log, newest first.
	Events(ctx context.Context, tenant string, q EventQuery) ([]Event, string, error)

	// Count adds to a tenant's daily tally (for the digest); Tally reads it.
	Count(ctx context.Context, tenant, day string, fields map[string]int64) error
	Tally(ctx context.Context, tenant, day string) (map[string]int64, error)
	// Enqueue queues messages that record no change (the digest).
	Enqueue(ctx context.Context, tenant string, jobs []Job) error

	// Placement returns the opaque tag (two hex characters) that new
	// challenge and login ids of u carry, so the store finds their records
	// from the id alone. The engine splices it into ids and never reads it.
	Placement(u UserRef) string

	// UseToken marks a single-use token as used; false if it already was.
	UseToken(ctx context.Context, hash string, ttl time.Duration) (bool, error)

	// SetDelivery records a provider's delivery report on the challenge
	// whose message had that provider id (no-op if none).
	SetDelivery(ctx context.Context, providerID string, status message.DeliveryState, errorCode string) error

	Ping(ctx context.Context) error
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

// Limit is one rate limit bucket: what is limited (Scope, such as "sms:u"),
// for whom (a tenant's Subject, often a hash); the store names its key.
type Limit struct {
	Scope   string
	Tenant  string
	Subject string
	PerHour int
	Name    string // for the error and the alert: user, number, country, ip
}

// EventQuery filters the audit log.
type EventQuery struct {
	User   string
	Type   string
	Since  time.Time
	Limit  int
	Cursor string
}
