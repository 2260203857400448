// Package notify decides what to tell whom when a user's two-factor settings
// change, and renders it into e-mails: plain text and HTML, per locale, with
// the tenant's sender name.
//
// The engine queues a message.Notice for every audit event that is mailed;
// the dispatcher (internal/dispatch) takes it off the delivery queue and asks
// a [Renderer] for the user's mail ([Renderer.UserMail]) or, for admin
// actions, alerts and the digest, the managers' mail ([Renderer.ManagerMail]).
// [Event] is message.Event and the event types, actors and reasons are
// message's; this package owns only which audiences a type has
// ([UserFacing], [ManagerFacing], [Types]) and how each is worded.
//
// Rendering is pure: the package does no I/O beyond reading its embedded
// templates, and it never sends. Sending happens off the request path, through
// the durable delivery queue and a sender such as notify/smtp or
// notify/console.
//
// # Privacy
//
// A mail never shows a full IP address: [Event].IP is masked to its network
// (203.0.113.x). Phone numbers are expected masked by the engine
// ("+61 ••••• ••156"); a value that still looks like a full number is masked
// again here, so a mistake upstream does not leak it. HTML output is produced
// by html/template, so everything taken from an event, a recipient or a sender
// is escaped.
//
// # Templates
//
// Templates are embedded from templates/<locale>/. Each locale has a
// layout.txt and a layout.html defining the "user" and "manager" frames, and
// per event type three files: <type>.subject.txt, <type>.txt and <type>.html.
// An event type that goes to both users and managers has its managers'
// variant under <type>.manager.*. A locale may be partial: every file it lacks
// is taken from "en", and an unknown locale ("fr-CA" with no "fr-ca" or "fr"
// directory) falls back to "en" entirely. A body file may override the layout's
// "advice" block with {{define "advice"}}…{{end}}.
//
// # Details
//
// [Event].Details carries the type-specific facts, all strings:
//
//	channel            sms | totp | email
//	phone              masked phone number of the factor
//	old_phone          masked number before a change (phone_changed)
//	new_phone          masked number after a change (phone_changed)
//	old_email          masked address before a change (email_changed)
//	new_email          masked address after a change (email_changed)
//	confirmed          email_changed: "factor" when the user proved a factor
//	                   and the new address; absent for a user without 2FA
//	email_factor       email_changed: "yes" when codes by e-mail move too
//	email              (masked) address of the e-mail factor
//	reason             devices_forgotten: user | password_changed |
//	                   signed_out_everywhere | phone_changed |
//	                   email_changed | report | login_reported;
//	                   admin actions: the manager's free text;
//	                   login_denied, alerts: words a person understands
//	count              devices forgotten, backup codes made, users affected,
//	                   SMS sent in the window …
//	remaining          backup codes left (backup_code_used)
//	used_for           backup_code_used: "change" when the code confirmed a
//	                   change, not a sign-in (absent for a sign-in)
//	group              the user group an admin action was limited to
//	by                 managers' mails: which key or person acted
//	before, after      policy_changed: the policy as JSON before and after
//	limit, max, window, country, prefix, until, provider, failures,
//	last_error, dead_letters, baseline, network
//	                   alert facts (see the alert templates); last_error is
//	                   an error class (delivery.ErrorClass: provider_rejected,
//	                   invalid_number, recipient_rejected, timeout,
//	                   auth_failed, unavailable), never a provider's text
//	reported_type, reported_at
//	                   report_received: the event the user disowned
//	date, logins, allowed, challenged, denied, … (see daily_digest.txt)
//	                   daily_digest counts; unknown keys are listed too
//	would_challenge, would_deny, would_enroll
//	                   daily_digest: logins monitor mode allowed that
//	                   enforcement would not have (only when not zero)
package notify
