package engine

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// MaxImport is the most past logins one import may carry.
const MaxImport = 1000

// importLease is how long an import holds its user: no other import of
// the user starts meanwhile.
const importLease = time.Minute

// PastLogin is one successful login from the host app's own logs.
type PastLogin struct {
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	DeviceID  string    `json:"device_id"`
	At        time.Time `json:"at"`
}

// ImportHistory teaches a user's history from past successful logins, so a
// tenant adopting stepup does not challenge everyone on day one. Only a user
// without history may be imported (so an import can never drown a real
// history), at most MaxImport logins, none in the future or older than the
// history's lifetime.
func (e *Logins) ImportHistory(ctx context.Context, u UserRef, logins []PastLogin, actor Actor) (int, error) {
	if err := ValidUserID(u.User); err != nil {
		return 0, err
	}
	if len(logins) == 0 || len(logins) > MaxImport {
		return 0, Invalid("logins", fmt.Sprintf("between 1 and %d logins", MaxImport))
	}
	now := e.now()
	oldest := now.Add(-e.historyTTL())
	recs := make([]LoginRecord, 0, len(logins))
	for i, l := range logins {
		field := fmt.Sprintf("logins[%d]", i)
		ip, err := validateLogin(EvaluateInput{UserID: u.User, IP: l.IP, UserAgent: l.UserAgent, DeviceID: l.DeviceID})
		if err != nil {
			ee := AsError(err)
			return 0, Invalid(field+"."+fmt.Sprint(ee.Meta["field"]), ee.Msg)
		}
		if l.At.IsZero() || l.At.After(now.Add(time.Minute)) || l.At.Before(oldest) {
			return 0, Invalid(field+".at", "required, RFC 3339, not in the future nor older than the history's lifetime")
		}
		feats, vals := e.features(u.Tenant, ip, l.UserAgent, l.DeviceID)
		recs = append(recs, LoginRecord{
			ID: e.newID("lg_", e.core.store.Placement(u)), Tenant: u.Tenant, User: u.User, At: l.At.UTC(), Decision: DecisionImported,
			Levels: vals,
			Place:  &Place{At: l.At.UTC(), Country: feats.Country, Lat: feats.Geo.Lat, Lon: feats.Geo.Lon, HasLoc: feats.Geo.HasLocation},
		})
	}
	slices.SortFunc(recs, func(a, b LoginRecord) int { return a.At.Compare(b.At) })
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Now: now, Window: velocityWindow})
	if err != nil {
		return 0, Internal(err)
	}
	if st.UserLogins > 0 {
		return 0, E(KindConflict, "history_exists", "the user already has a login history; imports are only for users without one")
	}
	// One import of a user at a time: imports sent at once would each find
	// no history above and together teach several times MaxImport logins.
	lease := "import:" + hex.EncodeToString(e.tokenMAC.Sum("import", u.Tenant, u.User))
	first, err := e.core.store.UseToken(ctx, lease, importLease)
	if err != nil {
		return 0, Internal(err)
	}
	if !first {
		return 0, E(KindConflict, "import_in_progress", "an import of this user is running or has just run; retry in a minute")
	}
	for i, rec := range recs {
		rec.First = i == 0
		if _, err := e.store.SaveLogin(ctx, u, LoginWrite{Record: rec, Learn: true, LearnOpt: e.learnOptions()}); err != nil {
			return i, Internal(err)
		}
	}
	ev := e.event(u.Tenant, u.User, message.EvHistoryImported, actor)
	ev.Details["count"] = itoa(len(recs))
	if err := e.store.Commit(ctx, u, Commit{Version: -1, Events: []Event{ev}, Now: now}); err != nil {
		return len(recs), AsError(err)
	}
	return len(recs), nil
}

// historyTTL is how long history lives without a login.
func (e *core) historyTTL() time.Duration { return days(e.opt.HistoryDays) }
