package notify

import "time"

// Event types. The engine maps its audit events onto these.
const (
	TypeSMSEnrolled            = "sms_enrolled"
	TypeTOTPEnabled            = "totp_enabled"
	TypeTOTPReset              = "totp_reset"
	TypeEmailFactorEnabled     = "email_factor_enabled"
	TypeTwoFADisabled          = "2fa_disabled"
	TypePhoneChanged           = "phone_changed"
	TypeEmailChanged           = "email_changed"
	TypeBackupCodesRegenerated = "backup_codes_regenerated"
	TypeBackupCodeUsed         = "backup_code_used"
	TypeDevicesForgotten       = "devices_forgotten"
	TypeAdminReset             = "admin_reset"
	TypeTenantModeOff          = "tenant_mode_off"
	TypeLoginDenied            = "login_denied"

	// TypePolicyChanged and the types below go to managers only.
	TypePolicyChanged        = "policy_changed"
	TypeReportReceived       = "report_received"
	TypeAlertSMSLimit        = "alert_sms_limit"
	TypeAlertEmailLimit      = "alert_email_limit"
	TypeAlertAttemptLimit    = "alert_attempt_limit"
	TypeAlertKillSwitch      = "alert_kill_switch"
	TypeAlertDeliveryFailing = "alert_delivery_failing"
	TypeAlertLoginSpike      = "alert_login_spike"
	TypeDailyDigest          = "daily_digest"
)

// Actors: who made a change.
const (
	ActorUser     = "user"
	ActorManager  = "manager"
	ActorOperator = "operator"
	ActorSystem   = "system"
)

// Reasons for TypeDevicesForgotten, in Details["reason"].
const (
	ReasonUser                = "user"
	ReasonPasswordChanged     = "password_changed"
	ReasonSignedOutEverywhere = "signed_out_everywhere"
	ReasonPhoneChanged        = "phone_changed"
	ReasonEmailChanged        = "email_changed"
	ReasonReport              = "report"
)

// audience is a bit set of who hears of an event type.
type audience uint8

const (
	toUser audience = 1 << iota
	toManagers
)

// audiences lists every event type the package renders. Its order is the
// order of Types.
var audiences = []struct {
	typ string
	to  audience
}{
	{TypeSMSEnrolled, toUser},
	{TypeTOTPEnabled, toUser},
	{TypeTOTPReset, toUser},
	{TypeEmailFactorEnabled, toUser},
	{TypeTwoFADisabled, toUser | toManagers},
	{TypePhoneChanged, toUser},
	{TypeEmailChanged, toUser},
	{TypeBackupCodesRegenerated, toUser},
	{TypeBackupCodeUsed, toUser},
	{TypeDevicesForgotten, toUser},
	{TypeAdminReset, toUser | toManagers},
	{TypeTenantModeOff, toUser | toManagers},
	{TypeLoginDenied, toUser},
	{TypePolicyChanged, toManagers},
	{TypeReportReceived, toManagers},
	{TypeAlertSMSLimit, toManagers},
	{TypeAlertEmailLimit, toManagers},
	{TypeAlertAttemptLimit, toManagers},
	{TypeAlertKillSwitch, toManagers},
	{TypeAlertDeliveryFailing, toManagers},
	{TypeAlertLoginSpike, toManagers},
	{TypeDailyDigest, toManagers},
}

func audienceOf(t string) audience {
	for _, a := range audiences {
		if a.typ == t {
			return a.to
		}
	}
	return 0
}

// Types returns every event type the package knows, in a stable order.
func Types() []string {
	ts := make([]string, len(audiences))
	for i, a := range audiences {
		ts[i] = a.typ
	}
	return ts
}

// UserFacing reports whether events of type t are mailed to the user they
// concern.
func UserFacing(t string) bool { return audienceOf(t)&toUser != 0 }

// ManagerFacing reports whether events of type t are mailed to the tenant's
// managers (policy manager_emails). For TypeTwoFADisabled that is meant for
// the disable-all admin action; the engine decides by the event's actor
// whether a single user's own disabling concerns managers.
func ManagerFacing(t string) bool { return audienceOf(t)&toManagers != 0 }

// Event is something that happened to a user's two-factor settings or to a
// tenant, as the engine tells it to notify.
type Event struct {
	ID     string    `json:"id"`
	Tenant string    `json:"tenant"`
	User   string    `json:"user,omitempty"`
	Type   string    `json:"type"`
	At     time.Time `json:"at"`
	// Actor is who made the change: ActorUser, ActorManager, ActorOperator
	// or ActorSystem.
	Actor string `json:"actor,omitempty"`

	// Where the change came from. IP is the full address; mails show it
	// masked. Country is an ISO 3166-1 alpha-2 code. Browser and OS are
	// labels of the safe vocabulary (internal/uafamily, "Chrome 124");
	// anything else renders as "Unknown browser" or "Other".
	IP      string `json:"ip,omitempty"`
	Country string `json:"country,omitempty"`
	Browser string `json:"browser,omitempty"`
	OS      string `json:"os,omitempty"`

	// Details holds the type-specific facts; the package documentation lists
	// the keys.
	Details map[string]string `json:"details,omitempty"`
}

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

// Mail is a rendered e-mail, ready for a sender.
type Mail struct {
	To          []string `json:"to"`
	FromName    string   `json:"from_name,omitempty"`
	FromAddress string   `json:"from_address,omitempty"`
	Subject     string   `json:"subject"`
	Text        string   `json:"text"`
	HTML        string   `json:"html,omitempty"`
}
