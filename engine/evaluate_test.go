package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/risk/geoip"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// These tests drive engine.Evaluate over the real Redis store (on
// miniredis) with an injected clock and a City database, one tenant per
// case, and check the decision, the signals, what was learned and the audit.

const (
	evUAChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
	evUAFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
)

// Places of the test City database (documentation and benchmarking ranges).
var (
	evLondon    = geoiptest.Network{Prefix: "198.51.100.0/24", Country: "GB", City: "London", Lat: 51.5074, Lon: -0.1278}
	evSydney    = geoiptest.Network{Prefix: "192.0.2.0/24", Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093}
	evFrankfurt = geoiptest.Network{Prefix: "203.0.113.0/24", Country: "DE", City: "Frankfurt", Lat: 50.1109, Lon: 8.6821}
	evBerlin6   = geoiptest.Network{Prefix: "2001:db8::/32", Country: "DE", City: "Berlin", Lat: 52.5200, Lon: 13.4050}
)

// evClock is the engine's injected clock.
type evClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *evClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *evClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type evHarness struct {
	eng   *engine.Engine
	store *redisstore.Store
	clock *evClock
}

func newEvHarness(t *testing.T) *evHarness {
	t.Helper()
	paths := geoiptest.Write(t, []geoiptest.Network{evLondon, evSydney, evFrankfurt, evBerlin6})
	geo, err := geoip.Open(geoip.Options{CityDB: paths.City})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = geo.Close() })
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	st := redisstore.New(rdb, redisstore.Options{})
	// A fixed instant: every score and window below is deterministic.
	clock := &evClock{t: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)}
	eng, err := engine.New(st, engine.Options{
		Secret: []byte("engine-evaluate-test-secret-0123456789abcdef"),
		Clock:  clock.now,
		Geo:    geo,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &evHarness{eng: eng, store: st, clock: clock}
}

// tenant creates a tenant with the given policy change (none keeps the
// defaults).
func (h *evHarness) tenant(t *testing.T, policy engine.PolicyPatch) string {
	t.Helper()
	ctx := context.Background()
	tn, err := h.eng.Tenants.CreateTenant(ctx, "Acme "+t.Name(), "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if policy != (engine.PolicyPatch{}) {
		if _, err := h.eng.Policies.PutPolicy(ctx, tn.ID, engine.PolicyUpdate{Policy: policy}, engine.Actor{Kind: message.ActorManager}); err != nil {
			t.Fatalf("put policy %+v: %v", policy, err)
		}
	}
	return tn.ID
}

// enroll gives the user an e-mail factor directly in the store.
func (h *evHarness) enroll(t *testing.T, tenant, user string) {
	t.Helper()
	u := engine.UserRef{Tenant: tenant, User: user}
	a, err := h.store.Account(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.now()
	next := a
	next.Exists = true
	next.Profile.Email = user + "@example.test"
	next.Factors.Email = &engine.EmailFactor{AddedAt: now}
	if next.CreatedAt.IsZero() {
		next.CreatedAt = now
	}
	next.UpdatedAt = now
	if err := h.store.Commit(context.Background(), u, engine.Commit{Version: a.Version, Account: &next, Now: now}); err != nil {
		t.Fatalf("enrol %s: %v", user, err)
	}
}

// learned returns n_u, the user's learned logins.
func (h *evHarness) learned(t *testing.T, tenant, user string) int64 {
	t.Helper()
	st, err := h.store.LoadLogin(context.Background(), engine.UserRef{Tenant: tenant, User: user},
		engine.LoginQuery{Now: h.clock.now(), Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st.UserLogins
}

func (h *evHarness) evaluate(t *testing.T, tenant string, in engine.EvaluateInput) engine.Evaluation {
	t.Helper()
	ev, err := h.eng.Logins.Evaluate(context.Background(), tenant, in)
	if err != nil {
		t.Fatalf("evaluate %+v: %v", in, err)
	}
	return ev
}

func evNames(s []risk.Signal) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.Name
	}
	return out
}

func evSignal(ev engine.Evaluation, name string) (risk.Signal, bool) {
	for _, s := range ev.Risk.Signals {
		if s.Name == name {
			return s, true
		}
	}
	return risk.Signal{}, false
}

// evStep is one login, after the clock moved by advance.
type evStep struct {
	advance time.Duration
	ip      string
	ua      string
	device  string
}

func (s evStep) input(user string) engine.EvaluateInput {
	ua := s.ua
	if ua == "" {
		ua = evUAChrome
	}
	return engine.EvaluateInput{UserID: user, IP: s.ip, UserAgent: ua, DeviceID: s.device}
}

func TestEvaluateTable(t *testing.T) {
	h := newEvHarness(t)
	home := evStep{ip: "198.51.100.10", device: "laptop"}
	homeLater := func(d time.Duration) evStep { s := home; s.advance = d; return s }

	cases := []struct {
		name     string
		policy   engine.PolicyPatch
		enrolled bool
		others   int      // other users of the tenant, 5 logins each from their own address and device
		history  []evStep // learned before enrolment (an unenrolled user is allowed and learned)
		login    evStep

		decision  engine.Decision
		level     string   // "" = not checked
		signals   []string // exactly these, in this order; nil = not checked
		has       []string // present
		hasNot    []string // absent
		minScore  int
		maxScore  int // 0 = 100
		learns    bool
		suggested bool
		check     func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation)
	}{
		{
			name: "cold start: enrolled user without history is challenged", enrolled: true,
			login: home, decision: engine.DecisionChallenge, signals: []string{risk.SignalNoHistory},
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				if ev.Challenge == nil || ev.Challenge.Channel != engine.ChannelEmail || ev.Challenge.Purpose != engine.PurposeLogin ||
					!strings.HasPrefix(ev.Challenge.ID, "ch_") {
					t.Fatalf("challenge = %+v, want a pending e-mail login challenge", ev.Challenge)
				}
				if ev.Challenge.Status != engine.StatusPending {
					t.Errorf("challenge status %q at the engine's clock, want pending (expires %s, engine now %s)",
						ev.Challenge.Status, ev.Challenge.ExpiresAt, h.clock.now())
				}
				if ev.Enrollment.Suggested || ev.Enrollment.Required {
					t.Errorf("enrolment %+v for an enrolled user", ev.Enrollment)
				}
			},
		},
		{
			name: "cold start allow policy", policy: engine.PolicyPatch{ColdStart: new(engine.ColdStartAllow)}, enrolled: true,
			login: home, decision: engine.DecisionAllow, signals: []string{risk.SignalNoHistory}, learns: true,
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				if ev.Challenge != nil {
					t.Errorf("challenge %+v on an allowed login", ev.Challenge)
				}
			},
		},
		{
			name:  "cold start: unenrolled user is allowed and learned in optional mode",
			login: home, decision: engine.DecisionAllow, signals: []string{risk.SignalNoHistory}, learns: true, suggested: true,
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				h.clock.advance(time.Hour)
				again := h.evaluate(t, tenant, home.input(user))
				if _, ok := evSignal(again, risk.SignalNoHistory); ok {
					t.Errorf("second login still has no_history: %+v", again.Risk)
				}
			},
		},
		{
			name: "trusted network forces allow and is learned", policy: engine.PolicyPatch{TrustedNetworks: &[]string{"198.51.100.0/24"}}, enrolled: true,
			login: home, decision: engine.DecisionAllow, has: []string{risk.SignalTrustedNetwork, risk.SignalNoHistory}, learns: true,
		},
		{
			name: "trusted network beats a new country and device", policy: engine.PolicyPatch{TrustedNetworks: &[]string{"192.0.2.0/24"}}, enrolled: true,
			history: []evStep{home, homeLater(time.Hour), homeLater(24 * time.Hour)},
			login:   evStep{advance: 48 * time.Hour, ip: "192.0.2.44", device: "tablet"},
			// The novelty is still shown; the list decides.
			decision: engine.DecisionAllow, has: []string{risk.SignalTrustedNetwork, risk.SignalNewCountry, risk.SignalNewDevice}, learns: true,
		},
		{
			name: "blocked network denies", policy: engine.PolicyPatch{BlockedNetworks: &[]string{"198.51.100.0/25"}}, enrolled: true,
			history:  []evStep{{ip: "198.51.100.200", device: "laptop"}, {advance: time.Hour, ip: "198.51.100.200", device: "laptop"}},
			login:    evStep{advance: time.Hour, ip: "198.51.100.7", device: "laptop"},
			decision: engine.DecisionDeny, has: []string{risk.SignalBlockedNetwork},
			check: evDeniedAudited(risk.SignalBlockedNetwork),
		},
		{
			name: "blocked country denies", policy: engine.PolicyPatch{BlockedCountries: &[]string{"AU"}}, enrolled: true,
			history:  []evStep{home, homeLater(time.Hour)},
			login:    evStep{advance: 24 * time.Hour, ip: "192.0.2.9", device: "laptop"},
			decision: engine.DecisionDeny, has: []string{risk.SignalBlockedCountry},
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				if ev.Risk.Signals[0].Name != risk.SignalBlockedCountry || ev.Risk.Signals[0].Detail != "AU" {
					t.Errorf("first signal %+v, want blocked_country AU first", ev.Risk.Signals[0])
				}
				evDeniedAudited(risk.SignalBlockedCountry)(t, h, tenant, user, ev)
			},
		},
		{
			name: "blocked country denies an unenrolled user too", policy: engine.PolicyPatch{BlockedCountries: &[]string{"AU"}},
			login: evStep{ip: "192.0.2.9", device: "laptop"}, decision: engine.DecisionDeny, has: []string{risk.SignalBlockedCountry},
			check: evDeniedAudited(risk.SignalBlockedCountry),
		},
		{
			name: "impossible travel: London then Sydney an hour later", enrolled: true,
			history:  []evStep{home},
			login:    evStep{advance: time.Hour, ip: "192.0.2.9", device: "laptop"},
			decision: engine.DecisionChallenge, level: risk.RiskMedium, has: []string{risk.SignalImpossibleTravel, risk.SignalNewCountry},
			minScore: 70,
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				s, _ := evSignal(ev, risk.SignalImpossibleTravel)
				if !strings.HasPrefix(s.Detail, "GB to AU: ") || !strings.Contains(s.Detail, "km/h") {
					t.Errorf("impossible_travel detail %q, want GB to AU: … km at … km/h", s.Detail)
				}
				if strings.Contains(s.Detail, "192.0.2") || strings.Contains(s.Detail, "198.51.100") {
					t.Errorf("detail %q shows an IP", s.Detail)
				}
				// Travel weighs log10(1000) = 3, more than any novelty.
				if ev.Risk.Signals[0].Name != risk.SignalImpossibleTravel {
					t.Errorf("signals %v: impossible_travel should weigh most", evNames(ev.Risk.Signals))
				}
			},
		},
		{
			name: "no impossible travel: London then Frankfurt ten hours later", enrolled: true,
			history:  []evStep{home},
			login:    evStep{advance: 10 * time.Hour, ip: "203.0.113.9", device: "laptop"},
			hasNot:   []string{risk.SignalImpossibleTravel},
			signals:  []string{risk.SignalNewCountry},
			decision: engine.DecisionAllow, learns: true,
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				km := risk.DistanceKm(evLondon.Lat, evLondon.Lon, evFrankfurt.Lat, evFrankfurt.Lon)
				if km < 550 || km > 700 {
					t.Fatalf("test places are %.0f km apart, want about 600", km)
				}
			},
		},
		{
			name: "impossible travel: London then Frankfurt fifteen minutes later", enrolled: true,
			history:  []evStep{home},
			login:    evStep{advance: 15 * time.Minute, ip: "203.0.113.9", device: "laptop"},
			decision: engine.DecisionChallenge, has: []string{risk.SignalImpossibleTravel},
		},
		{
			name: "new IPv6 address in a known /64 is low risk", enrolled: true,
			history: []evStep{
				{ip: "2001:db8:1:2::10", device: "laptop"},
				{advance: time.Hour, ip: "2001:db8:1:2::10", device: "laptop"},
				{advance: 24 * time.Hour, ip: "2001:db8:1:2:a:b:c:d", device: "laptop"},
				{advance: 24 * time.Hour, ip: "2001:db8:1:2::10", device: "laptop"},
			},
			login:    evStep{advance: 24 * time.Hour, ip: "2001:db8:1:2:dead:beef:1:2", device: "laptop"},
			decision: engine.DecisionAllow, level: risk.RiskLow, maxScore: 49, learns: true,
			hasNot: []string{risk.SignalNewNetwork, risk.SignalNewCountry, risk.SignalNewDevice, risk.SignalNoHistory},
		},
		{
			name: "familiar login is low", enrolled: true,
			history:  []evStep{home, homeLater(time.Hour), homeLater(24 * time.Hour), homeLater(24 * time.Hour)},
			login:    homeLater(24 * time.Hour),
			decision: engine.DecisionAllow, level: risk.RiskLow, maxScore: 30, signals: []string{}, learns: true,
		},
		{
			// RISK.md: a returning user on a known IP, device and browser
			// scores under 10 (in a tenant with other users; alone in a
			// tenant every value of the user is also the tenant's).
			name: "familiar login among other users scores under 10", enrolled: true, others: 30,
			history:  []evStep{home, homeLater(time.Hour), homeLater(24 * time.Hour), homeLater(24 * time.Hour)},
			login:    homeLater(24 * time.Hour),
			decision: engine.DecisionAllow, level: risk.RiskLow, maxScore: 9, signals: []string{}, learns: true,
		},
		{
			name: "new country and new device are challenged, not learned", enrolled: true,
			history:  []evStep{home, homeLater(time.Hour), homeLater(24 * time.Hour), homeLater(24 * time.Hour)},
			login:    evStep{advance: 48 * time.Hour, ip: "192.0.2.77", device: "stranger"},
			decision: engine.DecisionChallenge, minScore: 70,
			signals: []string{risk.SignalNewCountry, risk.SignalNewDevice},
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				if s, _ := evSignal(ev, risk.SignalNewCountry); s.Detail != "AU" {
					t.Errorf("new_country detail %q, want AU", s.Detail)
				}
				// Unverified: the same attempt again is scored the same.
				h.clock.advance(time.Minute)
				again := h.evaluate(t, tenant, engine.EvaluateInput{UserID: user, IP: "192.0.2.77", UserAgent: evUAChrome, DeviceID: "stranger"})
				if again.Decision != engine.DecisionChallenge || again.Risk.Score != ev.Risk.Score ||
					!slices.Equal(evNames(again.Risk.Signals), evNames(ev.Risk.Signals)) {
					t.Errorf("repeat: %+v, want the same challenge as %+v", again.Risk, ev.Risk)
				}
			},
		},
		{
			name: "every_login policy challenges a familiar login", policy: engine.PolicyPatch{Challenge: new(engine.ChallengeEveryLogin)}, enrolled: true,
			history:  []evStep{home, homeLater(time.Hour)},
			login:    homeLater(time.Hour),
			decision: engine.DecisionChallenge, level: risk.RiskLow,
		},
		{
			name: "mode off allows everything", policy: engine.PolicyPatch{Mode: new(engine.ModeOff)}, enrolled: true,
			history:  []evStep{home},
			login:    evStep{advance: time.Hour, ip: "192.0.2.9", device: "stranger", ua: evUAFirefox},
			decision: engine.DecisionAllow, has: []string{risk.SignalImpossibleTravel}, learns: true,
		},
		{
			name: "required mode counts grace logins", policy: engine.PolicyPatch{Mode: new(engine.ModeRequired), GraceLogins: new(2)},
			login: home, decision: engine.DecisionAllow, learns: true,
			check: func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
				if !ev.Enrollment.Required || ev.Enrollment.GraceLoginsLeft == nil || *ev.Enrollment.GraceLoginsLeft != 1 {
					t.Fatalf("enrolment %+v, want required with 1 grace login left", ev.Enrollment)
				}
				h.evaluate(t, tenant, home.input(user))
				last := h.evaluate(t, tenant, home.input(user))
				if last.Decision != engine.DecisionEnroll || last.Enrollment.GraceLoginsLeft == nil || *last.Enrollment.GraceLoginsLeft != 0 {
					t.Errorf("after the grace logins: %s %+v, want enroll with 0 left", last.Decision, last.Enrollment)
				}
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant := h.tenant(t, tc.policy)
			user := "user-" + string(rune('a'+i))
			for o := range tc.others {
				for range 5 {
					other := evStep{ip: fmt.Sprintf("203.0.113.%d", 100+o), device: fmt.Sprintf("device-%d", o)}
					h.evaluate(t, tenant, other.input(fmt.Sprintf("other-%d", o)))
					h.clock.advance(time.Minute)
				}
			}
			for j, s := range tc.history {
				h.clock.advance(s.advance)
				ev := h.evaluate(t, tenant, s.input(user))
				if ev.Decision != engine.DecisionAllow {
					t.Fatalf("history login %d: %s %+v, want allow", j, ev.Decision, ev.Risk)
				}
			}
			if n := h.learned(t, tenant, user); n != int64(len(tc.history)) {
				t.Fatalf("history: %d learned logins, want %d", n, len(tc.history))
			}
			if tc.enrolled {
				h.enroll(t, tenant, user)
			}
			h.clock.advance(tc.login.advance)
			ev := h.evaluate(t, tenant, tc.login.input(user))
			t.Logf("%s: score %d level %s signals %+v", ev.Decision, ev.Risk.Score, ev.Risk.Level, ev.Risk.Signals)

			if !strings.HasPrefix(ev.LoginID, "lg_") {
				t.Errorf("login id %q", ev.LoginID)
			}
			if tc.decision != "" && ev.Decision != tc.decision {
				t.Errorf("decision %s, want %s (score %d, signals %v)", ev.Decision, tc.decision, ev.Risk.Score, evNames(ev.Risk.Signals))
			}
			if tc.level != "" && ev.Risk.Level != tc.level {
				t.Errorf("level %s, want %s (score %d)", ev.Risk.Level, tc.level, ev.Risk.Score)
			}
			maxScore := tc.maxScore
			if maxScore == 0 {
				maxScore = 100
			}
			if ev.Risk.Score < tc.minScore || ev.Risk.Score > maxScore {
				t.Errorf("score %d, want %d–%d (signals %v)", ev.Risk.Score, tc.minScore, maxScore, evNames(ev.Risk.Signals))
			}
			if want := risk.ScoreLevel(ev.Risk.Score, 50, 101); tc.policy == (engine.PolicyPatch{}) && ev.Risk.Level != want {
				t.Errorf("level %s for score %d, want %s under the default thresholds", ev.Risk.Level, ev.Risk.Score, want)
			}
			if ev.Risk.Signals == nil {
				t.Errorf("signals are nil, want a list")
			}
			if tc.signals != nil && !slices.Equal(evNames(ev.Risk.Signals), tc.signals) {
				t.Errorf("signals %v, want %v", evNames(ev.Risk.Signals), tc.signals)
			}
			for _, n := range tc.has {
				if _, ok := evSignal(ev, n); !ok {
					t.Errorf("signals %v lack %s", evNames(ev.Risk.Signals), n)
				}
			}
			for _, n := range tc.hasNot {
				if _, ok := evSignal(ev, n); ok {
					t.Errorf("signals %v have %s", evNames(ev.Risk.Signals), n)
				}
			}
			// Signals are ordered: deny-forcing first, then by weight.
			for j := 1; j < len(ev.Risk.Signals); j++ {
				a, b := ev.Risk.Signals[j-1], ev.Risk.Signals[j]
				forcing := func(s risk.Signal) bool {
					return s.Name == risk.SignalBlockedCountry || s.Name == risk.SignalBlockedNetwork
				}
				if forcing(b) && !forcing(a) || forcing(a) == forcing(b) && a.Weight < b.Weight {
					t.Errorf("signals out of order: %+v before %+v", a, b)
				}
			}
			if (ev.Decision == engine.DecisionChallenge) != (ev.Challenge != nil) {
				t.Errorf("decision %s with challenge %+v", ev.Decision, ev.Challenge)
			}
			if ev.Enrollment.Suggested != tc.suggested {
				t.Errorf("enrollment.suggested %v, want %v", ev.Enrollment.Suggested, tc.suggested)
			}
			want := int64(len(tc.history))
			if tc.learns {
				want++
			}
			if n := h.learned(t, tenant, user); n != want {
				t.Errorf("%d learned logins after the %s, want %d", n, ev.Decision, want)
			}
			if tc.check != nil {
				tc.check(t, h, tenant, user, ev)
			}
		})
	}
}

// evDeniedAudited checks the login_denied audit event of a deny.
func evDeniedAudited(signal string) func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
	return func(t *testing.T, h *evHarness, tenant, user string, ev engine.Evaluation) {
		t.Helper()
		if ev.Challenge != nil {
			t.Errorf("deny with a challenge %+v", ev.Challenge)
		}
		evs, _, err := h.eng.Policies.Events(context.Background(), tenant, engine.EventQuery{User: user, Type: message.EvLoginDenied})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Fatalf("%d login_denied events, want 1: %+v", len(evs), evs)
		}
		e := evs[0]
		if e.User != user || e.Tenant != tenant || !strings.Contains(e.Details["signals"], signal) || e.Details["score"] == "" {
			t.Errorf("login_denied event %+v, want user %s and signals with %s", e, user, signal)
		}
		if !strings.HasSuffix(e.IP, ".x") {
			t.Errorf("event IP %q, want a masked address", e.IP)
		}
		if !e.At.Equal(h.clock.now()) {
			t.Errorf("event at %s, want the engine's clock %s", e.At, h.clock.now())
		}
	}
}

// TestEvaluateVelocity: failed passwords for the user and from one IP
// across users raise the score, and their windows slide with the clock.
func TestEvaluateVelocity(t *testing.T) {
	h := newEvHarness(t)
	ctx := context.Background()
	tenant := h.tenant(t, engine.PolicyPatch{})
	home := evStep{ip: "198.51.100.10", device: "laptop"}
	for range 3 {
		h.evaluate(t, tenant, home.input("vera"))
		h.clock.advance(time.Hour)
	}
	h.enroll(t, tenant, "vera")
	if ev := h.evaluate(t, tenant, home.input("vera")); ev.Decision != engine.DecisionAllow {
		t.Fatalf("familiar login: %s %+v", ev.Decision, ev.Risk)
	}
	h.clock.advance(time.Hour)

	for range 4 {
		if err := h.eng.Logins.RecordFailedLogin(ctx, tenant, engine.FailedInput{UserID: "vera", IP: "203.0.113.50", UserAgent: evUAChrome}); err != nil {
			t.Fatal(err)
		}
		h.clock.advance(time.Second)
	}
	base := h.evaluate(t, tenant, home.input("vera"))
	if slices.Contains(evNames(base.Risk.Signals), risk.SignalFailedPasswordBurst) {
		t.Errorf("4 failed passwords: %v, want no burst yet", evNames(base.Risk.Signals))
	}
	if err := h.eng.Logins.RecordFailedLogin(ctx, tenant, engine.FailedInput{UserID: "vera", IP: "203.0.113.50"}); err != nil {
		t.Fatal(err)
	}
	ev := h.evaluate(t, tenant, home.input("vera"))
	s, ok := evSignal(ev, risk.SignalFailedPasswordBurst)
	// The factor 10 is one decade of S: 20 points (less the one login
	// learned meanwhile).
	if !ok || s.Detail != "5 failed passwords" || ev.Risk.Score < base.Risk.Score+15 {
		t.Errorf("after 5 failed passwords: %s %+v, want failed_password_burst about 20 points over %d", ev.Decision, ev.Risk, base.Risk.Score)
	}
	// The window is an hour.
	h.clock.advance(time.Hour + time.Minute)
	if ev := h.evaluate(t, tenant, home.input("vera")); slices.Contains(evNames(ev.Risk.Signals), risk.SignalFailedPasswordBurst) || ev.Decision != engine.DecisionAllow {
		t.Errorf("an hour later: %s %v, want allow without the burst", ev.Decision, evNames(ev.Risk.Signals))
	}

	// Credential stuffing: one IP, 20 users.
	for i := range 20 {
		if err := h.eng.Logins.RecordFailedLogin(ctx, tenant, engine.FailedInput{UserID: "victim-" + string(rune('a'+i)), IP: "203.0.113.66"}); err != nil {
			t.Fatal(err)
		}
	}
	ev = h.evaluate(t, tenant, engine.EvaluateInput{UserID: "vera", IP: "203.0.113.66", UserAgent: evUAChrome, DeviceID: "laptop"})
	if s, ok := evSignal(ev, risk.SignalIPFailedManyUsers); !ok || !strings.HasPrefix(s.Detail, "20 ") {
		t.Errorf("after 20 users failed from the IP: %+v, want ip_failed_many_users (20)", ev.Risk)
	}
	if _, ok := evSignal(ev, risk.SignalFailedPasswordBurst); ok {
		t.Errorf("other users' failures count for vera: %v", evNames(ev.Risk.Signals))
	}
	// One user retrying many times from an IP is not stuffing.
	for range 25 {
		if err := h.eng.Logins.RecordFailedLogin(ctx, tenant, engine.FailedInput{UserID: "fumbler", IP: "203.0.113.77"}); err != nil {
			t.Fatal(err)
		}
	}
	ev = h.evaluate(t, tenant, engine.EvaluateInput{UserID: "vera", IP: "203.0.113.77", UserAgent: evUAChrome, DeviceID: "laptop"})
	if _, ok := evSignal(ev, risk.SignalIPFailedManyUsers); ok {
		t.Errorf("one user's 25 failures from an IP: %+v, want no ip_failed_many_users", ev.Risk)
	}
}

// saveFails is the store with a login write that lands but answers an
// error, as when a send limit's node fails in the write's pipeline.
type saveFails struct {
	*redisstore.Store
	challenge string // the challenge of the last failed write
}

func (s *saveFails) SaveLogin(ctx context.Context, u engine.UserRef, w engine.LoginWrite) (engine.LoginSaved, error) {
	saved, err := s.Store.SaveLogin(ctx, u, w)
	if err == nil && w.Commit != nil && len(w.Commit.NewChallenges) > 0 {
		s.challenge, err = w.Commit.NewChallenges[0].ID, errors.New("a send limit's node is down")
	}
	return saved, err
}

// TestEvaluateCancelsAChallengeItCannotAnswer: when a login's write fails
// after its challenge was written (its send limits' verdicts may never
// come, and the delivery worker then sends), the engine cancels the
// challenge the host will never hear of, so its code is dropped.
func TestEvaluateCancelsAChallengeItCannotAnswer(t *testing.T) {
	h := newEvHarness(t)
	st := &saveFails{Store: h.store}
	eng, err := engine.New(st, engine.Options{Secret: []byte("engine-evaluate-test-secret-0123456789abcdef"), Clock: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	tenant := h.tenant(t, engine.PolicyPatch{Challenge: new(engine.ChallengeEveryLogin)})
	h.enroll(t, tenant, "ann")
	_, err = eng.Logins.Evaluate(context.Background(), tenant, engine.EvaluateInput{UserID: "ann", IP: "192.0.2.7", UserAgent: evUAChrome})
	if err == nil || st.challenge == "" {
		t.Fatalf("evaluate: %v (challenge %q), want the write's error", err, st.challenge)
	}
	c, ok, err := h.store.Challenge(context.Background(), tenant, st.challenge)
	if err != nil || !ok || c.Status != engine.StatusCancelled {
		t.Fatalf("challenge after the failed write: %+v %v %v, want cancelled", c.Status, ok, err)
	}
}

// TestEvaluateSharedValueNamed: a familiar login from an address (or a
// device id) that other users of the tenant use far more than this user
// scores high on Freeman's tenant-wide share alone; it must say why
// (shared_ip, shared_device) rather than answer a bare score. The office
// NAT: ten colleagues log in 20 times each from it, Olga once of her five
// logins (the rest from home); no device ids, as many host apps send none.
// The kiosk: the colleagues all log in on one terminal (one device id),
// Olga once on it and four times on her laptop.
func TestEvaluateSharedValueNamed(t *testing.T) {
	const office, home = "198.51.100.10", "203.0.113.7"
	for _, tc := range []struct {
		name           string
		others, olga   []evStep // others' login, then Olga's history (the shared one first)
		login          evStep
		signal, detail string
		decision       engine.Decision
		minScore       int
	}{
		{
			name: "office NAT", others: []evStep{{ip: office}},
			olga:  []evStep{{ip: office}, {ip: home}, {ip: home}, {ip: home}, {ip: home}},
			login: evStep{ip: office}, signal: risk.SignalSharedIP, detail: "GB",
			decision: engine.DecisionChallenge, minScore: 50,
		},
		{
			name: "kiosk", others: []evStep{{ip: office, device: "kiosk"}},
			olga:  []evStep{{ip: office, device: "kiosk"}, {ip: office, device: "laptop"}, {ip: office, device: "laptop"}, {ip: office, device: "laptop"}, {ip: office, device: "laptop"}},
			login: evStep{ip: office, device: "kiosk"}, signal: risk.SignalSharedDevice, detail: "Chrome on Windows",
			decision: engine.DecisionChallenge, minScore: 50,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newEvHarness(t)
			tenant := h.tenant(t, engine.PolicyPatch{})
			for o := range 10 {
				for range 20 {
					h.evaluate(t, tenant, tc.others[0].input(fmt.Sprintf("colleague-%d", o)))
					h.clock.advance(time.Minute)
				}
			}
			for _, s := range tc.olga {
				h.clock.advance(time.Hour)
				if ev := h.evaluate(t, tenant, s.input("olga")); ev.Decision != engine.DecisionAllow {
					t.Fatalf("history: %s %+v", ev.Decision, ev.Risk)
				}
			}
			h.enroll(t, tenant, "olga")
			h.clock.advance(time.Hour)
			ev := h.evaluate(t, tenant, tc.login.input("olga"))
			t.Logf("%s: score %d signals %+v", ev.Decision, ev.Risk.Score, ev.Risk.Signals)
			for _, n := range []string{risk.SignalNewIP, risk.SignalNewNetwork, risk.SignalNewCountry, risk.SignalNewDevice, risk.SignalNewBrowser, risk.SignalNewOS} {
				if _, ok := evSignal(ev, n); ok {
					t.Errorf("familiar login has %s: %v", n, evNames(ev.Risk.Signals))
				}
			}
			if s, ok := evSignal(ev, tc.signal); !ok || s.Detail != tc.detail {
				t.Errorf("score %d with signals %+v, want %s (%s) to explain it", ev.Risk.Score, ev.Risk.Signals, tc.signal, tc.detail)
			}
			if tc.decision != "" && (ev.Decision != tc.decision || ev.Risk.Score < tc.minScore) {
				t.Errorf("%s at %d, want %s at %d or more: the signal explains the score, it does not change it", ev.Decision, ev.Risk.Score, tc.decision, tc.minScore)
			}
		})
	}
}
