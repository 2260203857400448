package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
)

// feedbackStore is what Logins.Feedback reads and writes.
type feedbackStore interface {
	// Login reads a login record; false when it is gone.
	Login(ctx context.Context, id string) (LoginRecord, bool, error)
	Account(ctx context.Context, u UserRef) (Account, error)
	openLister
	// Feedback records a verdict on a login with what it changes, as one
	// atomic write of the user's (see FeedbackWrite): nothing is written
	// when the login already has a verdict (FeedbackSaved.Previous) or the
	// commit fails (ErrConflict). A fraud verdict then raises its networks'
	// reports and takes an unlearnt login out of the tenant's counts, and
	// a legit one adds a learnt login to them, as a statistics write in
	// the tenant's slot.
	Feedback(ctx context.Context, u UserRef, w FeedbackWrite) (FeedbackSaved, error)
}

// Verdict is what the host app says a login was.
type Verdict string

// The verdicts.
const (
	VerdictFraud Verdict = "fraud"
	VerdictLegit Verdict = "legit"
)

// FeedbackWrite is a verdict on a login and what it changes.
type FeedbackWrite struct {
	Record  LoginRecord
	Verdict Verdict
	// Commit carries the audit event and, for fraud, the account without
	// the devices remembered from the login (a compare-and-set on Version).
	Commit Commit
	// LearnOpt bounds the history a legit verdict teaches the login to.
	LearnOpt LearnOptions
	// Networks are the login's network levels whose fraud reports a
	// fraud verdict raises by one, after decaying the stored weight with
	// HalfLife.
	Networks []LevelValue
	HalfLife time.Duration
}

// FeedbackSaved is what Feedback reports back.
type FeedbackSaved struct {
	// Previous is the verdict the login already had ("" when none); then
	// nothing was written.
	Previous Verdict
	// Changed is true when the user's history learnt (legit) or unlearnt
	// (fraud) the login.
	Changed bool
}

// FeedbackResult is the answer to a verdict.
type FeedbackResult struct {
	LoginID string  `json:"login_id"`
	Verdict Verdict `json:"verdict"`
	// Repeated is true when the login already had this verdict: nothing
	// changed.
	Repeated bool `json:"repeated"`
	// History is what the user's history did: "learned" (legit on a login
	// it had not learnt), "unlearned" (fraud on one it had) or "unchanged".
	History string `json:"history"`
	// DevicesForgotten counts the remembered devices the fraud verdict
	// forgot.
	DevicesForgotten int `json:"devices_forgotten"`
}

// Feedback records the host app's verdict on a login evaluated within the
// feedback window (Options.FeedbackDays). Fraud raises the tenant's attack
// prior on the login's networks, unlearns the login from the user's history
// and the tenant's counts, forgets devices remembered from it, audits and
// alerts the managers; legit teaches a login that was not learnt. The same
// verdict again changes nothing; the other verdict is refused (409
// verdict_conflict): a verdict is final.
func (e *Logins) Feedback(ctx context.Context, tenant, loginID string, v Verdict, actor Actor) (FeedbackResult, error) {
	if v != VerdictFraud && v != VerdictLegit {
		return FeedbackResult{}, Invalid("verdict", `"fraud" or "legit"`)
	}
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return FeedbackResult{}, err
	}
	rec, ok, err := e.store.Login(ctx, loginID)
	if err != nil {
		return FeedbackResult{}, Internal(err)
	}
	now := e.now()
	if !ok || rec.Tenant != tenant || rec.ID != loginID || now.Sub(rec.At) > days(e.opt.FeedbackDays) {
		return FeedbackResult{}, E(KindNotFound, "login_not_found", "no login with this id was evaluated in the feedback window")
	}
	u := UserRef{Tenant: tenant, User: rec.User}
	for range 3 {
		w, forgotten, err := e.feedbackWrite(ctx, t, u, rec, v, actor, now)
		if err != nil {
			return FeedbackResult{}, err
		}
		saved, err := e.store.Feedback(ctx, u, w)
		if errors.Is(err, ErrConflict) {
			continue // the account changed under us: recompute its devices
		}
		if err != nil {
			return FeedbackResult{}, AsError(err)
		}
		out := FeedbackResult{LoginID: rec.ID, Verdict: v, History: "unchanged"}
		switch saved.Previous {
		case v:
			out.Repeated = true
			return out, nil
		case "":
		default:
			return FeedbackResult{}, E(KindConflict, "verdict_conflict", "the login already has the other verdict").With("verdict", string(saved.Previous))
		}
		out.DevicesForgotten = forgotten
		if saved.Changed {
			out.History = map[Verdict]string{VerdictFraud: "unlearned", VerdictLegit: "learned"}[v]
		}
		if v == VerdictFraud {
			e.alertReported(ctx, t, rec)
		}
		return out, nil
	}
	return FeedbackResult{}, ErrConflict
}

// feedbackWrite builds the write of a verdict on rec.
func (e *Logins) feedbackWrite(ctx context.Context, t Tenant, u UserRef, rec LoginRecord, v Verdict, actor Actor, now time.Time) (FeedbackWrite, int, error) {
	w := FeedbackWrite{Record: rec, Verdict: v, LearnOpt: e.learnOptions(), HalfLife: e.opt.ReportHalfLife}
	w.Commit = Commit{Version: -1, Now: now}
	forgotten := 0
	if v == VerdictFraud {
		w.Networks = networkLevels(rec.Levels)
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return w, 0, Internal(err)
		}
		// Devices remembered from the login, and the login's own device
		// wherever it was remembered (an attacker's device may have been
		// remembered at an earlier login and used for this one).
		kept := slices.DeleteFunc(slices.Clone(a.Devices), func(d Device) bool {
			return d.LoginID == rec.ID || rec.Device.DeviceHash != "" && d.DeviceHash == rec.Device.DeviceHash
		})
		if forgotten = len(a.Devices) - len(kept); forgotten > 0 {
			next := a
			next.Devices, next.UpdatedAt = kept, now
			w.Commit.Version, w.Commit.Account = a.Version, &next
		}
		// Every open challenge of the user is closed: one may be the
		// reported login's, which must not be verified and learnt after.
		if w.Commit.CancelChallenges, err = e.openOthers(ctx, e.store, u, ""); err != nil {
			return w, 0, err
		}
	}
	ev := e.event(u.Tenant, u.User, message.EvLoginReported, actor)
	ev.Details["verdict"] = string(v)
	ev.Details["login_id"] = rec.ID
	ev.Details["decision"] = string(rec.Decision)
	ev.Details["score"] = strconv.Itoa(rec.Score)
	w.Commit.Events = []Event{ev}
	if forgotten > 0 {
		ev.Details["devices_forgotten"] = strconv.Itoa(forgotten)
		// The user hears of it as of any forgetting of his devices: a
		// device he trusts stops being trusted, and a verdict made with
		// the app key alone does not pass unnoticed.
		fe := e.event(u.Tenant, u.User, message.EvDevicesForgotten, actor)
		fe.Details["reason"], fe.Details["count"] = string(message.ReasonLoginReported), strconv.Itoa(forgotten)
		w.Commit.Events = []Event{ev, fe}
		w.Commit.Jobs = e.userNotice(t, *w.Commit.Account, &w.Commit.Events[1])
	}
	return w, forgotten, nil
}

// alertReported tells the tenant's managers, at most once an hour, that a
// login was reported as fraud.
func (e *Logins) alertReported(ctx context.Context, t Tenant, rec LoginRecord) {
	pol, err := e.loadPolicy(ctx, t.ID)
	if err != nil {
		return
	}
	d := map[string]string{"user": rec.User, "network": rec.IP, "at": rec.At.UTC().Format(time.RFC3339)}
	if rec.Device.Country != "" {
		d["country"] = rec.Device.Country
	}
	e.alert(ctx, t, pol.Effective(""), message.EvAlertLoginReported, d)
}

// networkLevels are a login's network levels (the prefix and, with an ASN
// database, the AS), the levels a fraud report marks.
func networkLevels(vals []LevelValue) []LevelValue {
	var out []LevelValue
	for _, v := range vals {
		if v.Level == risk.LevelIPNet || v.Level == risk.LevelIPASN {
			out = append(out, v)
		}
	}
	return out
}

// recordTTL is how long an evaluated login's record is kept: for its
// challenge and for a verdict.
func (e *core) recordTTL() time.Duration {
	return max(e.opt.LoginTTL, days(e.opt.FeedbackDays))
}

// reportedWeight is the heaviest of a login's network reports, decayed
// from its time to now by the half-life.
func (e *core) reportedWeight(rs []NetworkReport, now time.Time) float64 {
	w := 0.0
	for _, r := range rs {
		w = max(w, decayed(r.Weight, now.Sub(r.At), e.opt.ReportHalfLife))
	}
	return w
}

// decayed is weight after age at the half-life h.
func decayed(weight float64, age, h time.Duration) float64 {
	if age <= 0 {
		return weight
	}
	return weight * math.Exp2(-age.Hours()/h.Hours())
}
