package message

import "time"

// EventType is the type of an audit event, and of the mails it triggers.
type EventType string

// The event types.
const (
	EvSMSEnrolled      EventType = "sms_enrolled"
	EvTOTPEnabled      EventType = "totp_enabled"
	EvTOTPReset        EventType = "totp_reset"
	EvEmailEnabled     EventType = "email_factor_enabled"
	EvDisabled         EventType = "2fa_disabled"
	EvPhoneChanged     EventType = "phone_changed"
	EvEmailChanged     EventType = "email_changed"
	EvBackupRegen      EventType = "backup_codes_regenerated"
	EvBackupUsed       EventType = "backup_code_used"
	EvDevicesForgotten EventType = "devices_forgotten"
	EvAdminReset       EventType = "admin_reset"
	EvModeOff          EventType = "tenant_mode_off"
	EvLoginDenied      EventType = "login_denied"
	EvPolicyChanged    EventType = "policy_changed"
	EvReport           EventType = "report_received"
	EvUserErased       EventType = "user_erased"
	EvHistoryImported  EventType = "history_imported"
	EvPasskeyAdded     EventType = "passkey_added"
	EvPasskeyRemoved   EventType = "passkey_removed"
	// A manager signed in to or out of the web console (a stolen manager
	// key shows up here).
	EvConsoleSignIn  EventType = "console_signed_in"
	EvConsoleSignOut EventType = "console_signed_out"
	// EvPasskeyCounter is a passkey refused because its signature counter
	// went backwards (a copied credential): audit only.
	EvPasskeyCounter EventType = "passkey_counter_regressed"
	// EvLoginReported is the host app's verdict ("fraud" or "legit", in
	// Details["verdict"]) on an evaluated login.
	EvLoginReported EventType = "login_reported"
	EvDailyDigest   EventType = "daily_digest"

	// EvLoginMonitored is a login monitor mode allowed that enforcement
	// would not have: details would_decide, score, signals. Audit only:
	// it mails no one (the managers see the count in the daily digest).
	EvLoginMonitored EventType = "login_monitored"

	// Alerts to a tenant's managers, at most one of a type per hour.
	EvAlertSMSLimit        EventType = "alert_sms_limit"
	EvAlertEmailLimit      EventType = "alert_email_limit"
	EvAlertAttemptLimit    EventType = "alert_attempt_limit"
	EvAlertKillSwitch      EventType = "alert_kill_switch"
	EvAlertDeliveryFailing EventType = "alert_delivery_failing"
	EvAlertLoginSpike      EventType = "alert_login_spike"
	EvAlertLoginReported   EventType = "alert_login_reported"
)

// ActorKind is who made a change.
type ActorKind string

// The actor kinds.
const (
	ActorUser     ActorKind = "user"
	ActorManager  ActorKind = "manager"
	ActorOperator ActorKind = "operator"
	ActorSystem   ActorKind = "system"
)

// Reason is why a user's remembered devices were forgotten, in an
// EvDevicesForgotten event's Details["reason"].
type Reason string

// The reasons.
const (
	ReasonUser                Reason = "user"
	ReasonPasswordChanged     Reason = "password_changed"
	ReasonSignedOutEverywhere Reason = "signed_out_everywhere"
	ReasonPhoneChanged        Reason = "phone_changed"
	ReasonEmailChanged        Reason = "email_changed"
	ReasonReport              Reason = "report"
	// ReasonLoginReported: the host app reported one of the user's logins
	// as fraud (POST /v1/logins/{id}/feedback).
	ReasonLoginReported Reason = "login_reported"
)

// Event is an audit event: something that happened to a user's two-factor
// settings or to a tenant. It is stored in the audit log and carried by a
// Notice.
type Event struct {
	ID     string    `json:"id"`
	Tenant string    `json:"tenant"`
	User   string    `json:"user_id,omitempty"`
	Type   EventType `json:"type"`
	At     time.Time `json:"at"`
	Actor  ActorKind `json:"actor"`
	// ActorLabel is the label of the manager key the change was made with,
	// through the API or the console.
	ActorLabel string `json:"actor_label,omitempty"`
	// Where the change came from: IP is masked (203.0.113.x), Country an
	// ISO 3166-1 alpha-2 code. Browser and OS are labels of the safe
	// vocabulary (internal/uafamily, "Chrome 124"); anything else renders as
	// "Unknown browser" or "Other".
	IP      string `json:"ip,omitempty"`
	Country string `json:"country,omitempty"`
	Browser string `json:"browser,omitempty"`
	OS      string `json:"os,omitempty"`
	// Details holds the type-specific facts.
	Details map[string]string `json:"details,omitempty"`
}
