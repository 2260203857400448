package engine

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Policies sets a tenant's policy and carries out the managers' admin
// actions; it also keeps the audit log, the daily digests and alerts.
type Policies struct {
	*core
	store policyStore
	users *Lifecycle // the user view an admin action answers with
}

// policyStore is what Policies reads and changes.
type policyStore interface {
	accountStore
	// PutPolicy replaces the policy document prev (nil: none stored) by
	// doc, with its audit event and mails, or returns ErrConflict when the
	// stored document is no longer prev.
	PutPolicy(ctx context.Context, tenant string, prev, doc []byte, ev Event, jobs []Job) error
	LoadLogin(ctx context.Context, u UserRef, q LoginQuery) (LoginState, error)
	// Users calls fn for every user of the tenant that has an account.
	Users(ctx context.Context, tenant string, fn func(user string) error) error
	// OpenChallenges lists the ids of a user's open challenges (pending, or
	// expired less than a day ago: closing those too is harmless).
	OpenChallenges(ctx context.Context, u UserRef, now time.Time) ([]string, error)
	// Events pages through the tenant's audit log, newest first.
	Events(ctx context.Context, tenant string, q EventQuery) ([]Event, string, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	// Tally reads a tenant's daily tally.
	Tally(ctx context.Context, tenant, day string) (map[string]int64, error)
	// Enqueue queues messages that record no change (the digest).
	Enqueue(ctx context.Context, tenant string, jobs []Job) error
}

// ErrReasonRequired is returned for an admin action without a reason.
var ErrReasonRequired = Invalid("reason", "required: say why (it is audited and mailed)")

// adminReason checks an admin action's reason: required, at most 500
// bytes, one line of printable text (it is quoted in the audit log, the
// console and the mails to users and managers).
func adminReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", ErrReasonRequired
	case len(reason) > 500 || !printable(reason):
		return "", Invalid("reason", "one line of printable text, at most 500 bytes")
	}
	return reason, nil
}

// AdminReset turns a user's 2FA off: factors, backup codes and remembered
// devices are cleared (the lost-phone case). Audited and mailed to the user
// and the managers.
func (e *Policies) AdminReset(ctx context.Context, u UserRef, reason string, actor Actor) (UserView, error) {
	reason, err := adminReason(reason)
	if err != nil {
		return UserView{}, err
	}
	if err := e.reset(ctx, u, reason, "", actor, false); err != nil {
		return UserView{}, err
	}
	e.count(ctx, u.Tenant, map[string]int64{"disabled": 1})
	return e.users.GetUser(ctx, u)
}

// reset clears u's factors, devices and pending changes, mailing the user
// and, unless bulk (a disable-all, which mails them once at its end), the
// managers.
func (e *Policies) reset(ctx context.Context, u UserRef, reason, group string, actor Actor, bulk bool) error {
	if err := ValidUserID(u.User); err != nil {
		return err
	}
	t, err := e.tenant(ctx, u.Tenant)
	if err != nil {
		return err
	}
	pol, err := e.loadPolicy(ctx, u.Tenant)
	if err != nil {
		return err
	}
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Now: e.now(), Window: velocityWindow})
	if err != nil {
		return Internal(err)
	}
	known := st.UserLogins > 0 || st.GraceEpoch != "" // logged in, never set up a profile
	// Every challenge still open dies with the factors: none made for the
	// state before the reset may act on the state after it.
	open, err := e.openOthers(ctx, e.store, u, "")
	if err != nil {
		return err
	}
	return e.users.updateCancel(ctx, u, open, func(a *Account) ([]Event, []Job, error) {
		if !a.Exists && !known {
			return nil, nil, ErrUserNotFound
		}
		changed := a.Factors.Any() || len(a.BackupCodes) > 0 || len(a.Devices) > 0 || a.PhoneChange != "" || a.EmailChange != ""
		a.Factors, a.BackupCodes, a.Devices, a.PhoneChange, a.EmailChange = Factors{}, nil, nil, "", ""
		ev := e.event(u.Tenant, u.User, message.EvAdminReset, actor)
		ev.Details["reason"] = reason
		if group != "" {
			ev.Details["group"] = group
		}
		if !changed {
			// Nothing left to reset (a retried call, or a second manager
			// on the same ticket): audited, but nobody is told twice.
			ev.Details["changed"] = "nothing"
			return []Event{ev}, nil, nil
		}
		jobs := e.userNotice(t, *a, &ev)
		if !bulk {
			jobs = append(jobs, e.managerJobs(t, pol.Effective(a.Group).ManagerEmails, ev)...)
		}
		return []Event{ev}, jobs, nil
	})
}

// DisableAllResult counts what disable-all did.
type DisableAllResult struct {
	Reset int `json:"reset"`
}

// DisableAll resets every enrolled user of the tenant (or of one group).
func (e *Policies) DisableAll(ctx context.Context, tenant, reason, group string, actor Actor) (DisableAllResult, error) {
	reason, err := adminReason(reason)
	if err != nil {
		return DisableAllResult{}, err
	}
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return DisableAllResult{}, err
	}
	if group != "" {
		if _, ok := pol.Groups[group]; !ok {
			return DisableAllResult{}, E(KindUnprocessable, "unknown_group", "the policy has no group of that name").With("field", "group")
		}
	}
	var res DisableAllResult
	var managers []string // of the policies of the users reset
	err = e.store.Users(ctx, tenant, func(user string) error {
		u := UserRef{Tenant: tenant, User: user}
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return err
		}
		if !a.Factors.Any() || (group != "" && a.Group != group) {
			return nil
		}
		if err := e.reset(ctx, u, reason, group, actor, true); err != nil {
			return err
		}
		managers = append(managers, pol.Effective(a.Group).ManagerEmails...)
		e.count(ctx, tenant, map[string]int64{"disabled": 1})
		res.Reset++
		return nil
	})
	// The managers hear of what was done, once, even when the walk
	// stopped part way: every user reset so far was told by mail.
	if res.Reset > 0 {
		e.afterDisableAll(ctx, tenant, reason, group, actor, res.Reset, managers)
	}
	if err != nil {
		return res, AsError(err)
	}
	return res, nil
}

// afterDisableAll audits a disable-all as one tenant event and mails it to
// every manager address of the policies of the users it reset (the
// tenant's and their groups'), one mail each: a tenant of thousands of
// users does not flood its managers with a mail per user.
func (e *Policies) afterDisableAll(ctx context.Context, tenant, reason, group string, actor Actor, n int, managers []string) {
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		e.log.Error("disable-all not audited", "tenant", tenant, "err", err)
		return
	}
	ev := e.event(tenant, "", message.EvDisabled, actor)
	ev.Details["reason"], ev.Details["count"] = reason, strconv.Itoa(n)
	if group != "" {
		ev.Details["group"] = group
	}
	slices.Sort(managers)
	jobs := e.managerJobs(t, slices.Compact(managers), ev)
	if err := e.core.store.AppendEvent(ctx, ev, jobs); err != nil {
		e.log.Error("disable-all not audited", "tenant", tenant, "err", err)
	}
}

// afterModeOff mails every enrolled user whose policy (the tenant's or the
// group's) newly asks for no code — 2FA switched off, or monitor mode.
// Each user's event and mail are one commit in the user's shard, so the
// queue takes them in batches as the shards are walked; the walk happens
// only when some policy became unprotected.
func (e *Policies) afterModeOff(ctx context.Context, t Tenant, actor Actor, before, next TenantPolicy) {
	disarmed := unprotected(next.Policy) && !unprotected(before.Policy)
	// A group removed counts too: its users fall back to the base policy.
	for _, groups := range []map[string]json.RawMessage{before.Groups, next.Groups} {
		for g := range groups {
			disarmed = disarmed || unprotected(next.Effective(g)) && !unprotected(before.Effective(g))
		}
	}
	if !disarmed {
		return
	}
	err := e.store.Users(ctx, t.ID, func(user string) error {
		u := UserRef{Tenant: t.ID, User: user}
		a, err := e.store.Account(ctx, u)
		if err != nil || !a.Factors.Any() {
			return err
		}
		was, now := before.Effective(a.Group), next.Effective(a.Group)
		if !unprotected(now) || unprotected(was) {
			return nil
		}
		ev := e.event(t.ID, user, message.EvModeOff, actor)
		if now.Mode != ModeOff {
			// Monitor mode asks for no code either: the user hears of it
			// as of 2FA switched off, so a stolen manager key cannot
			// disarm everyone unnoticed.
			ev.Details["enforcement"] = string(now.Enforcement)
		}
		if a.Group != "" {
			ev.Details["group"] = a.Group
		}
		return e.store.Commit(ctx, u, Commit{Version: -1, Events: []Event{ev}, Jobs: e.userNotice(t, a, &ev), Now: e.now()})
	})
	if err != nil {
		e.log.Error("mode-off mails incomplete", "tenant", t.ID, "err", err)
	}
}

// unprotected reports whether a policy asks an enrolled user for no code:
// 2FA off, or monitor mode.
func unprotected(p Policy) bool { return p.Mode == ModeOff || p.Enforcement == EnforcementMonitor }

// ConsoleSession records a manager's sign-in to or sign-out of the web
// console in the tenant's audit log, with the key's label and the
// client's address: a stolen manager key in use shows there.
func (e *Policies) ConsoleSession(ctx context.Context, tenant string, typ message.EventType, actor Actor) error {
	if typ != message.EvConsoleSignIn && typ != message.EvConsoleSignOut {
		return Internal(fmt.Errorf("engine: %q is not a console session event", typ))
	}
	if err := e.core.store.AppendEvent(ctx, e.event(tenant, "", typ, actor), nil); err != nil {
		return Internal(err)
	}
	return nil
}

// Events pages through the tenant's audit log.
func (e *Policies) Events(ctx context.Context, tenant string, q EventQuery) ([]Event, string, error) {
	if q.User != "" {
		if err := ValidUserID(q.User); err != nil {
			return nil, "", err
		}
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, "", Invalid("limit", "between 1 and 1000")
	}
	evs, next, err := e.store.Events(ctx, tenant, q)
	if err != nil {
		return nil, "", AsError(err)
	}
	if evs == nil {
		evs = []Event{}
	}
	return evs, next, nil
}

// reportTTL is how long a "this wasn't me" link works.
const reportTTL = 7 * 24 * time.Hour

// reportURL builds the signed, single-use "this wasn't me" link of a mail.
func (e *core) reportURL(tenant, user string, at time.Time) string {
	if e.opt.PublicURL == "" || user == "" {
		return ""
	}
	return strings.TrimRight(e.opt.PublicURL, "/") + "/v1/report/" + e.reportToken(tenant, user, at.Add(reportTTL))
}

// reportToken is base64url(exp || nonce || tenant \0 user) + "." + mac.
func (e *core) reportToken(tenant, user string, exp time.Time) string {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(exp.Unix()))
	b = append(b, e.random(8)...)
	b = append(b, []byte(tenant+"\x00"+user)...)
	mac := e.tokenMAC.Sum("report", string(b))[:16]
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// reportEncoding decodes report links strictly: no padding, no other
// alphabet, no stray bits in the last character.
var reportEncoding = base64.RawURLEncoding.Strict()

// ErrReportInvalid is the answer for a bad, used or expired report link.
var ErrReportInvalid = E(KindGone, "report_link_invalid", "this link is invalid, expired or was already used")

// Report follows a "this wasn't me" link: the user's remembered devices are
// forgotten, the next login is challenged whatever its score, the event is
// recorded and the managers are told. A link works once, for 7 days.
func (e *Policies) Report(ctx context.Context, token string) error {
	body, mac, ok := strings.Cut(token, ".")
	if !ok || len(token) > 600 {
		return ErrReportInvalid
	}
	// Strict: a link has exactly one spelling. The lenient decoder accepts
	// the unused low bits of the last character in any state, which made one
	// link sixteen.
	b, err1 := reportEncoding.DecodeString(body)
	m, err2 := reportEncoding.DecodeString(mac)
	if err1 != nil || err2 != nil || len(b) < 17 || !hmac.Equal(m, e.tokenMAC.Sum("report", string(b))[:16]) {
		return ErrReportInvalid
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	tenant, user, ok := strings.Cut(string(b[16:]), "\x00")
	if !ok || !e.now().Before(exp) {
		return ErrReportInvalid
	}
	// Keyed on the decoded MAC, re-encoded canonically (the key links issued
	// before strict decoding were recorded under).
	first, err := e.core.store.UseToken(ctx, "report:"+reportEncoding.EncodeToString(m), reportTTL)
	if err != nil {
		return Internal(err)
	}
	if !first {
		return ErrReportInvalid
	}
	u := UserRef{Tenant: tenant, User: user}
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return err
	}
	err = retryConflicts(func() error {
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return Internal(err)
		}
		// Only a user with an address had the mail: a user erased since
		// is gone, and a new account given his id later is another
		// person's (links carry their time to the second).
		if !a.Exists || a.CreatedAt.Unix() > exp.Add(-reportTTL).Unix() {
			return ErrReportInvalid
		}
		ev := e.event(tenant, user, message.EvReport, Actor{Kind: message.ActorUser})
		ev.Details["devices_forgotten"] = itoa(len(a.Devices))
		force := true
		c := Commit{Version: a.Version, Account: &a, Events: []Event{ev}, Jobs: e.managerJobs(t, pol.Effective(a.Group).ManagerEmails, ev), ForceChallenge: &force, Now: e.now()}
		a.Devices = nil
		return AsErrorOrNil(e.store.Commit(ctx, u, c))
	})
	if err == nil {
		e.count(ctx, tenant, map[string]int64{"reports": 1})
	}
	return err
}
