package engine

import (
	"time"

	"github.com/stepup-auth/stepup/message"
)

// UserRef names one user of one tenant.
type UserRef struct {
	Tenant string
	User   string
}

// Channel is a way to deliver or produce a code.
type Channel string

// The channels.
const (
	ChannelSMS   Channel = "sms"
	ChannelTOTP  Channel = "totp"
	ChannelEmail Channel = "email"
	// ChannelPasskey is a WebAuthn credential: no code, an assertion made
	// on the hosted prompt pages (passkey.go).
	ChannelPasskey Channel = "passkey"
)

// Profile is what the host app tells us about a user, for notifications.
type Profile struct {
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Locale      string `json:"locale,omitempty"`
	TimeZone    string `json:"time_zone,omitempty"`
}

// PhoneFactor is an enrolled SMS factor; the number is sealed at rest.
type PhoneFactor struct {
	Sealed  []byte    `json:"sealed"`
	Masked  string    `json:"masked"`
	Country string    `json:"country"`
	AddedAt time.Time `json:"added_at"`
}

// TOTPFactor is an enrolled authenticator app; the secret is sealed.
type TOTPFactor struct {
	Sealed   []byte    `json:"sealed"`
	LastStep int64     `json:"last_step"`
	AddedAt  time.Time `json:"added_at"`
}

// EmailFactor is e-mail as a code channel, to the profile's address.
type EmailFactor struct {
	AddedAt time.Time `json:"added_at"`
}

// Factors are a user's enrolled second factors.
type Factors struct {
	SMS   *PhoneFactor `json:"sms,omitempty"`
	TOTP  *TOTPFactor  `json:"totp,omitempty"`
	Email *EmailFactor `json:"email,omitempty"`
	// Passkeys are the user's WebAuthn credentials (passkey.go).
	Passkeys []Passkey `json:"passkeys,omitempty"`
}

// Any reports whether the user has any factor.
func (f Factors) Any() bool {
	return f.SMS != nil || f.TOTP != nil || f.Email != nil || len(f.Passkeys) > 0
}

// Has reports whether the factor of channel c is enrolled.
func (f Factors) Has(c Channel) bool {
	switch c {
	case ChannelSMS:
		return f.SMS != nil
	case ChannelTOTP:
		return f.TOTP != nil
	case ChannelEmail:
		return f.Email != nil
	case ChannelPasskey:
		return len(f.Passkeys) > 0
	}
	return false
}

// AllChannels lists every channel, in the default order of preference.
var AllChannels = []Channel{ChannelTOTP, ChannelSMS, ChannelEmail, ChannelPasskey}

// Channels lists the enrolled channels.
func (f Factors) Channels() []Channel {
	var cs []Channel
	for _, c := range AllChannels {
		if f.Has(c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// Device is a remembered device.
type Device struct {
	ID         string    `json:"id"`
	DeviceHash string    `json:"device_hash"` // keyed hash of the host's device_id
	TokenHash  string    `json:"token_hash"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	ExpiresAt  time.Time `json:"expires_at"`
	Browser    string    `json:"browser,omitempty"`
	OS         string    `json:"os,omitempty"`
	Country    string    `json:"country,omitempty"`
	// LoginID is the login whose verification remembered the device, so a
	// fraud verdict on that login forgets it.
	LoginID string `json:"login_id,omitempty"`
}

// Account is the stored 2FA state of one user, changed only through Commit
// with optimistic concurrency on Version.
type Account struct {
	Version     int64     `json:"-"`
	Exists      bool      `json:"-"`
	Profile     Profile   `json:"profile"`
	Group       string    `json:"group,omitempty"`
	Factors     Factors   `json:"factors"`
	BackupCodes []string  `json:"backup_codes,omitempty"` // keyed hashes
	Devices     []Device  `json:"devices,omitempty"`
	PhoneChange string    `json:"phone_change,omitempty"` // challenge id of the flow in flight
	EmailChange string    `json:"email_change,omitempty"` // challenge id of the e-mail change in flight
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Purpose says what verifying a challenge does.
type Purpose string

// The purposes of challenges.
const (
	PurposeLogin       Purpose = "login"
	PurposeEnrollSMS   Purpose = "enroll_sms"
	PurposeEnrollTOTP  Purpose = "enroll_totp"
	PurposeEnrollEmail Purpose = "enroll_email"
	PurposeStepUp      Purpose = "step_up"          // proves the current factor before a new one is attached
	PurposePhoneOld    Purpose = "phone_change_old" // step one of a phone change
	PurposePhoneNew    Purpose = "phone_change_new" // step two
	PurposeEmailOld    Purpose = "email_change_old" // step one of an e-mail change: a current factor
	PurposeEmailNew    Purpose = "email_change_new" // step two: a code to the new address
	PurposeDisable     Purpose = "disable"
	PurposeBackupCodes Purpose = "backup_codes"
	// PurposeManage proves a current factor before the hosted settings
	// page (prompt.go) shows and changes the user's factors.
	PurposeManage Purpose = "manage"
)

// Status is where a challenge is in its life.
type Status string

// The challenge statuses.
const (
	StatusPending   Status = "pending"
	StatusVerified  Status = "verified"
	StatusExpired   Status = "expired"
	StatusLocked    Status = "locked"
	StatusCancelled Status = "cancelled"

	// StatusMissing is no stored status: it is the store's answer for a
	// challenge that does not exist (any more).
	StatusMissing Status = "missing"
)

// Challenge is one request for a code.
type Challenge struct {
	ID          string                `json:"id"`
	Tenant      string                `json:"tenant"`
	User        string                `json:"user"`
	Purpose     Purpose               `json:"purpose"`
	Channel     Channel               `json:"channel"`
	Destination string                `json:"destination"` // masked
	CodeHash    string                `json:"-"`
	Status      Status                `json:"status"`
	CreatedAt   time.Time             `json:"created_at"`
	ExpiresAt   time.Time             `json:"expires_at"`
	Attempts    int                   `json:"attempts"`
	MaxAttempts int                   `json:"max_attempts"`
	Sends       int                   `json:"sends"`
	LastSentAt  time.Time             `json:"last_sent_at"`
	Delivery    message.DeliveryState `json:"delivery"`
	DeliveryErr string                `json:"delivery_error"`
	LoginID     string                `json:"login_id,omitempty"`
	Data        ChallengeData         `json:"-"` // purpose-specific, sealed where secret
}

// ChallengeData is what a challenge carries for its purpose. Secrets are
// sealed (hex of the engine's boxes); the JSON names are the stored ones.
type ChallengeData struct {
	IP     string  `json:"ip,omitempty"` // the client that started it, for the limits and the audit
	UA     string  `json:"ua,omitempty"`
	To     string  `json:"to,omitempty"`     // sealed: where its codes go
	Phone  string  `json:"phone,omitempty"`  // sealed: the new phone number (enrolment, phone change)
	Email  string  `json:"email,omitempty"`  // sealed: the new e-mail address (e-mail change)
	Secret string  `json:"secret,omitempty"` // sealed: the new authenticator secret
	Then   Purpose `json:"then,omitempty"`   // what a verified step-up unlocks
	State  string  `json:"fp,omitempty"`     // fingerprint of the account state it was made for (stale.go)
}

// clientData is the data of a challenge started by actor: its client.
func clientData(a Actor) ChallengeData { return ChallengeData{IP: a.IP, UA: a.UserAgent} }

// client is the part of d that a follow-up challenge carries over.
func (d ChallengeData) client() ChallengeData { return ChallengeData{IP: d.IP, UA: d.UA} }

// Job is a message for the delivery queue, sealed by the engine.
type Job struct {
	Kind      message.Kind
	Challenge string // challenge id whose code it carries, or ""
	Payload   []byte // sealed
	// User is the keyed hash of the user the job is addressed to (his
	// per-user limit subject, never his id), or "" for a tenant's job
	// (a manager's mail): an erasure removes his dead-lettered and
	// retrying jobs by it.
	User string
}

// Event is an audit event (message.Event, shared with notify).
type Event = message.Event

// Commit is one atomic change of a user's state: the account document
// (compare-and-set on Version), challenge state changes, new challenges, the
// audit events and the queued messages, all applied together or not at all.
type Commit struct {
	// Version is the account version the change was computed from; the
	// commit fails with ErrConflict if the account changed since. -1 skips
	// the check (the commit does not touch the account).
	Version int64
	Account *Account // new account state, nil = unchanged

	// Challenge, if set, must still be pending (and unexpired at Now) and is
	// moved to ChallengeStatus atomically with the rest.
	Challenge       string
	ChallengeStatus Status
	Now             time.Time

	NewChallenges    []Challenge
	CancelChallenges []string
	Events           []Event
	Jobs             []Job
	// Erase removes the user's account, history and devices, and deletes
	// (rather than cancels) the challenges of CancelChallenges, which name
	// him and hold his destination. It fails with ErrConflict when a
	// challenge is open that CancelChallenges does not name, so an erasure
	// always removes every challenge of his still kept.
	Erase bool
	// EraseUser, with Erase, is the user's keyed hash (Job.User): his
	// dead-lettered and retrying jobs that carry it go too.
	EraseUser string
	// EraseLogins, with Erase, are the user's kept login records to delete;
	// like CancelChallenges it must name them all, or the erasure is a
	// conflict.
	EraseLogins    []string
	ForceChallenge *bool
	GraceReset     bool

	// Learn, if set, teaches the user's history this verified login in the
	// same atomic write, once per login id: nothing when its record is gone
	// or already learned, or when the commit fails. The store then adds the
	// login to the tenant-wide counts in a separate statistics write.
	Learn    *LoginRecord
	LearnOpt LearnOptions
}

// LoginRecord is what evaluate remembers of a login: for its challenge's
// verification and, for every evaluated login, for a verdict
// (Logins.Feedback) within the feedback window.
type LoginRecord struct {
	ID       string       `json:"id"`
	Tenant   string       `json:"tenant"`
	User     string       `json:"user"`
	At       time.Time    `json:"at"`
	Decision Decision     `json:"decision"`
	Levels   []LevelValue `json:"values"` // one per feature level
	Place    *Place       `json:"place,omitempty"`
	Device   DeviceInfo   `json:"device"`
	IP       string       `json:"ip_masked"`
	Score    int          `json:"score"`
	First    bool         `json:"first"` // the user had no history
	// Level is the score's risk level under the thresholds of the time,
	// Signals the names of the signals that scored (risk.Signal*): what
	// the console shows of a user's recent logins.
	Level   string   `json:"lvl,omitempty"`
	Signals []string `json:"sig,omitempty"`
}

// LevelValue is one feature level of a login: its value's keyed hash, as
// stored in the user's history, and the bucket that counts it among the
// tenant's logins.
type LevelValue struct {
	Level  string `json:"l"`
	Hash   string `json:"h"`
	Bucket string `json:"b"`
}

// Place is a login's coarse location.
type Place struct {
	At      time.Time `json:"at"`
	Country string    `json:"cc,omitempty"`
	Lat     float64   `json:"lat,omitempty"`
	Lon     float64   `json:"lon,omitempty"`
	HasLoc  bool      `json:"loc,omitempty"`
}

// DeviceInfo describes a login's client for the device list and mails.
type DeviceInfo struct {
	DeviceHash string `json:"dh,omitempty"`
	Browser    string `json:"b,omitempty"`
	OS         string `json:"o,omitempty"`
	Country    string `json:"c,omitempty"`
}
