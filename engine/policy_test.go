package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// policyTestStore is the part of Store that PutPolicy and GetPolicy touch:
// one tenant and its policy document. Every other method panics (through
// the nil embedded interface), so a test notices if the policy code starts
// depending on more.
type policyTestStore struct {
	Store
	mu     sync.Mutex
	tenant Tenant
	doc    []byte
	events []Event
}

func (s *policyTestStore) Tenant(_ context.Context, id string) (Tenant, bool, error) {
	return s.tenant, id == s.tenant.ID, nil
}

func (s *policyTestStore) Policy(context.Context, string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.doc), nil
}

func (s *policyTestStore) PutPolicy(_ context.Context, _ string, prev, doc []byte, ev Event, _ []Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(prev, s.doc) {
		return ErrConflict
	}
	s.doc = slices.Clone(doc)
	s.events = append(s.events, ev)
	return nil
}

func (s *policyTestStore) Users(context.Context, string, func(string) error) error { return nil }

// policyTestSecret is a 32-byte server secret for engines built in tests.
var policyTestSecret = []byte("policy-test-secret-0123456789abcdef")

func newPolicyTestEngine(t *testing.T) (*Engine, *policyTestStore) {
	t.Helper()
	st := &policyTestStore{tenant: Tenant{ID: "t1", Name: "acme", SenderName: "Acme"}}
	e, err := New(st, Options{Secret: policyTestSecret})
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

// wantPolicyError checks err is a domain error with the code and, when
// field is not "", that field.
func wantPolicyError(t *testing.T, err error, kind Kind, code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s (field %q)", code, field)
	}
	e := AsError(err)
	if e.Kind != kind || e.Code != code {
		t.Fatalf("error %v (kind %d), want %s (kind %d)", e, e.Kind, code, kind)
	}
	if field != "" && e.Meta["field"] != field {
		t.Fatalf("error %v names field %v, want %q", e, e.Meta["field"], field)
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := DefaultPolicy()
	if p.Mode != ModeOptional || p.Challenge != ChallengeRiskBased || p.GraceLogins != 5 || p.RememberDeviceDays != 30 ||
		p.Thresholds != (Thresholds{Challenge: 50, Deny: 101}) || p.ColdStart != ColdStartChallenge ||
		!slices.Equal(p.AllowedChannels, []Channel{ChannelTOTP, ChannelSMS, ChannelEmail, ChannelPasskey}) {
		t.Errorf("default policy %+v", p)
	}
	if err := p.validate(""); err != nil {
		t.Errorf("the default policy does not validate: %v", err)
	}
}

// TestPolicyValidate walks every field of Policy.validate: each case
// changes the default policy and names the field the error must name (""
// for a valid policy).
func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(p *Policy)
		field string
	}{
		{"mode off", func(p *Policy) { p.Mode = "off" }, ""},
		{"mode required", func(p *Policy) { p.Mode = "required" }, ""},
		{"mode empty", func(p *Policy) { p.Mode = "" }, "mode"},
		{"mode upper case", func(p *Policy) { p.Mode = "Required" }, "mode"},
		{"mode unknown", func(p *Policy) { p.Mode = "always" }, "mode"},
		{"enforcement empty", func(p *Policy) { p.Enforcement = "" }, "enforcement"},
		{"enforcement unknown", func(p *Policy) { p.Enforcement = "audit" }, "enforcement"},
		{"challenge every_login", func(p *Policy) { p.Challenge = "every_login" }, ""},
		{"challenge unknown", func(p *Policy) { p.Challenge = "sometimes" }, "challenge"},
		{"challenge empty", func(p *Policy) { p.Challenge = "" }, "challenge"},
		{"grace 0", func(p *Policy) { p.GraceLogins = 0 }, ""},
		{"grace 100", func(p *Policy) { p.GraceLogins = 100 }, ""},
		{"grace -1", func(p *Policy) { p.GraceLogins = -1 }, "grace_logins"},
		{"grace 101", func(p *Policy) { p.GraceLogins = 101 }, "grace_logins"},
		{"thresholds 0/1", func(p *Policy) { p.Thresholds = Thresholds{0, 1} }, ""},
		{"thresholds 100/101", func(p *Policy) { p.Thresholds = Thresholds{100, 101} }, ""},
		{"thresholds 40/80", func(p *Policy) { p.Thresholds = Thresholds{40, 80} }, ""},
		{"challenge threshold -1", func(p *Policy) { p.Thresholds.Challenge = -1 }, "thresholds.challenge"},
		{"challenge threshold 102", func(p *Policy) { p.Thresholds.Challenge = 102 }, "thresholds.challenge"},
		{"deny threshold 102", func(p *Policy) { p.Thresholds.Deny = 102 }, "thresholds.deny"},
		{"deny threshold -1", func(p *Policy) { p.Thresholds = Thresholds{0, -1} }, "thresholds.deny"},
		{"challenge equals deny", func(p *Policy) { p.Thresholds = Thresholds{60, 60} }, "thresholds.challenge"},
		{"challenge above deny", func(p *Policy) { p.Thresholds = Thresholds{70, 60} }, "thresholds.challenge"},
		{"remember 0", func(p *Policy) { p.RememberDeviceDays = 0 }, ""},
		{"remember 365", func(p *Policy) { p.RememberDeviceDays = 365 }, ""},
		{"remember -1", func(p *Policy) { p.RememberDeviceDays = -1 }, "remember_device_days"},
		{"remember 366", func(p *Policy) { p.RememberDeviceDays = 366 }, "remember_device_days"},
		{"sms per hour -1", func(p *Policy) { p.SMSPerHour = -1 }, "sms_per_hour"},
		{"sms per hour too high", func(p *Policy) { p.SMSPerHour = 10_000_001 }, "sms_per_hour"},
		{"channels one", func(p *Policy) { p.AllowedChannels = []Channel{ChannelTOTP} }, ""},
		{"channels reordered", func(p *Policy) { p.AllowedChannels = []Channel{ChannelEmail, ChannelSMS} }, ""},
		{"channels empty", func(p *Policy) { p.AllowedChannels = []Channel{} }, "allowed_channels"},
		{"channels nil", func(p *Policy) { p.AllowedChannels = nil }, "allowed_channels"},
		{"channels unknown", func(p *Policy) { p.AllowedChannels = []Channel{"voice"} }, "allowed_channels"},
		{"channels upper case", func(p *Policy) { p.AllowedChannels = []Channel{"SMS"} }, "allowed_channels"},
		{"channels repeated", func(p *Policy) { p.AllowedChannels = []Channel{ChannelSMS, ChannelTOTP, ChannelSMS} }, "allowed_channels"},
		{"sms countries", func(p *Policy) { p.SMSCountries = []string{"AU", "GB"} }, ""},
		{"sms country lower case", func(p *Policy) { p.SMSCountries = []string{"au"} }, "sms_countries"},
		{"sms country alpha-3", func(p *Policy) { p.SMSCountries = []string{"AUS"} }, "sms_countries"},
		{"sms country empty string", func(p *Policy) { p.SMSCountries = []string{""} }, "sms_countries"},
		{"sms country digits", func(p *Policy) { p.SMSCountries = []string{"61"} }, "sms_countries"},
		{"blocked countries", func(p *Policy) { p.BlockedCountries = []string{"RU", "KP"} }, ""},
		{"blocked country mixed case", func(p *Policy) { p.BlockedCountries = []string{"Ru"} }, "blocked_countries"},
		{"blocked country padded", func(p *Policy) { p.BlockedCountries = []string{" RU"} }, "blocked_countries"},
		{"trusted CIDR", func(p *Policy) { p.TrustedNetworks = []string{"198.51.100.0/24", "2001:db8::/32"} }, ""},
		{"trusted IP", func(p *Policy) { p.TrustedNetworks = []string{"198.51.100.7", "2001:db8::1"} }, ""},
		{"trusted unmasked CIDR", func(p *Policy) { p.TrustedNetworks = []string{"198.51.100.7/24"} }, ""},
		{"trusted bad", func(p *Policy) { p.TrustedNetworks = []string{"198.51.100.0/33"} }, "trusted_networks"},
		{"trusted host name", func(p *Policy) { p.TrustedNetworks = []string{"office.example.com"} }, "trusted_networks"},
		{"trusted empty string", func(p *Policy) { p.TrustedNetworks = []string{""} }, "trusted_networks"},
		{"blocked networks", func(p *Policy) { p.BlockedNetworks = []string{"203.0.113.0/24"} }, ""},
		{"blocked network bad", func(p *Policy) { p.BlockedNetworks = []string{"203.0.113.0/24", "256.0.0.1"} }, "blocked_networks"},
		{"blocked network zone", func(p *Policy) { p.BlockedNetworks = []string{"fe80::1%eth0/64"} }, "blocked_networks"},
		{"manager emails", func(p *Policy) { p.ManagerEmails = []string{"it@example.com", "boss@example.org"} }, ""},
		{"manager email bare word", func(p *Policy) { p.ManagerEmails = []string{"boss"} }, "manager_emails"},
		{"manager email with name", func(p *Policy) { p.ManagerEmails = []string{"Boss <boss@example.com>"} }, "manager_emails"},
		{"manager email empty", func(p *Policy) { p.ManagerEmails = []string{""} }, "manager_emails"},
		{"cold start allow", func(p *Policy) { p.ColdStart = "allow" }, ""},
		{"cold start bad", func(p *Policy) { p.ColdStart = "deny" }, "cold_start"},
		{"cold start empty", func(p *Policy) { p.ColdStart = "" }, "cold_start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			tc.edit(&p)
			err := p.validate("")
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid policy refused: %v", err)
				}
				return
			}
			wantPolicyError(t, err, KindInvalid, "validation_failed", tc.field)
			// A group's policy names the field under its prefix.
			wantPolicyError(t, p.validate("groups.staff."), KindInvalid, "validation_failed", "groups.staff."+tc.field)
		})
	}
}

// TestPutPolicyValidation sends updates through PutPolicy: fields and
// group overrides checked by name, group names, and nothing stored when
// refused. Decoding request bodies into updates is api's (TestDecodePolicy).
func TestPutPolicyValidation(t *testing.T) {
	groups := func(g map[string]PolicyPatch) PolicyUpdate { return PolicyUpdate{Groups: &g} }
	cases := []struct {
		name   string
		update PolicyUpdate
		field  string // "" = accepted
	}{
		{"empty update", PolicyUpdate{}, ""},
		{"partial thresholds keep deny", PolicyUpdate{Policy: PolicyPatch{Thresholds: &ThresholdsPatch{Challenge: new(100)}}}, ""},
		{"challenge over default deny", PolicyUpdate{Policy: PolicyPatch{Thresholds: &ThresholdsPatch{Challenge: new(101)}}}, "thresholds.challenge"},
		{"grace too high", PolicyUpdate{Policy: PolicyPatch{GraceLogins: new(101)}}, "grace_logins"},
		{"channels null", PolicyUpdate{Policy: PolicyPatch{AllowedChannels: new([]Channel)}}, "allowed_channels"},
		{"mode bad", PolicyUpdate{Policy: PolicyPatch{Mode: new(Mode("always"))}}, "mode"},
		{"monitor", PolicyUpdate{Policy: PolicyPatch{Enforcement: new(EnforcementMonitor)}}, ""},
		{"enforcement bad", PolicyUpdate{Policy: PolicyPatch{Enforcement: new(Enforcement("watch"))}}, "enforcement"},
		{"group in monitor", groups(map[string]PolicyPatch{"pilot": {Enforcement: new(EnforcementMonitor)}}), ""},
		{"group enforcement bad", groups(map[string]PolicyPatch{"pilot": {Enforcement: new(Enforcement("watch"))}}), "groups.pilot.enforcement"},
		{"groups", groups(map[string]PolicyPatch{"staff": {Mode: new(ModeRequired)}, "patients-2": {AllowedChannels: &[]Channel{ChannelSMS}}}), ""},
		{"no groups", groups(map[string]PolicyPatch{}), ""},
		{"group name upper case", groups(map[string]PolicyPatch{"Staff": {}}), "groups"},
		{"group name with space", groups(map[string]PolicyPatch{"night staff": {}}), "groups"},
		{"group name empty", groups(map[string]PolicyPatch{"": {}}), "groups"},
		{"group name too long", groups(map[string]PolicyPatch{strings.Repeat("g", 41): {}}), "groups"},
		{"group mode bad", groups(map[string]PolicyPatch{"staff": {Mode: new(Mode("sometimes"))}}), "groups.staff.mode"},
		{"group channels empty", groups(map[string]PolicyPatch{"staff": {AllowedChannels: &[]Channel{}}}), "groups.staff.allowed_channels"},
		{"group channels null", groups(map[string]PolicyPatch{"staff": {AllowedChannels: new([]Channel)}}), "groups.staff.allowed_channels"},
		{"group thresholds against base", groups(map[string]PolicyPatch{"staff": {Thresholds: &ThresholdsPatch{Deny: new(40)}}}), "groups.staff.thresholds.challenge"},
		{"group sms country", groups(map[string]PolicyPatch{"staff": {SMSCountries: &[]string{"uk"}}}), "groups.staff.sms_countries"},
		{"group network", groups(map[string]PolicyPatch{"staff": {TrustedNetworks: &[]string{"10.0.0.0/8", "nope"}}}), "groups.staff.trusted_networks"},
		{"group grace", groups(map[string]PolicyPatch{"staff": {GraceLogins: new(1000)}}), "groups.staff.grace_logins"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, st := newPolicyTestEngine(t)
			before, _ := e.Policies.GetPolicy(context.Background(), "t1")
			_, err := e.Policies.PutPolicy(context.Background(), "t1", tc.update, Actor{Kind: message.ActorManager})
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantPolicyError(t, err, KindInvalid, "validation_failed", tc.field)
			if st.doc != nil || len(st.events) != 0 {
				t.Errorf("a refused policy was stored: %s", st.doc)
			}
			after, _ := e.Policies.GetPolicy(context.Background(), "t1")
			if !policyJSONEqual(t, before, after) {
				t.Errorf("policy changed by a refused PUT")
			}
		})
	}
}

// policyUpdate is the update a JSON policy body asks for, read the simple
// way: the tests' bodies name no list as null.
func policyUpdate(t *testing.T, body string) PolicyUpdate {
	t.Helper()
	var b struct {
		PolicyPatch
		Groups *map[string]PolicyPatch `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("test body %s: %v", body, err)
	}
	return PolicyUpdate{Policy: b.PolicyPatch, Groups: b.Groups}
}

func policyJSONEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(ja) == string(jb)
}

// TestPutPolicyMerge: the fields a body names replace the current ones,
// the others stay; groups, when present, replace the whole set.
func TestPutPolicyMerge(t *testing.T) {
	ctx := context.Background()
	e, st := newPolicyTestEngine(t)
	put := func(body string) PolicyView {
		t.Helper()
		v, err := e.Policies.PutPolicy(ctx, "t1", policyUpdate(t, body), Actor{Kind: message.ActorManager})
		if err != nil {
			t.Fatalf("PUT %s: %v", body, err)
		}
		got, err := e.Policies.GetPolicy(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if !policyJSONEqual(t, v, got) {
			t.Fatalf("PUT answered %+v but GET answers %+v", v, got)
		}
		return got
	}
	v := put(`{"mode":"required","grace_logins":3,"sms_countries":["AU"],"thresholds":{"challenge":40,"deny":90},
		"groups":{"staff":{"challenge":"every_login","allowed_channels":["totp"]},"patients":{"mode":"optional"}}}`)
	if v.Mode != ModeRequired || v.GraceLogins != 3 || !slices.Equal(v.SMSCountries, []string{"AU"}) || v.Thresholds != (Thresholds{40, 90}) ||
		v.RememberDeviceDays != 30 || v.Challenge != ChallengeRiskBased || len(v.Groups) != 2 {
		t.Fatalf("after first PUT: %+v", v)
	}
	staff := v.EffectiveGroups["staff"]
	if staff.Mode != ModeRequired || staff.Challenge != ChallengeEveryLogin || !slices.Equal(staff.AllowedChannels, []Channel{ChannelTOTP}) ||
		staff.GraceLogins != 3 || !slices.Equal(staff.SMSCountries, []string{"AU"}) {
		t.Errorf("effective staff policy %+v", staff)
	}
	if p := v.EffectiveGroups["patients"]; p.Mode != ModeOptional || p.Challenge != ChallengeRiskBased || len(p.AllowedChannels) != 4 {
		t.Errorf("effective patients policy %+v", p)
	}
	if v.Enforcement != EnforcementEnforce || staff.Enforcement != EnforcementEnforce {
		t.Errorf("enforcement %q, staff %q: want enforce by default", v.Enforcement, staff.Enforcement)
	}

	// A partial body: only what it names changes; groups stay.
	v = put(`{"grace_logins":7,"thresholds":{"deny":95}}`)
	if v.GraceLogins != 7 || v.Mode != ModeRequired || v.Thresholds != (Thresholds{40, 95}) || len(v.Groups) != 2 ||
		!slices.Equal(v.SMSCountries, []string{"AU"}) {
		t.Fatalf("after partial PUT: %+v", v)
	}
	if v.EffectiveGroups["staff"].GraceLogins != 7 {
		t.Errorf("a group that does not override grace_logins does not follow the base: %+v", v.EffectiveGroups["staff"])
	}

	// The base changing never leaks into a group's own override, and the
	// groups' lists are not the base's (no aliasing through the cache).
	v = put(`{"allowed_channels":["sms","email"]}`)
	if !slices.Equal(v.EffectiveGroups["staff"].AllowedChannels, []Channel{ChannelTOTP}) ||
		!slices.Equal(v.EffectiveGroups["patients"].AllowedChannels, []Channel{ChannelSMS, ChannelEmail}) {
		t.Errorf("effective groups after base channels change: %+v", v.EffectiveGroups)
	}

	// groups replaces the whole set.
	v = put(`{"groups":{"night":{"mode":"off"}}}`)
	if _, ok := v.Groups["staff"]; ok || len(v.Groups) != 1 || v.EffectiveGroups["night"].Mode != ModeOff {
		t.Errorf("groups not replaced: %+v", v.Groups)
	}
	// An empty list clears a field; groups {} clears every group.
	v = put(`{"sms_countries":[],"groups":{}}`)
	if len(v.SMSCountries) != 0 || len(v.Groups) != 0 || len(v.EffectiveGroups) != 0 {
		t.Errorf("after clearing: %+v", v)
	}
	// A GET answer sent back as is changes nothing.
	n := len(st.events)
	b, _ := json.Marshal(v)
	if v2 := put(string(b)); !policyJSONEqual(t, v, v2) || len(st.events) != n {
		t.Errorf("a GET answer sent back changed the policy (%d new events)", len(st.events)-n)
	}
	// Every change was audited once.
	if len(st.events) != 5 {
		t.Errorf("%d policy events, want 5", len(st.events))
	}
	for _, ev := range st.events {
		if ev.Type != message.EvPolicyChanged || ev.Details["changes"] == "" {
			t.Errorf("event %+v", ev)
		}
	}
}

// TestPutPolicyRequiredEpoch: grace logins are counted per `required`
// period; a period starts when the mode becomes required, not when another
// field changes.
func TestPutPolicyRequiredEpoch(t *testing.T) {
	ctx := context.Background()
	e, st := newPolicyTestEngine(t)
	epochOf := func(group string) string {
		t.Helper()
		tp, err := parseTenantPolicy(st.doc)
		if err != nil {
			t.Fatal(err)
		}
		return tp.RequiredSince[group]
	}
	epoch := func() string { return epochOf("") }
	put := func(body string) {
		t.Helper()
		if _, err := e.Policies.PutPolicy(ctx, "t1", policyUpdate(t, body), Actor{Kind: message.ActorManager}); err != nil {
			t.Fatalf("PUT %s: %v", body, err)
		}
	}
	put(`{"grace_logins":3}`)
	if epoch() != "" {
		t.Errorf("epoch %q before required", epoch())
	}
	put(`{"mode":"required"}`)
	first := epoch()
	if first == "" {
		t.Fatal("no epoch after switching to required")
	}
	put(`{"grace_logins":4,"mode":"required"}`)
	if epoch() != first {
		t.Error("a change within required mode started a new grace period")
	}
	put(`{"mode":"optional"}`)
	put(`{"mode":"required"}`)
	second := epoch()
	if second == "" || second == first {
		t.Errorf("switching back to required kept epoch %q", second)
	}
	// A group becoming required starts a period for it, and only for it.
	put(`{"mode":"required","groups":{"staff":{"mode":"optional"}}}`)
	base := epoch()
	if epochOf("staff") != "" {
		t.Error("an optional group has a required period")
	}
	put(`{"groups":{"staff":{"mode":"required"}}}`)
	if epochOf("staff") == "" {
		t.Error("a group switching to required did not start a new grace period")
	}
	if epoch() != base {
		t.Error("a group switching to required restarted the base policy's grace period")
	}
	// An update cannot set the epoch (PolicyUpdate has no such field; api
	// refuses it in a body: TestDecodePolicy).
	// GET never shows it (it is not part of the contract).
	v, _ := e.Policies.GetPolicy(ctx, "t1")
	if b, _ := json.Marshal(v); strings.Contains(string(b), "required_since") {
		t.Errorf("GET shows required_since: %s", b)
	}
}

// TestEffectiveSharesNothing: a group's effective policy is a deep copy.
func TestEffectiveSharesNothing(t *testing.T) {
	tp := TenantPolicy{Policy: DefaultPolicy(), Groups: map[string]json.RawMessage{"staff": json.RawMessage(`{"sms_countries":["GB"]}`)}}
	tp.SMSCountries = []string{"AU", "NZ"}
	p := tp.Effective("staff")
	if !slices.Equal(p.SMSCountries, []string{"GB"}) || !slices.Equal(tp.SMSCountries, []string{"AU", "NZ"}) {
		t.Errorf("group override wrote into the base: base %v, group %v", tp.SMSCountries, p.SMSCountries)
	}
	b := tp.Effective("")
	b.AllowedChannels[0] = "x"
	if tp.AllowedChannels[0] == "x" {
		t.Error("the base's effective policy aliases the stored lists")
	}
	if u := tp.Effective("nobody"); !slices.Equal(u.SMSCountries, []string{"AU", "NZ"}) {
		t.Errorf("unknown group does not get the base policy: %+v", u)
	}
}

// TestValidDeviceLifetime: a remembered device is honoured within the
// lifetime it was given and within the policy's current lifetime, counted
// from when it was first remembered — lowering remember_device_days
// shortens existing tokens, raising it never lengthens them.
func TestValidDeviceLifetime(t *testing.T) {
	e, _ := newPolicyTestEngine(t)
	u := UserRef{Tenant: "t1", User: "alice"}
	first := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const token = "tok-alice-laptop"
	dh := e.core.deviceHash(u, "laptop")
	a := Account{Exists: true, Devices: []Device{{
		ID: "dv_1", DeviceHash: dh, TokenHash: e.core.deviceTokenHash(u, token),
		FirstSeen: first, LastSeen: first, ExpiresAt: first.Add(30 * 24 * time.Hour),
	}}}
	day := 24 * time.Hour
	cases := []struct {
		name   string
		days   int
		at     time.Duration // after first
		device string
		token  string
		want   bool
	}{
		{"fresh", 30, time.Minute, "laptop", token, true},
		{"day 29", 30, 29 * day, "laptop", token, true},
		{"past its expiry", 30, 30*day + time.Second, "laptop", token, false},
		{"policy lowered to 7, day 6", 7, 6 * day, "laptop", token, true},
		{"policy lowered to 7, day 8", 7, 8 * day, "laptop", token, false},
		{"policy lowered to 1, exactly a day", 1, day, "laptop", token, false},
		{"policy 0 never remembers", 0, time.Minute, "laptop", token, false},
		{"policy raised to 90, day 31", 90, 31 * day, "laptop", token, false},
		{"other device", 30, time.Minute, "phone", token, false},
		{"other token", 30, time.Minute, "laptop", "tok-mallory", false},
		{"no token", 30, time.Minute, "laptop", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			p.RememberDeviceDays = tc.days
			got := e.Logins.validDevice(u, a, p, e.core.deviceHash(u, tc.device), tc.token, first.Add(tc.at))
			if got != tc.want {
				t.Errorf("validDevice = %v, want %v", got, tc.want)
			}
		})
	}
	// A token is bound to its user.
	bob := UserRef{Tenant: "t1", User: "bob"}
	p := DefaultPolicy()
	if e.Logins.validDevice(bob, a, p, e.core.deviceHash(bob, "laptop"), token, first.Add(time.Minute)) {
		t.Error("alice's token honoured for bob")
	}
}

// TestPolicyTestPhones pins the numbers the end-to-end policy tests rely
// on: an Australian test mobile and a valid UK mobile outside the drama
// range.
func TestPolicyTestPhones(t *testing.T) {
	for _, tc := range []struct{ in, e164, region string }{
		{"+61491570156", "+61491570156", "AU"},
		{"+447400123456", "+447400123456", "GB"},
	} {
		n, r, err := ParsePhone(tc.in)
		if err != nil || n != tc.e164 || r != tc.region {
			t.Errorf("ParsePhone(%q) = %q, %q, %v; want %q, %q", tc.in, n, r, err, tc.e164, tc.region)
		}
	}
}

// TestPutPolicyStoredGroups: a group's override is stored as the fields
// its patch sets, a list set to null as null, so the stored document keeps
// the shape it always had.
func TestPutPolicyStoredGroups(t *testing.T) {
	e, st := newPolicyTestEngine(t)
	u := PolicyUpdate{Groups: &map[string]PolicyPatch{
		"staff":    {Challenge: new(ChallengeEveryLogin), AllowedChannels: &[]Channel{ChannelTOTP}},
		"patients": {SMSCountries: new([]string), Thresholds: &ThresholdsPatch{Deny: new(90)}},
	}}
	if _, err := e.Policies.PutPolicy(context.Background(), "t1", u, Actor{Kind: message.ActorManager}); err != nil {
		t.Fatal(err)
	}
	tp, err := parseTenantPolicy(st.doc)
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]string{
		"staff":    `{"challenge":"every_login","allowed_channels":["totp"]}`,
		"patients": `{"thresholds":{"deny":90},"sms_countries":null}`,
	} {
		if got := string(tp.Groups[g]); got != want {
			t.Errorf("stored group %s = %s, want %s", g, got, want)
		}
	}
	if p := tp.Effective("patients"); p.SMSCountries != nil || p.Thresholds != (Thresholds{50, 90}) {
		t.Errorf("effective patients policy %+v", p)
	}
}

func TestSameGroups(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name string
		a, b map[string]json.RawMessage
		want bool
	}{
		{"none", nil, map[string]json.RawMessage{}, true},
		{"field order", map[string]json.RawMessage{"staff": raw(`{"mode":"required","grace_logins":3}`)},
			map[string]json.RawMessage{"staff": raw(`{"grace_logins":3,"mode":"required"}`)}, true},
		{"value", map[string]json.RawMessage{"staff": raw(`{"mode":"required"}`)},
			map[string]json.RawMessage{"staff": raw(`{"mode":"optional"}`)}, false},
		{"group added", map[string]json.RawMessage{}, map[string]json.RawMessage{"staff": raw(`{}`)}, false},
		{"group renamed", map[string]json.RawMessage{"staff": raw(`{}`)}, map[string]json.RawMessage{"admins": raw(`{}`)}, false},
	}
	for _, tt := range tests {
		if got := sameGroups(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: sameGroups = %v, want %v", tt.name, got, tt.want)
		}
	}
}
