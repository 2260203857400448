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

// Logins scores logins and decides what happens next; it also counts
// failed passwords and imports past logins.
type Logins struct {
	*core
	store loginStore
}

// loginStore is what Logins reads and writes.
type loginStore interface {
	// LoadLogin reads everything the score needs in one round trip.
	LoadLogin(ctx context.Context, u UserRef, q LoginQuery) (LoginState, error)
	// SaveLogin writes what an evaluation produced in one round trip: the
	// user's side (w.Record, grace, learning, w.Commit) atomically, the
	// tenant's tallies and counts beside it (see LoginWrite). It returns
	// the commit's error (ErrConflict, a challenge error) when it failed.
	SaveLogin(ctx context.Context, u UserRef, w LoginWrite) (LoginSaved, error)
	// RecordFailure counts a failed password (user and IP windows) or a
	// failed challenge (user window).
	RecordFailure(ctx context.Context, u UserRef, f Failure) error
	Commit(ctx context.Context, u UserRef, c Commit) error
	feedbackStore
}

// Decision is what an evaluation tells the host app to do.
type Decision string

// The decisions.
const (
	DecisionAllow     Decision = "allow"
	DecisionChallenge Decision = "challenge"
	DecisionDeny      Decision = "deny"
	DecisionEnroll    Decision = "enroll"

	// DecisionImported marks a login record taught by a history import; it
	// is never an evaluation's answer.
	DecisionImported Decision = "imported"
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
	Decision   Decision       `json:"decision"`
	Risk       RiskView       `json:"risk"`
	Challenge  *ChallengeView `json:"challenge,omitempty"`
	Enrollment Enrollment     `json:"enrollment"`

	// WouldDecide is, in monitor mode, what enforcement would have decided
	// when that is not allow (Decision is then allow).
	WouldDecide Decision `json:"would_decide,omitempty"`
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

// ValidClient checks the end user's client as a host app reports it with
// a lifecycle call or a verification, as evaluate checks a login's: an IP
// address when given (a malformed one would escape the per-IP limits and
// leave the user's mail without its origin), a user agent of at most 1024
// bytes.
func ValidClient(ip, userAgent string) error {
	if ip != "" {
		if _, err := parseIP(ip); err != nil {
			return err
		}
	}
	if len(userAgent) > 1024 {
		return Invalid("user_agent", "at most 1024 bytes")
	}
	return nil
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

// features extracts a login's features and, per feature level, the
// value's keyed hash and its tenant count bucket.
func (e *core) features(tenant string, ip netip.Addr, ua, device string) (risk.Features, []LevelValue) {
	in := risk.Input{IP: ip, UserAgent: ua, DeviceID: device}
	if e.opt.Geo != nil {
		in.Geo = e.opt.Geo.Lookup(ip)
	}
	f := risk.Extract(in, e.opt.Risk)
	levels := f.Levels()
	vals := make([]LevelValue, len(levels))
	for i, l := range levels {
		sum := e.featMAC.Sum(tenant, l.Name, l.Value)
		vals[i] = LevelValue{Level: l.Name, Hash: hex.EncodeToString(sum[:8]),
			Bucket: strconv.FormatUint(uint64(binary.BigEndian.Uint32(sum[8:12])%countBuckets), 36)}
	}
	return f, vals
}

func (e *core) ipHash(tenant string, ip netip.Addr) string {
	return e.subject(tenant, "ip", ip.String())
}

// clientHash names a client in the per-address limits: its IPv4 address,
// or its IPv6 /64. One home, phone or cloud VM holds a whole /64, so
// counted address by address a client taking a fresh address per request
// would never meet its limit.
func (e *core) clientHash(tenant string, ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		return e.ipHash(tenant, ip)
	}
	p, _ := ip.Prefix(64)
	return e.subject(tenant, "ip", p.String())
}

// learnOptions bound the history a login is learned into.
func (e *core) learnOptions() LearnOptions {
	return LearnOptions{HistorySize: e.opt.HistorySize, HistoryTTL: e.historyTTL()}
}

// Evaluate scores a login and decides what happens next: load (one store
// read), decide (pure), save (one store write).
func (e *Logins) Evaluate(ctx context.Context, tenant string, in EvaluateInput) (Evaluation, error) {
	ip, err := validateLogin(in)
	if err != nil {
		return Evaluation{}, err
	}
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return Evaluation{}, err
	}
	l, err := e.load(ctx, UserRef{Tenant: tenant, User: in.UserID}, ip, in)
	if err != nil {
		return Evaluation{}, err
	}
	v := decide(l.facts)
	out := Evaluation{LoginID: l.rec.ID, Decision: v.Decision, WouldDecide: v.Would, Enrollment: v.Enrollment, Risk: l.view}
	l.rec.Decision = v.Decision
	w, err := e.plan(ctx, t, l, v, &out)
	if err != nil {
		return Evaluation{}, err
	}
	saved, err := e.store.SaveLogin(ctx, l.user, w)
	if err != nil {
		if len(w.Limits) > 0 {
			// The write may have landed without its limits' verdicts, and a
			// job whose verdict never comes is sent: cancel the challenge
			// the host will never hear of (fails harmlessly if it was not
			// written).
			ch := w.Commit.NewChallenges[0].ID
			_ = e.store.Commit(ctx, l.user, Commit{Version: -1, Challenge: ch, ChallengeStatus: StatusCancelled, Now: e.now()})
		}
		return Evaluation{}, AsError(err)
	}
	if saved.Refused != "" {
		if err := e.fallBack(ctx, t, l, w, saved, &out); err != nil {
			return Evaluation{}, err
		}
	}
	if w.CountBlocked {
		e.watchSpike(ctx, t, l.policy, saved)
	}
	if v.Would != "" {
		// Statistics, like every tally outside the login's own write: a
		// monitored login's would-be decision is a field of the day's
		// tally the store's login write does not know.
		e.count(ctx, t.ID, map[string]int64{"would_" + string(v.Would): 1})
	}
	return out, nil
}

// loaded is a login with everything its decision needs.
type loaded struct {
	user    UserRef
	in      EvaluateInput
	account Account
	policy  Policy
	epoch   string // the user's group's grace epoch
	rec     LoginRecord
	view    RiskView
	facts   facts
	state   *LoginState // what the store read (LoginWrite.Seen)
}

// actor is the end user who logs in, as the login's audit events and
// send limits name him.
func (l loaded) actor() Actor {
	return Actor{Kind: message.ActorUser, IP: l.in.IP, UserAgent: l.in.UserAgent}
}

// load reads the user's history, account and policy in one store read
// and scores the login.
func (e *Logins) load(ctx context.Context, u UserRef, ip netip.Addr, in EvaluateInput) (loaded, error) {
	now := e.now()
	feats, vals := e.features(u.Tenant, ip, in.UserAgent, in.DeviceID)
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Levels: vals, IPHash: e.ipHash(u.Tenant, ip), Now: now, Window: velocityWindow,
		Networks: networkLevels(vals)})
	if err != nil {
		return loaded{}, Internal(err)
	}
	pol, err := e.compiled(st.Policy)
	if err != nil {
		return loaded{}, err
	}
	a := st.Account
	p := pol.Effective(a.Group)
	si := scoreInput(st, feats, pol, p, a.Group, ip, now)
	if e.opt.IPLists != nil {
		si.IPLists = e.opt.IPLists.Lookup(ip)
	}
	si.Reported = e.reportedWeight(st.Reports, now)
	r := risk.Score(si, e.opt.Risk)
	l := loaded{user: u, in: in, account: a, policy: p, epoch: pol.epoch(a.Group), state: &st}
	l.rec = LoginRecord{
		ID: e.newID("lg_", e.core.store.Placement(u)), Tenant: u.Tenant, User: in.UserID, At: now, Levels: vals,
		Device: deviceInfo(feats.UA, feats.Country),
		IP:     maskIP(ip), Score: r.Score, First: st.UserLogins == 0,
		Place: &Place{At: now, Country: feats.Country, Lat: feats.Geo.Lat, Lon: feats.Geo.Lon, HasLoc: feats.Geo.HasLocation},
	}
	if in.DeviceID != "" {
		l.rec.Device.DeviceHash = e.deviceHash(u, in.DeviceID)
	}
	l.view = RiskView{Score: r.Score, Level: risk.ScoreLevel(r.Score, p.Thresholds.Challenge, p.Thresholds.Deny), Signals: r.Signals}
	if l.view.Signals == nil {
		l.view.Signals = []risk.Signal{}
	}
	remembered := in.DeviceToken != "" && in.DeviceID != "" && e.validDevice(u, a, p, l.rec.Device.DeviceHash, in.DeviceToken, now)
	if remembered {
		l.view.Signals = append(l.view.Signals, risk.Signal{Name: "remembered_device"})
	}
	l.rec.Level = l.view.Level
	for _, s := range l.view.Signals {
		l.rec.Signals = append(l.rec.Signals, s.Name)
	}
	l.facts = facts{Risk: r, Policy: p, Enrolled: a.Factors.Any(), GraceLeft: graceLeft(p, a, st, l.epoch),
		Forced: st.Force, Remembered: remembered}
	return l, nil
}

// scoreInput is what the scorer needs of a loaded login.
func scoreInput(st LoginState, feats risk.Features, pol *compiled, p Policy, group string, ip netip.Addr, now time.Time) risk.ScoreInput {
	si := risk.ScoreInput{
		Features: feats, Counts: make(map[string]risk.LevelCounts, len(st.Levels)),
		UserLogins: st.UserLogins, TenantLogins: st.TenantLogins, TenantUsers: st.TenantUsers,
		FailedPasswordsUser: int(st.FailedPwUser), FailedPasswordsIP: int(st.FailedIPUsers),
		FailedChallengesUser: int(st.FailedChUser), Now: now,
		Trusted:        inAny(ip, pol.networks(group).trusted),
		BlockedNetwork: inAny(ip, pol.networks(group).blocked),
		BlockedCountry: feats.Country != "" && slices.Contains(p.BlockedCountries, feats.Country),
	}
	for _, c := range st.Levels {
		si.Counts[c.Level] = risk.LevelCounts{UserCount: c.UserCount, UserDistinct: c.UserDistinct, TenantCount: c.TenantCount, TenantDistinct: c.TenantDistinct}
	}
	if st.Last != nil && st.Last.HasLoc {
		si.LastLogin = &risk.Place{At: st.Last.At, Lat: st.Last.Lat, Lon: st.Last.Lon, Country: st.Last.Country}
	}
	return si
}

// graceLeft is how many grace logins a user without 2FA has left under a
// required policy before this login, or -1 when there is no such duty.
func graceLeft(p Policy, a Account, st LoginState, epoch string) int {
	if a.Factors.Any() || p.Mode != ModeRequired {
		return -1
	}
	if st.GraceEpoch == epoch {
		return max(p.GraceLogins-st.GraceUsed, 0)
	}
	return p.GraceLogins
}

// facts are what a login's decision rests on.
type facts struct {
	Risk       risk.Result
	Policy     Policy
	Enrolled   bool
	GraceLeft  int  // grace logins left before this one; -1: no enrolment duty
	Forced     bool // a manager asked for a challenge at the next login
	Remembered bool // a valid remembered-device token came with the login
}

// verdict is what decide concludes.
type verdict struct {
	Decision   Decision
	Enrollment Enrollment
	UseGrace   bool // the login uses one grace login

	Would Decision // monitor mode: the enforced decision, when not allow
}

// decide turns a login's facts into a decision. It is pure: the whole
// policy of stepup's decisions is here, table-tested in decide_test.go.
func decide(f facts) verdict {
	p, r := f.Policy, f.Risk
	var v verdict
	// The enrolment duty of a user without 2FA holds on every network:
	// a trusted network skips challenges, not enrolment.
	switch {
	case f.GraceLeft >= 0:
		left := max(f.GraceLeft-1, 0) // this login uses one
		v.Enrollment = Enrollment{Required: true, GraceLoginsLeft: &left}
	case !f.Enrolled:
		v.Enrollment.Suggested = p.Mode == ModeOptional
	}
	switch {
	case r.Force == risk.ForceDeny || r.Score >= p.Thresholds.Deny:
		v.Decision = DecisionDeny
	case p.Mode == ModeOff:
		v.Decision = DecisionAllow
	case f.GraceLeft == 0:
		v.Decision = DecisionEnroll
	case f.GraceLeft > 0:
		v.Decision, v.UseGrace = DecisionAllow, true
	case r.Force == risk.ForceAllow || !f.Enrolled:
		v.Decision = DecisionAllow
	case f.Forced || r.Force == risk.ForceChallenge: // a manager or an IP list
		v.Decision = DecisionChallenge
	case f.Remembered:
		v.Decision = DecisionAllow
	case p.Challenge == ChallengeEveryLogin:
		v.Decision = DecisionChallenge
	case r.NoHistory && p.ColdStart == ColdStartChallenge:
		v.Decision = DecisionChallenge
	case r.NoHistory || r.Score < p.Thresholds.Challenge:
		v.Decision = DecisionAllow
	default:
		v.Decision = DecisionChallenge
	}
	if v.Decision == DecisionDeny || p.Mode == ModeOff {
		v.Enrollment = Enrollment{} // nothing to set up on a refused login, or with 2FA off
	}
	if p.Enforcement == EnforcementMonitor {
		return monitored(f, v)
	}
	return v
}

// monitored is what monitor mode makes of the enforced verdict. It is a
// step after the enforced decision rather than cases within it, so that
// what monitor reports is exactly what enforce would decide (a blocked
// network: deny; a trusted one: allow; a forced challenge: challenge).
// The login is allowed and learnt; nothing is enforced, so a grace login
// is not used and enrolment is suggested, never required (the grace count
// starts when the tenant enforces). A forced challenge stays pending for
// the first enforced login.
func monitored(f facts, v verdict) verdict {
	if v.Decision != DecisionAllow {
		v.Would = v.Decision
	}
	v.Decision, v.UseGrace = DecisionAllow, false
	v.Enrollment = Enrollment{Suggested: !f.Enrolled && f.Policy.Mode != ModeOff}
	return v
}

// plan builds the one write of an evaluation: the login record (kept for
// a challenged login's verification to learn it and, for every login, for
// a verdict within the feedback window), what an
// allowed login teaches the history, a grace login, and the challenge or
// the denial's audit event with their messages, which the store applies as
// one atomic write of the user's. It fills out's challenge.
func (e *Logins) plan(ctx context.Context, t Tenant, l loaded, v verdict, out *Evaluation) (LoginWrite, error) {
	now := l.rec.At
	w := LoginWrite{Record: l.rec, RecordTTL: e.recordTTL(), LearnOpt: e.learnOptions(), Learn: v.Decision == DecisionAllow,
		CountBlocked: v.Decision == DecisionChallenge || v.Decision == DecisionDeny, Seen: l.state}
	if v.UseGrace {
		w.GraceEpoch = l.epoch
	}
	actor := l.actor()
	switch v.Decision {
	case DecisionChallenge:
		d, limits, err := e.loginChallenge(ctx, t, l.policy, l.user, l.account, actor, e.loginChannels(l.policy, l.account))
		if err != nil {
			return w, err
		}
		w.Limits = limits
		d.ch.LoginID = l.rec.ID
		cv := d.ch.view(now)
		cv.Channels = l.account.Factors.Channels()
		out.Challenge = &cv
		// A forced challenge stays due until a login's code is verified
		// (Challenges.login): a login started and dropped does not spend it.
		w.Commit = &Commit{Version: -1, NewChallenges: []Challenge{d.ch}, Jobs: d.jobs, Now: now}
	case DecisionDeny:
		ev := e.riskEvent(t, l, message.EvLoginDenied, actor)
		jobs := e.userNotice(t, l.account, &ev)
		w.Commit = &Commit{Version: -1, Events: []Event{ev}, Jobs: jobs, Now: now}
	}
	if v.Would != "" {
		// Audited for the managers' evidence; the user hears nothing.
		ev := e.riskEvent(t, l, message.EvLoginMonitored, actor)
		ev.Details["would_decide"] = string(v.Would)
		w.Commit = &Commit{Version: -1, Events: []Event{ev}, Now: now}
	}
	return w, nil
}

// riskEvent is a login's audit event with its score and signals.
func (e *Logins) riskEvent(t Tenant, l loaded, typ message.EventType, actor Actor) Event {
	ev := e.event(t.ID, l.user.User, typ, actor)
	ev.Details["score"] = strconv.Itoa(l.rec.Score)
	if len(l.facts.Risk.Signals) > 0 {
		ev.Details["signals"] = signalNames(l.facts.Risk.Signals)
	}
	return ev
}

// Spike thresholds: an hour with at least spikeMin blocked logins and
// spikeFactor times the day's hourly average alerts the managers.
const (
	spikeMin    = 20
	spikeFactor = 4
)

// watchSpike alerts the managers when the hour's count of blocked logins
// spikes against the tenant's usual rate.
func (e *Logins) watchSpike(ctx context.Context, t Tenant, p Policy, s LoginSaved) {
	cur, base := s.Blocked, s.Baseline
	if cur >= spikeMin && float64(cur) >= spikeFactor*base {
		e.alert(ctx, t, p, message.EvAlertLoginSpike, map[string]string{
			"count": strconv.FormatInt(cur, 10), "window": "the last hour",
			"baseline": strconv.FormatFloat(base, 'f', 1, 64) + " an hour"})
	}
}

// loginChannels are the factors a login challenge may use, in order:
// the user's preferred one, then the policy's other allowed ones, then
// the rest of his.
func (e *Logins) loginChannels(p Policy, a Account) []Channel {
	first, _ := preferred(p, a.Factors)
	order := []Channel{first}
	for _, c := range append(slices.Clone(p.AllowedChannels), a.Factors.Channels()...) {
		if a.Factors.Has(c) && !slices.Contains(order, c) {
			order = append(order, c)
		}
	}
	return order
}

// loginChallenge prepares a login challenge on the first of order that
// nothing refuses up front (the SMS kill switch, a destination country
// the policy does not allow), with the send limits its code takes: they
// are taken with the login's write, in its round trip.
func (e *Logins) loginChallenge(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, actor Actor, order []Channel) (draft, []Limit, error) {
	var firstErr error
	for _, c := range order {
		to, err := e.factorDestination(a, c)
		if err == nil {
			var limits []Limit
			if limits, err = e.sendLimits(ctx, t, p, u, c, to, actor); err == nil {
				return e.challengeFor(t, u, a, PurposeLogin, c, to, clientData(actor)), limits, nil
			}
		}
		if firstErr == nil {
			firstErr = AsError(err)
		}
	}
	return draft{}, nil, firstErr
}

// fallBack answers a login whose challenge's code a send limit refused
// in the login's write (its message is never sent): the challenge moves
// to the next of the user's factors whose code the limits allow, each
// taken in its own round trips as in Switch; with none left, the
// challenge is cancelled (a manager's forced challenge stays due) and the
// first refusal is the answer. Only an abused user, number, address,
// client or tenant pays these extra round trips.
func (e *Logins) fallBack(ctx context.Context, t Tenant, l loaded, w LoginWrite, saved LoginSaved, out *Evaluation) error {
	refused := w.Commit.NewChallenges[0]
	to, _ := e.factorDestination(l.account, refused.Channel)
	refusal := e.limitRefused(ctx, t, l.policy, refused.Channel, to, saved.Refused, saved.RetryAfter)
	actor := l.actor()
	order := e.loginChannels(l.policy, l.account)
	if i := slices.Index(order, refused.Channel); i >= 0 {
		order = order[i+1:]
	}
	for _, c := range order {
		d, err := e.challengeOn(ctx, t, l.policy, l.user, l.account, c, PurposeLogin, clientData(actor), actor)
		if err != nil {
			continue
		}
		d.ch.LoginID = l.rec.ID
		cv, err := e.replaceChallenge(ctx, e.store, l.user, refused.ID, d, l.account)
		if err != nil {
			return err
		}
		out.Challenge = &cv
		return nil
	}
	cm := Commit{Version: -1, Challenge: refused.ID, ChallengeStatus: StatusCancelled, Now: e.now()}
	if err := e.store.Commit(ctx, l.user, cm); err != nil {
		return AsError(err)
	}
	return refusal
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

// deviceTokenHash is how a remembered device's token is stored.
func (e *core) deviceTokenHash(u UserRef, tok string) string {
	return hex.EncodeToString(e.tokenMAC.Sum("device", u.Tenant, u.User, tok))
}

// deviceHash is how a host's device id is stored.
func (e *core) deviceHash(u UserRef, deviceID string) string {
	return hex.EncodeToString(e.tokenMAC.Sum("device-id", u.Tenant, u.User, deviceID))
}

// validDevice checks a remembered-device token: bound to this user and
// device, unexpired, and within the policy's current lifetime (lowering
// remember_device_days shortens existing tokens).
func (e *Logins) validDevice(u UserRef, a Account, p Policy, deviceHash, token string, now time.Time) bool {
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
func (e *Logins) RecordFailedLogin(ctx context.Context, tenant string, in FailedInput) error {
	ip, err := validateLogin(EvaluateInput{UserID: in.UserID, IP: in.IP, UserAgent: in.UserAgent})
	if err != nil {
		return err
	}
	u := UserRef{Tenant: tenant, User: in.UserID}
	if err := e.store.RecordFailure(ctx, u, Failure{Kind: FailedPassword, IPHash: e.ipHash(tenant, ip), UserHash: e.userSubject(u),
		At: e.now(), Window: velocityWindow}); err != nil {
		return Internal(err)
	}
	return nil
}
