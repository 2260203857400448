package engine

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/risk"
)

// GeoLookup resolves an IP to its place; risk/geoip implements it.
type GeoLookup interface {
	Lookup(ip netip.Addr) risk.GeoInfo
}

// IPLists tells which of the operator's IP reputation lists hold an
// address; risk/iplist implements it. Lookup reads memory only: it runs
// on every evaluation, beside the one store read.
type IPLists interface {
	Lookup(ip netip.Addr) []risk.ListHit
}

// Options configure an Engine. The zero value of every field means its default.
type Options struct {
	Secret      []byte           // server secret for HMACs and encryption (required)
	OperatorKey string           // bearer key of the operator; empty = no operator
	PublicURL   string           // base of links in mails and the Twilio callback
	Clock       func() time.Time // default time.Now
	Rand        io.Reader        // default crypto/rand
	Logger      *slog.Logger
	Geo         GeoLookup // nil = no GeoIP
	IPLists     IPLists   // nil = no IP reputation lists
	Risk        risk.Options

	CodeLength     int           // default 6
	CodeTTL        time.Duration // default 5m
	CodeAttempts   int           // default 5
	MaxSends       int           // sends per challenge, default 3
	ResendCooldown time.Duration // default 30s
	HistorySize    int           // distinct values per feature level, default 50
	HistoryDays    int           // default 180
	LoginTTL       time.Duration // how long a login record waits for its challenge, default 15m
	// FeedbackDays is how long every evaluated login's record is kept for
	// a verdict (Logins.Feedback), default 7.
	FeedbackDays int
	// ReportHalfLife is how fast a fraud report's weight on its network
	// decays, default 3 days.
	ReportHalfLife time.Duration
	Limits         Limits
	AuditMaxEvents int // per tenant, default 100000
}

// Limits are the abuse limits on sending codes (per hour unless said).
type Limits struct {
	SMSPerUser      int // default 10
	SMSPerNumber    int // default 5
	SMSPerCountry   int // per tenant and destination country, default 1000
	ChallengesPerIP int // challenge creations per client IP, default 50
	SMSPerTenant    int // all SMS of a tenant, default 5000 (a policy may lower it)
	EmailPerUser    int // code mails to one user, default 10
	EmailPerAddress int // code mails to one address, across users, default 5
	// WrongCodesPerUser caps code attempts per user across all the user's
	// challenges in a rolling hour (right codes are given back), default 10.
	WrongCodesPerUser int
	// AuthFailuresPerIP is the number of failed API key checks a client
	// address may make a minute (then 429), default 20.
	AuthFailuresPerIP int
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.CodeLength, 6)
	def(&o.CodeAttempts, 5)
	def(&o.MaxSends, 3)
	def(&o.HistorySize, 50)
	def(&o.HistoryDays, 180)
	def(&o.FeedbackDays, 7)
	def(&o.AuditMaxEvents, 100000)
	def(&o.Limits.SMSPerUser, 10)
	def(&o.Limits.SMSPerNumber, 5)
	def(&o.Limits.SMSPerCountry, 1000)
	def(&o.Limits.ChallengesPerIP, 50)
	def(&o.Limits.SMSPerTenant, 5000)
	def(&o.Limits.EmailPerUser, 10)
	def(&o.Limits.EmailPerAddress, 5)
	def(&o.Limits.WrongCodesPerUser, 10)
	def(&o.Limits.AuthFailuresPerIP, 20)
	if o.CodeTTL <= 0 {
		o.CodeTTL = 5 * time.Minute
	}
	if o.ResendCooldown <= 0 {
		o.ResendCooldown = 30 * time.Second
	}
	if o.LoginTTL <= 0 {
		o.LoginTTL = 15 * time.Minute
	}
	if o.ReportHalfLife <= 0 {
		o.ReportHalfLife = 3 * 24 * time.Hour
	}
}

// core is what every flow shares: the options, the clock and randomness,
// the keyed MACs and boxes, the tenant and policy caches, and the few store
// operations every flow may need (coreStore).
type core struct {
	opt      Options
	store    coreStore
	codeMAC  seal.MAC // challenge codes and backup codes
	featMAC  seal.MAC // feature values of the risk history (keyed per tenant below)
	tokenMAC seal.MAC // remembered-device tokens, report tokens
	queueBox *seal.Box
	piiBox   *seal.Box // phone numbers at rest
	totpBox  *seal.Box
	tenants  *cache[Tenant]
	policies *cache[*compiled]
	wa       *webauthn.WebAuthn // the passkey relying party; nil without a public URL
	log      *slog.Logger
}

// Engine is stepup's domain, split by flow. It is only the thing
// internal/app wires: each flow is used through its own field, and package
// api depends on interfaces it declares over them. Every flow is safe for
// concurrent use.
type Engine struct {
	Tenants    *Tenants    // tenants, API keys, authentication
	Policies   *Policies   // policy, admin actions, audit log, digests, alerts
	Logins     *Logins     // evaluate, failed passwords, history import
	Challenges *Challenges // verify, resend, switch, delivery reports
	Lifecycle  *Lifecycle  // enrolment, phone change, disable, backup codes, users, devices
	Prompts    *Prompts    // the hosted verification pages and their exchange codes
	core       *core
}

// Store is every store operation the flows need together; store/redisstore
// implements it. Each flow declares (and depends on) only its own part.
type Store interface {
	coreStore
	tenantStore
	policyStore
	loginStore
	challengeStore
	lifecycleStore
	promptStore
}

// New returns an Engine over store.
func New(store Store, opt Options) (*Engine, error) {
	opt.defaults()
	if len(opt.Secret) < 32 {
		return nil, fmt.Errorf("engine: secret must be at least 32 bytes")
	}
	c := &core{
		opt:      opt,
		store:    store,
		codeMAC:  seal.NewMAC(opt.Secret, "codes"),
		featMAC:  seal.NewMAC(opt.Secret, "features"),
		tokenMAC: seal.NewMAC(opt.Secret, "tokens"),
		queueBox: seal.New(opt.Secret, "queue", opt.Rand),
		piiBox:   seal.New(opt.Secret, "pii", opt.Rand),
		totpBox:  seal.New(opt.Secret, "totp", opt.Rand),
		tenants:  newCache[Tenant](time.Minute, opt.Clock),
		policies: newCache[*compiled](time.Hour, opt.Clock),
		log:      opt.Logger,
	}
	wa, err := newWebAuthn(opt.PublicURL)
	if err != nil {
		return nil, err
	}
	if wa == nil && opt.PublicURL != "" {
		c.log.Warn("passkeys are off: public_url's host is an IP address, which WebAuthn does not accept; use a domain name (or localhost)")
	}
	c.wa = wa
	e := &Engine{
		Tenants:    &Tenants{core: c, store: store, authBlocks: &authBlocks{m: map[string]time.Time{}}},
		Logins:     &Logins{core: c, store: store},
		Challenges: &Challenges{core: c, store: store},
		Lifecycle:  &Lifecycle{core: c, store: store},
		core:       c,
	}
	e.Policies = &Policies{core: c, store: store, users: e.Lifecycle}
	e.Prompts = &Prompts{core: c, store: store, challenges: e.Challenges, lifecycle: e.Lifecycle}
	if opt.OperatorKey != "" {
		e.Tenants.operatorHash = HashSecret(opt.OperatorKey)
	}
	return e, nil
}

// DecodeJob opens a sealed job payload, as the delivery side does with the
// same key (tests read queued jobs with it).
func (e *Engine) DecodeJob(sealed []byte, v any) error { return e.core.decodeJob(sealed, v) }

func (e *core) now() time.Time { return e.opt.Clock().UTC() }

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (e *core) random(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.opt.Rand, b); err != nil {
		panic(fmt.Sprintf("engine: read random: %v", err))
	}
	return b
}

// randomToken returns n random bytes, base32 encoded.
func (e *core) randomToken(n int) string { return b32.EncodeToString(e.random(n)) }

// newID returns prefix + placement (the store's opaque tag, or "") + random
// characters. Carrying the placement lets any process find a challenge's or
// login's record from its id alone.
func (e *core) newID(prefix, placement string) string {
	if placement != "" {
		return prefix + placement + e.randomToken(15)
	}
	return prefix + e.randomToken(10)
}

func constantEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// cache is a tiny TTL map for rarely changing records (tenants).
type cache[T any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	clock func() time.Time
	m     map[string]cacheEntry[T]
}

type cacheEntry[T any] struct {
	v  T
	at time.Time
}

func newCache[T any](ttl time.Duration, clock func() time.Time) *cache[T] {
	return &cache[T]{ttl: ttl, clock: clock, m: map[string]cacheEntry[T]{}}
}

func (c *cache[T]) get(k string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	en, ok := c.m[k]
	if !ok || c.clock().Sub(en.at) > c.ttl {
		var zero T
		return zero, false
	}
	return en.v, true
}

func (c *cache[T]) put(k string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		clear(c.m)
	}
	c.m[k] = cacheEntry[T]{v: v, at: c.clock()}
}
