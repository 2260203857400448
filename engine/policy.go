package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
)

// Mode is how a policy asks for 2FA.
type Mode string

// The modes.
const (
	ModeOff      Mode = "off"
	ModeOptional Mode = "optional"
	ModeRequired Mode = "required"
)

// ChallengeMode is when a policy challenges an enrolled user.
type ChallengeMode string

// The challenge modes.
const (
	ChallengeRiskBased  ChallengeMode = "risk_based"
	ChallengeEveryLogin ChallengeMode = "every_login"
)

// ColdStart is what a policy does with a user who has no login history.
type ColdStart string

// The cold-start behaviours.
const (
	ColdStartChallenge ColdStart = "challenge"
	ColdStartAllow     ColdStart = "allow"
)

// Enforcement is whether a policy's decisions are carried out or only
// watched (monitor mode, AWS Cognito's audit-only mode): a tenant switches
// monitor on to see what stepup would do before it does it.
type Enforcement string

// The enforcements.
const (
	EnforcementEnforce Enforcement = "enforce"
	// EnforcementMonitor allows every login and records what enforcement
	// would have decided (the answer's would_decide, the audit log's
	// login_monitored events, the digest's would_* counts).
	EnforcementMonitor Enforcement = "monitor"
)

// Thresholds turn a score into a decision.
type Thresholds struct {
	Challenge int `json:"challenge"`
	Deny      int `json:"deny"`
}

// Policy is a tenant's (or a group's effective) 2FA policy.
type Policy struct {
	Mode               Mode          `json:"mode"`
	Enforcement        Enforcement   `json:"enforcement"`
	Challenge          ChallengeMode `json:"challenge"`
	GraceLogins        int           `json:"grace_logins"`
	Thresholds         Thresholds    `json:"thresholds"`
	RememberDeviceDays int           `json:"remember_device_days"`
	AllowedChannels    []Channel     `json:"allowed_channels"` // also the preferred order
	SMSCountries       []string      `json:"sms_countries"`
	TrustedNetworks    []string      `json:"trusted_networks"`
	BlockedNetworks    []string      `json:"blocked_networks"`
	BlockedCountries   []string      `json:"blocked_countries"`
	ManagerEmails      []string      `json:"manager_emails"`
	ColdStart          ColdStart     `json:"cold_start"`
	SMSDisabled        bool          `json:"sms_disabled"` // the tenant's SMS kill switch
	// SMSPerHour lowers the installation's cap on all the tenant's SMS per
	// hour (0: the installation's cap).
	SMSPerHour  int  `json:"sms_per_hour"`
	DailyDigest bool `json:"daily_digest"` // mail the managers a summary each day
	// ReturnURLs are where a hosted prompt may send the browser back to
	// (prompt.go): scheme, host and port exactly, the path as a prefix.
	ReturnURLs []string `json:"return_urls"`
	// LogoURL and AccentColor brand the hosted prompt pages.
	LogoURL     string `json:"logo_url"`
	AccentColor string `json:"accent_color"`
}

// TenantPolicy is the stored policy: the base, the named groups' overrides
// (any subset of Policy's fields) and when `required` mode began.
type TenantPolicy struct {
	Policy
	Groups map[string]json.RawMessage `json:"groups"`
	// RequiredSince names, per group ("" for the base policy), the epoch
	// of its current `required` period; grace logins are counted per
	// epoch, so switching a group away and back restarts only its count.
	RequiredSince map[string]string `json:"required_since,omitempty"`
}

// DefaultPolicy is the policy of a tenant that never set one.
func DefaultPolicy() Policy {
	return Policy{
		Mode:               ModeOptional,
		Enforcement:        EnforcementEnforce,
		Challenge:          ChallengeRiskBased,
		GraceLogins:        5,
		Thresholds:         Thresholds{Challenge: risk.DefaultChallengeThreshold, Deny: risk.DefaultDenyThreshold},
		RememberDeviceDays: 30,
		AllowedChannels:    slices.Clone(AllChannels),
		SMSCountries:       []string{},
		TrustedNetworks:    []string{},
		BlockedNetworks:    []string{},
		BlockedCountries:   []string{},
		ManagerEmails:      []string{},
		ReturnURLs:         []string{},
		ColdStart:          ColdStartChallenge,
	}
}

// parseTenantPolicy decodes a stored policy over the defaults.
func parseTenantPolicy(doc []byte) (TenantPolicy, error) {
	tp := TenantPolicy{Policy: DefaultPolicy(), Groups: map[string]json.RawMessage{}}
	if len(doc) == 0 {
		return tp, nil
	}
	if err := json.Unmarshal(doc, &tp); err != nil {
		return tp, fmt.Errorf("engine: stored policy: %w", err)
	}
	if tp.Groups == nil {
		tp.Groups = map[string]json.RawMessage{}
	}
	return tp, nil
}

// Effective returns the policy of a group (the base policy for "" or an
// unknown group). The result shares nothing with tp.
func (tp TenantPolicy) Effective(group string) Policy {
	// A JSON round trip is the deep copy: decoding into a copy of the base
	// would write into the base's slices.
	b, _ := json.Marshal(tp.Policy)
	var p Policy
	_ = json.Unmarshal(b, &p)
	if raw, ok := tp.Groups[group]; ok && group != "" {
		_ = json.Unmarshal(raw, &p) // only the fields the group names change
	}
	return p
}

// compiled is a stored policy with every group's effective policy worked
// out once, cached per document. It is shared: never modify it.
type compiled struct {
	TenantPolicy
	effective map[string]Policy
	lists     map[string]networkLists
}

// networkLists are an effective policy's network lists, parsed once.
type networkLists struct{ trusted, blocked []netip.Prefix }

func compilePolicy(doc []byte) (*compiled, error) {
	tp, err := parseTenantPolicy(doc)
	if err != nil {
		return nil, err
	}
	c := &compiled{TenantPolicy: tp, effective: map[string]Policy{}, lists: map[string]networkLists{}}
	for _, g := range append([]string{""}, slices.Collect(maps.Keys(tp.Groups))...) {
		p := tp.Effective(g)
		c.effective[g] = p
		c.lists[g] = networkLists{trusted: prefixes(p.TrustedNetworks), blocked: prefixes(p.BlockedNetworks)}
	}
	return c, nil
}

// networks returns the parsed network lists of a user's group.
func (c *compiled) networks(group string) networkLists {
	if l, ok := c.lists[group]; ok {
		return l
	}
	return c.lists[""]
}

// Effective returns the (shared, read-only) policy of a user's group.
func (c *compiled) Effective(group string) Policy {
	if p, ok := c.effective[group]; ok {
		return p
	}
	return c.effective[""]
}

// epoch names the current `required` period of a user's group.
// A removed group's users are on the base policy, in the period they were
// in while it lasts (mergePolicy).
func (c *compiled) epoch(group string) string {
	if _, ok := c.Groups[group]; !ok {
		if e, kept := c.RequiredSince[group]; kept && group != "" {
			return e
		}
		group = ""
	}
	return c.RequiredSince[group]
}

func prefixes(ss []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func inAny(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var (
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
	groupRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
)

// validate checks every field, naming the first bad one.
func (p Policy) validate(prefix string) error {
	f := func(name string) string { return prefix + name }
	switch p.Mode {
	case ModeOff, ModeOptional, ModeRequired:
	default:
		return Invalid(f("mode"), "must be off, optional or required")
	}
	switch p.Enforcement {
	case EnforcementEnforce, EnforcementMonitor:
	default:
		return Invalid(f("enforcement"), "must be enforce or monitor")
	}
	switch p.Challenge {
	case ChallengeRiskBased, ChallengeEveryLogin:
	default:
		return Invalid(f("challenge"), "must be risk_based or every_login")
	}
	if p.GraceLogins < 0 || p.GraceLogins > 100 {
		return Invalid(f("grace_logins"), "must be between 0 and 100")
	}
	if p.Thresholds.Challenge < 0 || p.Thresholds.Challenge > 101 {
		return Invalid(f("thresholds.challenge"), "must be between 0 and 101")
	}
	if p.Thresholds.Deny < 0 || p.Thresholds.Deny > 101 {
		return Invalid(f("thresholds.deny"), "must be between 0 and 101")
	}
	if p.Thresholds.Challenge >= p.Thresholds.Deny {
		return Invalid(f("thresholds.challenge"), "must be below thresholds.deny")
	}
	if p.RememberDeviceDays < 0 || p.RememberDeviceDays > 365 {
		return Invalid(f("remember_device_days"), "must be between 0 and 365")
	}
	if p.SMSPerHour < 0 || p.SMSPerHour > 10_000_000 {
		return Invalid(f("sms_per_hour"), "must be between 0 (the installation's cap) and 10000000")
	}
	if len(p.AllowedChannels) == 0 {
		return Invalid(f("allowed_channels"), "must name at least one of sms, totp, email, passkey")
	}
	seen := map[Channel]bool{}
	for _, c := range p.AllowedChannels {
		if c != ChannelSMS && c != ChannelTOTP && c != ChannelEmail && c != ChannelPasskey || seen[c] {
			return Invalid(f("allowed_channels"), fmt.Sprintf("%q is not sms, totp, email or passkey, or is repeated", c))
		}
		seen[c] = true
	}
	for _, lst := range []struct {
		name string
		vals []string
	}{{"sms_countries", p.SMSCountries}, {"blocked_countries", p.BlockedCountries}} {
		for _, c := range lst.vals {
			if !countryRe.MatchString(c) {
				return Invalid(f(lst.name), fmt.Sprintf("%q is not an ISO 3166 alpha-2 code (upper case)", c))
			}
		}
	}
	for _, lst := range []struct {
		name string
		vals []string
	}{{"trusted_networks", p.TrustedNetworks}, {"blocked_networks", p.BlockedNetworks}} {
		for _, c := range lst.vals {
			if _, err := parsePrefix(c); err != nil {
				return Invalid(f(lst.name), fmt.Sprintf("%q is not a CIDR or IP address", c))
			}
		}
	}
	for _, m := range p.ManagerEmails {
		if a, err := mail.ParseAddress(m); err != nil || a.Address != m {
			return Invalid(f("manager_emails"), fmt.Sprintf("%q is not an e-mail address", m))
		}
	}
	switch p.ColdStart {
	case ColdStartChallenge, ColdStartAllow:
	default:
		return Invalid(f("cold_start"), "must be challenge or allow")
	}
	return p.validateBranding(f)
}

// PolicyView is what GET /v1/admin/policy answers.
type PolicyView struct {
	Policy
	Groups          map[string]json.RawMessage `json:"groups"`
	EffectiveGroups map[string]Policy          `json:"effective_groups"`
}

// loadPolicy reads and compiles a tenant's policy.
func (e *core) loadPolicy(ctx context.Context, tenant string) (*compiled, error) {
	doc, err := e.store.Policy(ctx, tenant)
	if err != nil {
		return nil, Internal(err)
	}
	return e.compiled(doc)
}

// compiled returns the compiled policy of a stored document, cached.
func (e *core) compiled(doc []byte) (*compiled, error) {
	key := string(doc)
	if c, ok := e.policies.get(key); ok {
		return c, nil
	}
	c, err := compilePolicy(doc)
	if err != nil {
		return nil, Internal(err)
	}
	e.policies.put(key, c)
	return c, nil
}

// GetPolicy returns a tenant's policy with every group's effective policy.
func (e *Policies) GetPolicy(ctx context.Context, tenant string) (PolicyView, error) {
	c, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return PolicyView{}, err
	}
	return view(c.TenantPolicy), nil
}

func view(tp TenantPolicy) PolicyView {
	v := PolicyView{Policy: tp.Policy, Groups: tp.Groups, EffectiveGroups: map[string]Policy{}}
	for g := range tp.Groups {
		v.EffectiveGroups[g] = tp.Effective(g)
	}
	return v
}

// PolicyPatch is a change to a policy: every field that is not nil
// replaces the current one, nil fields stay. A list field pointing at a nil
// list sets the list to null (as a JSON null in the request does). A
// group's override is stored as its patch's JSON: only the fields it sets.
type PolicyPatch struct {
	Mode               *Mode            `json:"mode,omitempty"`
	Enforcement        *Enforcement     `json:"enforcement,omitempty"`
	Challenge          *ChallengeMode   `json:"challenge,omitempty"`
	GraceLogins        *int             `json:"grace_logins,omitempty"`
	Thresholds         *ThresholdsPatch `json:"thresholds,omitempty"`
	RememberDeviceDays *int             `json:"remember_device_days,omitempty"`
	AllowedChannels    *[]Channel       `json:"allowed_channels,omitempty"`
	SMSCountries       *[]string        `json:"sms_countries,omitempty"`
	TrustedNetworks    *[]string        `json:"trusted_networks,omitempty"`
	BlockedNetworks    *[]string        `json:"blocked_networks,omitempty"`
	BlockedCountries   *[]string        `json:"blocked_countries,omitempty"`
	ManagerEmails      *[]string        `json:"manager_emails,omitempty"`
	ColdStart          *ColdStart       `json:"cold_start,omitempty"`
	SMSDisabled        *bool            `json:"sms_disabled,omitempty"`
	SMSPerHour         *int             `json:"sms_per_hour,omitempty"`
	DailyDigest        *bool            `json:"daily_digest,omitempty"`
	ReturnURLs         *[]string        `json:"return_urls,omitempty"`
	LogoURL            *string          `json:"logo_url,omitempty"`
	AccentColor        *string          `json:"accent_color,omitempty"`
}

// ThresholdsPatch changes either threshold, or both.
type ThresholdsPatch struct {
	Challenge *int `json:"challenge,omitempty"`
	Deny      *int `json:"deny,omitempty"`
}

// PolicyUpdate is a manager's change to a tenant's policy: Policy patches
// the base policy; Groups, when not nil, replaces the whole set of groups,
// each given as the fields it overrides (an empty map drops every group).
type PolicyUpdate struct {
	Policy PolicyPatch
	Groups *map[string]PolicyPatch
}

// apply writes the patch's fields over p.
func (pp PolicyPatch) apply(p *Policy) {
	set(&p.Mode, pp.Mode)
	set(&p.Enforcement, pp.Enforcement)
	set(&p.Challenge, pp.Challenge)
	set(&p.GraceLogins, pp.GraceLogins)
	if pp.Thresholds != nil {
		set(&p.Thresholds.Challenge, pp.Thresholds.Challenge)
		set(&p.Thresholds.Deny, pp.Thresholds.Deny)
	}
	set(&p.RememberDeviceDays, pp.RememberDeviceDays)
	set(&p.AllowedChannels, pp.AllowedChannels)
	set(&p.SMSCountries, pp.SMSCountries)
	set(&p.TrustedNetworks, pp.TrustedNetworks)
	set(&p.BlockedNetworks, pp.BlockedNetworks)
	set(&p.BlockedCountries, pp.BlockedCountries)
	set(&p.ManagerEmails, pp.ManagerEmails)
	set(&p.ColdStart, pp.ColdStart)
	set(&p.SMSDisabled, pp.SMSDisabled)
	set(&p.SMSPerHour, pp.SMSPerHour)
	set(&p.DailyDigest, pp.DailyDigest)
	set(&p.ReturnURLs, pp.ReturnURLs)
	set(&p.LogoURL, pp.LogoURL)
	set(&p.AccentColor, pp.AccentColor)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// PutPolicy changes a tenant's policy with merge semantics: the fields the
// update sets replace the current ones, others stay; its groups, when
// given, replace the whole set of groups. Every change is audited and
// mailed to the managers with the difference. Decoding a request into an
// update is the API's business.
func (e *Policies) PutPolicy(ctx context.Context, tenant string, u PolicyUpdate, actor Actor) (PolicyView, error) {
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return PolicyView{}, err
	}
	// Managers may change the policy at the same time: merge over what is
	// stored and write only if it is still what was read. Every round one
	// writer wins, so a few rounds serve any realistic crowd of managers.
	for try := 0; try < 20; try++ {
		stored, err := e.core.store.Policy(ctx, tenant)
		if err != nil {
			return PolicyView{}, Internal(err)
		}
		before, next, err := e.mergePolicy(stored, u)
		if err != nil {
			return PolicyView{}, err
		}
		diff := policyDiff(before, next)
		if len(diff) == 0 {
			return view(next), nil
		}
		doc, err := json.Marshal(next)
		if err != nil {
			return PolicyView{}, Internal(err)
		}
		ev := e.event(tenant, "", message.EvPolicyChanged, actor)
		ev.Details["changes"] = strings.Join(diff, "\n")
		ev.Details["before"], ev.Details["after"] = policyJSON(before), policyJSON(next)
		// Old managers hear of the change too: replacing manager_emails
		// must not pass unnoticed by the managers it removes.
		notified := next.Policy
		notified.ManagerEmails = unionAddresses(before.ManagerEmails, next.ManagerEmails)
		jobs := e.managerJobs(t, notified.ManagerEmails, ev)
		err = e.store.PutPolicy(ctx, tenant, stored, doc, ev, jobs)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return PolicyView{}, Internal(err)
		}
		e.afterModeOff(ctx, t, actor, before, next)
		return view(next), nil
	}
	return PolicyView{}, ErrConflict
}

// mergePolicy merges an update over the stored policy and validates the
// result; it returns the policy before and after.
func (e *Policies) mergePolicy(stored []byte, u PolicyUpdate) (TenantPolicy, TenantPolicy, error) {
	before, err := parseTenantPolicy(stored)
	if err != nil {
		return before, before, Internal(err)
	}
	// next is decoded afresh so the update is merged over a private copy.
	next, _ := parseTenantPolicy(stored)
	u.Policy.apply(&next.Policy)
	if u.Groups != nil {
		next.Groups = make(map[string]json.RawMessage, len(*u.Groups))
		for name, g := range *u.Groups {
			raw, err := json.Marshal(g)
			if err != nil {
				return before, next, Internal(err)
			}
			next.Groups[name] = raw
		}
	}
	if err := next.Policy.validate(""); err != nil {
		return before, next, err
	}
	for name := range next.Groups {
		if !groupRe.MatchString(name) {
			return before, next, Invalid("groups", fmt.Sprintf("%q: names are 1-40 of a-z, 0-9, _ and -, starting with a letter or digit", name))
		}
		if err := next.Effective(name).validate("groups." + name + "."); err != nil {
			return before, next, err
		}
	}
	// A group (or the base, "") entering `required` starts a new grace
	// period for its users only; one leaving it drops its epoch.
	since := map[string]string{}
	for _, g := range append([]string{""}, slices.Collect(maps.Keys(next.Groups))...) {
		if next.Effective(g).Mode != ModeRequired {
			continue
		}
		if before.Effective(g).Mode == ModeRequired && before.RequiredSince[g] != "" {
			since[g] = before.RequiredSince[g]
		} else {
			since[g] = e.randomToken(5)
		}
	}
	// A group removed leaves its users on the base policy: where both
	// require 2FA their duty never paused, so they keep their period (and
	// the grace logins used in it) for as long as the base stays required.
	for g, epoch := range before.RequiredSince {
		if _, kept := next.Groups[g]; g == "" || kept || since[""] == "" || before.Effective(g).Mode != ModeRequired {
			continue
		}
		since[g] = epoch
	}
	next.RequiredSince = since
	return before, next, nil
}

// policyJSON is the policy as managers set it (without internal fields).
func policyJSON(tp TenantPolicy) string {
	b, _ := json.Marshal(struct {
		Policy
		Groups map[string]json.RawMessage `json:"groups"`
	}{tp.Policy, tp.Groups})
	return string(b)
}

// policyDiff lists "field: before → after" for every changed field.
func policyDiff(a, b TenantPolicy) []string {
	var out []string
	am, bm := flatten(a.Policy), flatten(b.Policy)
	keys := make([]string, 0, len(bm))
	for k := range bm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if am[k] != bm[k] {
			out = append(out, fmt.Sprintf("%s: %s → %s", k, am[k], bm[k]))
		}
	}
	if !sameGroups(a.Groups, b.Groups) {
		ga, _ := json.Marshal(a.Groups)
		gb, _ := json.Marshal(b.Groups)
		out = append(out, fmt.Sprintf("groups: %s → %s", ga, gb))
	}
	return out
}

// sameGroups compares group overrides by meaning, not by the order their
// fields were stored in.
func sameGroups(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for g, ra := range a {
		rb, ok := b[g]
		if !ok {
			return false
		}
		var ma, mb map[string]any
		if json.Unmarshal(ra, &ma) != nil || json.Unmarshal(rb, &mb) != nil || !reflect.DeepEqual(ma, mb) {
			return false
		}
	}
	return true
}

func flatten(p Policy) map[string]string {
	b, _ := json.Marshal(p)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	out := map[string]string{}
	for k, v := range m {
		if k == "thresholds" {
			out["thresholds.challenge"] = fmt.Sprint(p.Thresholds.Challenge)
			out["thresholds.deny"] = fmt.Sprint(p.Thresholds.Deny)
			continue
		}
		out[k] = string(v)
	}
	return out
}

// unionAddresses returns the addresses of a then those of b not already
// named, comparing case-insensitively.
func unionAddresses(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, addr := range slices.Concat(a, b) {
		k := strings.ToLower(strings.TrimSpace(addr))
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, addr)
	}
	return out
}
