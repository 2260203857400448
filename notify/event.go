package notify

import "github.com/stepup-auth/stepup/message"

// audience is a bit set of who hears of an event type.
type audience uint8

const (
	toUser audience = 1 << iota
	toManagers
)

// audiences lists every event type the package renders. Its order is the
// order of Types.
var audiences = []struct {
	typ message.EventType
	to  audience
}{
	{message.EvSMSEnrolled, toUser},
	{message.EvTOTPEnabled, toUser},
	{message.EvTOTPReset, toUser},
	{message.EvEmailEnabled, toUser},
	{message.EvPasskeyAdded, toUser},
	{message.EvPasskeyRemoved, toUser},
	{message.EvDisabled, toUser | toManagers},
	{message.EvPhoneChanged, toUser},
	{message.EvEmailChanged, toUser},
	{message.EvBackupRegen, toUser},
	{message.EvBackupUsed, toUser},
	{message.EvDevicesForgotten, toUser},
	{message.EvAdminReset, toUser | toManagers},
	{message.EvModeOff, toUser | toManagers},
	{message.EvLoginDenied, toUser},
	{message.EvPolicyChanged, toManagers},
	{message.EvReport, toManagers},
	{message.EvAlertSMSLimit, toManagers},
	{message.EvAlertEmailLimit, toManagers},
	{message.EvAlertAttemptLimit, toManagers},
	{message.EvAlertKillSwitch, toManagers},
	{message.EvAlertDeliveryFailing, toManagers},
	{message.EvAlertLoginSpike, toManagers},
	{message.EvAlertLoginReported, toManagers},
	{message.EvDailyDigest, toManagers},
}

func audienceOf(t message.EventType) audience {
	for _, a := range audiences {
		if a.typ == t {
			return a.to
		}
	}
	return 0
}

// Types returns every event type the package knows, in a stable order.
func Types() []message.EventType {
	ts := make([]message.EventType, len(audiences))
	for i, a := range audiences {
		ts[i] = a.typ
	}
	return ts
}

// UserFacing reports whether events of type t are mailed to the user they
// concern.
func UserFacing(t message.EventType) bool { return audienceOf(t)&toUser != 0 }

// ManagerFacing reports whether events of type t are mailed to the tenant's
// managers (policy manager_emails). For message.EvDisabled that is meant for
// the disable-all admin action; the engine decides by the event's actor
// whether a single user's own disabling concerns managers.
func ManagerFacing(t message.EventType) bool { return audienceOf(t)&toManagers != 0 }

// Event is the audit event the engine tells notify about (message.Event).
// IP comes masked to its network; Actor is message.ActorUser, message.ActorManager,
// message.ActorOperator or message.ActorSystem.
type Event = message.Event

// Recipient is the user a mail is for.
type Recipient struct {
	Email string `json:"email"`
	// Name is the display name used in the greeting; it may be empty.
	Name string `json:"name,omitempty"`
	// Locale is a BCP 47 tag such as "en" or "en-AU"; unknown locales fall
	// back to English.
	Locale string `json:"locale,omitempty"`
	// TimeZone is an IANA zone such as "Australia/Sydney"; when valid, mails
	// show the local time next to UTC.
	TimeZone string `json:"time_zone,omitempty"`
}

// Sender is who a tenant's mails come from.
type Sender struct {
	// Name is the tenant's sender name, e.g. "Acme".
	Name string `json:"name"`
	// Address is the From address (config mail.from).
	Address string `json:"address"`
}

// Mail is a rendered e-mail, ready for a sender: the message a mail job
// carries plus the address it goes out from.
type Mail struct {
	message.Mail
	FromAddress string `json:"from_address,omitempty"`
}
