package engine

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
)

// Decisions of an evaluation.
const (
	DecisionAllow     = "allow"
	DecisionChallenge = "challenge"
	DecisionDeny      = "deny"
	DecisionEnroll    = "enroll"
)

// countBuckets bounds the tenant-wide counts: each feature level is a hash
// of at most this many counters (a one-row count-min sketch), however many
// distinct values arrive.
const countBuckets = 1 << 14

// velocityWindow is the sliding window of the velocity signals.
const velocityWindow = time.Hour

// EvaluateInput is one login attempt, after the password was accepted.
type EvaluateInput struct {
	UserID      string
	IP          string
	UserAgent   string
	DeviceID    string
	DeviceToken string
}

// RiskView is the risk part of an evaluation's answer.
type RiskView struct {
	Score   int           `json:"score"`
	Level   string        `json:"level"`
	Signals []risk.Signal `json:"signals"`
}

// Enrollment tells the host app about the user's enrolment duty.
type Enrollment struct {
	Required        bool `json:"required"`
	GraceLoginsLeft *int `json:"grace_logins_left,omitempty"`
	Suggested       bool `json:"suggested"`
}

// Evaluation is the answer to an evaluation.
type Evaluation struct {
	LoginID    string         `json:"login_id"`
	Decision   string         `json:"decision"`
	Risk       RiskView       `json:"risk"`
	Challenge  *ChallengeView `json:"challenge,omitempty"`
	Enrollment Enrollment     `json:"enrollment"`
}

// ValidUserID checks a user id: 1–128 printable characters.
func ValidUserID(id string) error {
	if id == "" || len(id) > 128 || !printable(id) {
		return Invalid("user_id", "1-128 printable characters")
	}
	return nil
}

func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, E(KindInvalid, "invalid_ip", "ip is not an IPv4 or IPv6 address").With("field", "ip")
	}
	return ip.Unmap(), nil
}

func validateLogin(in EvaluateInput) (netip.Addr, error) {
	if err := ValidUserID(in.UserID); err != nil {
		return netip.Addr{}, err
	}
	ip, err := parseIP(in.IP)
	if err != nil {
		return ip, err
	}
	if len(in.UserAgent) > 1024 {
		return ip, Invalid("user_agent", "at most 1024 bytes")
	}
	if len(in.DeviceID) > 256 {
		return ip, Invalid("device_id", "at most 256 bytes")
	}
	if len(in.DeviceToken) > 128 {
		return ip, Invalid("device_token", "at most 128 bytes")
	}
	return ip, nil
}

// features extracts a login's features and their keyed hashes.
func (e *Engine) features(tenant string, ip netip.Addr, ua, device string) (risk.Features, []LevelValue, []string) {
	in := risk.Input{IP: ip, UserAgent: ua, DeviceID: device}
	if e.opt.Geo != nil {
		in.Geo = e.opt.Geo.Lookup(ip)
	}
	f := risk.Extract(in, e.opt.Risk)
	levels := f.Levels()
	vals := make([]LevelValue, len(levels))
	buckets := make([]string, len(levels))
	for i, l := range levels {
		sum := e.featMAC.Sum(tenant, l.Name, l.Value)
		vals[i] = LevelValue{Level: l.Name, Hash: hex.EncodeToString(sum[:8])}
		buckets[i] = strconv.FormatUint(uint64(binary.BigEndian.Uint32(sum[8:12])%countBuckets), 36)
	}
	return f, vals, buckets
}

func (e *Engine) ipHash(tenant string, ip netip.Addr) string {
	return hex.EncodeToString(e.featMAC.Sum(tenant, "ip", ip.String())[:8])
}

func (e *Engine) learnOptions(rec LoginRecord) LearnOptions {
	return LearnOptions{HistorySize: e.opt.HistorySize, HistoryTTL: e.historyTTL(), Buckets: rec.Buckets, NewUser: rec.First}
}

// Evaluate scores a login and decides what happens next. It reads storage
// once and writes once.
func (e *Engine) Evaluate(ctx context.Context, tenant string, in EvaluateInput) (Evaluation, error) {
	ip, err := validateLogin(in)
	if err != nil {
		return Evaluation{}, err
	}
	t, err := e.Tenant(ctx, tenant)
	if err != nil {
		return Evaluation{}, err
	}
	u := UserRef{Tenant: tenant, User: in.UserID}
	now := e.now()
	feats, vals, buckets := e.features(tenant, ip, in.UserAgent, in.DeviceID)
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Values: vals, Buckets: buckets, IPHash: e.ipHash(tenant, ip), Now: now, Window: velocityWindow})
	if err != nil {
		return Evaluation{}, Internal(err)
	}
	pol, err := e.compiled(st.Policy)
	if err != nil {
		return Evaluation{}, err
	}
	a := st.Account
	p := pol.Effective(a.Group)

	si := risk.ScoreInput{
		Features: feats, Counts: make(map[string]risk.LevelCounts, len(vals)),
		UserLogins: st.UserLogins, TenantLogins: st.TenantLogins, TenantUsers: st.TenantUsers,
		FailedPasswordsUser: int(st.FailedPwUser), FailedPasswordsIP: int(st.FailedIPUsers),
		FailedChallengesUser: int(st.FailedChUser), Now: now,
		Trusted:        inAny(ip, pol.networks(a.Group).trusted),
		BlockedNetwork: inAny(ip, pol.networks(a.Group).blocked),
		BlockedCountry: feats.Country != "" && slices.Contains(p.BlockedCountries, feats.Country),
	}
	for i, v := range vals {
		si.Counts[v.Level] = risk.LevelCounts{UserCount: st.UserCounts[i], TenantCount: st.TenantCounts[i], TenantDistinct: st.TenantDistinct[v.Level]}
	}
	if st.Last != nil && st.Last.HasLoc {
		si.LastLogin = &risk.Place{At: st.Last.At, Lat: st.Last.Lat, Lon: st.Last.Lon, Country: st.Last.Country}
	}
	r := risk.Score(si, e.opt.Risk)

	rec := LoginRecord{
		ID: e.newID("lg_", e.store.Placement(u)), Tenant: tenant, User: in.UserID, At: now, Values: vals, Buckets: buckets,
		Device: DeviceInfo{Browser: feats.UA.Browser(), OS: feats.UA.OS(), Country: feats.Country},
		IP:     maskIP(ip), Score: r.Score, First: st.UserLogins == 0,
		Place: &Place{At: now, Country: feats.Country, Lat: feats.Geo.Lat, Lon: feats.Geo.Lon, HasLoc: feats.Geo.HasLocation},
	}
	if in.DeviceID != "" {
		rec.Device.DeviceHash = e.deviceHash(u, in.DeviceID)
	}
	out := Evaluation{LoginID: rec.ID, Risk: RiskView{Score: r.Score, Level: risk.ScoreLevel(r.Score, p.Thresholds.Challenge, p.Thresholds.Deny), Signals: r.Signals}}
	if out.Risk.Signals == nil {
		out.Risk.Signals = []risk.Signal{}
	}
	remembered := in.DeviceToken != "" && in.DeviceID != "" && e.validDevice(u, a, p, rec.Device.DeviceHash, in.DeviceToken, now)
	if remembered {
		out.Risk.Signals = append(out.Risk.Signals, risk.Signal{Name: "remembered_device"})
	}
	enrolled := a.Factors.Any()
	w := LoginWrite{LearnOpt: e.learnOptions(rec)}
	actor := Actor{Kind: message.ActorUser, IP: in.IP, UserAgent: in.UserAgent}

	// The enrolment duty of a user without 2FA holds on every network:
	// a trusted network skips challenges, not enrolment.
	graceLeft := -1
	if !enrolled && p.Mode == ModeRequired {
		graceLeft = p.GraceLogins
		if epoch := pol.epoch(a.Group); st.GraceEpoch == epoch {
			graceLeft = max(graceLeft-st.GraceUsed, 0)
		}
		if graceLeft > 0 {
			left := graceLeft - 1 // this login uses one
			out.Enrollment = Enrollment{Required: true, GraceLoginsLeft: &left}
		} else {
			zero := 0
			out.Enrollment = Enrollment{Required: true, GraceLoginsLeft: &zero}
		}
	} else if !enrolled {
		out.Enrollment.Suggested = p.Mode == ModeOptional
	}

	switch {
	case r.Force == risk.ForceDeny || r.Score >= p.Thresholds.Deny:
		out.Decision = DecisionDeny
	case p.Mode == ModeOff:
		out.Decision = DecisionAllow
	case graceLeft == 0:
		out.Decision = DecisionEnroll
	case graceLeft > 0:
		out.Decision = DecisionAllow
		w.GraceEpoch = pol.epoch(a.Group)
	case r.Force == risk.ForceAllow || !enrolled:
		out.Decision = DecisionAllow
	case st.Force:
		out.Decision = DecisionChallenge
	case remembered:
		out.Decision = DecisionAllow
	case p.Challenge == ChallengeEveryLogin:
		out.Decision = DecisionChallenge
	case r.NoHistory && p.ColdStart == ColdStartChallenge:
		out.Decision = DecisionChallenge
	case r.NoHistory || r.Score < p.Thresholds.Challenge:
		out.Decision = DecisionAllow
	default:
		out.Decision = DecisionChallenge
	}
	if out.Decision == DecisionDeny || p.Mode == ModeOff {
		out.Enrollment = Enrollment{} // nothing to set up on a refused login, or with 2FA off
	}
	rec.Decision = out.Decision
	w.Learn = out.Decision == DecisionAllow
	if out.Decision == DecisionChallenge {
		// Only a challenged login is kept, for its verification to learn it
		// (and remember its device); the others would only fill Redis.
		w.RecordTTL = e.opt.LoginTTL
	}

	switch out.Decision {
	case DecisionChallenge:
		d, err := e.loginChallenge(ctx, t, p, u, a, actor)
		if err != nil {
			return Evaluation{}, err
		}
		d.ch.LoginID = rec.ID
		v := d.ch.view(e.now())
		v.Channels = a.Factors.Channels()
		out.Challenge = &v
		cm := Commit{Version: -1, NewChallenges: []Challenge{d.ch}, Jobs: d.jobs, Now: now}
		if st.Force {
			f := false
			cm.ForceChallenge = &f // the forced challenge is this one
		}
		w.Commit = &cm
	case DecisionDeny:
		ev := e.event(tenant, in.UserID, message.EvLoginDenied, actor)
		ev.Details["score"] = strconv.Itoa(r.Score)
		if len(r.Signals) > 0 {
			ev.Details["signals"] = signalNames(r.Signals)
		}
		jobs := e.userNotice(t, a, &ev)
		w.Commit = &Commit{Version: -1, Events: []Event{ev}, Jobs: jobs, Now: now}
	}
	w.Record = rec
	w.CountBlocked = out.Decision == DecisionChallenge || out.Decision == DecisionDeny
	saved, err := e.store.SaveLogin(ctx, u, w)
	if err != nil {
		return Evaluation{}, AsError(err)
	}
	if w.CountBlocked {
		e.watchSpike(ctx, t, p, saved)
	}
	return out, nil
}

// Spike thresholds: an hour with at least spikeMin blocked logins and
// spikeFactor times the day's hourly average alerts the managers.
const (
	spikeMin    = 20
	spikeFactor = 4
)

// watchSpike alerts the managers when the hour's count of blocked logins
// spikes against the tenant's usual rate.
func (e *Engine) watchSpike(ctx context.Context, t Tenant, p Policy, s LoginSaved) {
	cur, base := s.Blocked, s.Baseline
	if cur >= spikeMin && float64(cur) >= spikeFactor*base {
		e.alert(ctx, t, p, message.EvAlertLoginSpike, map[string]string{
			"count": strconv.FormatInt(cur, 10), "window": "the last hour",
			"baseline": strconv.FormatFloat(base, 'f', 1, 64) + " an hour"})
	}
}

// loginChallenge prepares a login challenge on the user's preferred
// factor; when SMS is refused (a limit, the kill switch) it falls back to
// the user's other factors before giving up.
func (e *Engine) loginChallenge(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, actor Actor) (draft, error) {
	first, _ := preferred(p, a.Factors)
	order := []Channel{first}
	for _, c := range append(slices.Clone(p.AllowedChannels), a.Factors.Channels()...) {
		if a.Factors.Has(c) && !slices.Contains(order, c) {
			order = append(order, c)
		}
	}
	var firstErr error
	for _, c := range order {
		d, err := e.challengeOn(ctx, t, p, u, a, c, PurposeLogin, actorData(actor), actor)
		if err == nil {
			return d, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return draft{}, firstErr
}

func signalNames(s []risk.Signal) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x.Name
	}
	return out
}

func (e *Engine) deviceHash(u UserRef, deviceID string) string {
	return hex.EncodeToString(e.tokenMAC.Sum("device-id", u.Tenant, u.User, deviceID))
}

// validDevice checks a remembered-device token: bound to this user and
// device, unexpired, and within the policy's current lifetime (lowering
// remember_device_days shortens existing tokens).
func (e *Engine) validDevice(u UserRef, a Account, p Policy, deviceHash, token string, now time.Time) bool {
	th := e.deviceTokenHash(u, token)
	for _, d := range a.Devices {
		if constantEqual(d.TokenHash, th) && d.DeviceHash == deviceHash {
			return now.Before(deviceExpiry(d, p))
		}
	}
	return false
}

// deviceExpiry is when a remembered device stops being honoured: its own
// expiry, or sooner when the policy's lifetime was lowered since.
func deviceExpiry(d Device, p Policy) time.Time {
	if p.RememberDeviceDays <= 0 {
		return d.FirstSeen
	}
	if exp := d.FirstSeen.Add(days(p.RememberDeviceDays)); exp.Before(d.ExpiresAt) {
		return exp
	}
	return d.ExpiresAt
}

// FailedInput is a failed password attempt reported by the host app.
type FailedInput struct {
	UserID    string
	IP        string
	UserAgent string
}

// RecordFailedLogin counts a failed password for the velocity signals.
func (e *Engine) RecordFailedLogin(ctx context.Context, tenant string, in FailedInput) error {
	ip, err := validateLogin(EvaluateInput{UserID: in.UserID, IP: in.IP, UserAgent: in.UserAgent})
	if err != nil {
		return err
	}
	u := UserRef{Tenant: tenant, User: in.UserID}
	if err := e.store.RecordFailure(ctx, u, Failure{Kind: "password", IPHash: e.ipHash(tenant, ip), At: e.now(), Window: velocityWindow}); err != nil {
		return Internal(err)
	}
	return nil
}
