package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Prompts are the hosted verification pages' side of the domain: a host
// app asks for a prompt (POST /v1/prompts), the user's browser opens it,
// proves a factor (or enrols one, or manages them) on stepup's pages, and
// the host exchanges the single-use code the browser brings back for the
// verified result. A prompt is bound to its tenant, user and login, lives
// 10 minutes (and no longer than the app key that made it), and is
// claimed by the first browser that opens it: its session secret (a
// cookie) is what every later page action must carry.
type Prompts struct {
	*core
	store      promptStore
	challenges *Challenges
	lifecycle  *Lifecycle
}

// promptStore is what Prompts reads and changes.
type promptStore interface {
	accountStore
	Login(ctx context.Context, id string) (LoginRecord, bool, error)
	Challenge(ctx context.Context, tenant, id string) (Challenge, bool, error)
	OpenChallenges(ctx context.Context, u UserRef, now time.Time) ([]string, error)
	// CreatePrompt stores a new prompt, kept ttl (past its expiry, so a
	// late browser is still sent back with an error).
	CreatePrompt(ctx context.Context, p Prompt, ttl time.Duration) error
	// Prompt reads a prompt.
	Prompt(ctx context.Context, id string) (Prompt, bool, error)
	// OpenPrompt claims a new, unexpired prompt for the browser session
	// whose hash is given; claimed is false (and nothing changes) for one
	// already opened, finished or expired. It returns the prompt as stored.
	OpenPrompt(ctx context.Context, id, session string, now time.Time) (p Prompt, found, claimed bool, err error)
	// ReleasePrompt makes a prompt the session opened new again, if it
	// still asks no code (its first could not be sent); any other prompt
	// (another session's, one with a code, done) stays as it is.
	ReleasePrompt(ctx context.Context, id, session string) error
	// UpdatePrompt changes an open prompt of the session, unexpired at now;
	// ErrPromptClosed otherwise.
	UpdatePrompt(ctx context.Context, id, session string, now time.Time, ch PromptChange) error
	// FinishPrompt closes an open prompt of the session and stores its
	// exchange code with the result, for ttl, in one atomic write;
	// ErrPromptClosed when it is not open (or not the session's).
	FinishPrompt(ctx context.Context, id, session string, now time.Time, code string, result []byte, ttl time.Duration) error
	// TakeExchange returns and deletes the result of an exchange code of
	// the tenant; a code of another tenant is not found and stays.
	TakeExchange(ctx context.Context, tenant, code string) ([]byte, bool, error)
	// KeyByID finds a key by its id (cached for a moment, as KeyByHash);
	// a revoked key is not found.
	KeyByID(ctx context.Context, id string) (Key, bool, error)
}

// PromptKind is what a prompt is for.
type PromptKind string

// The prompt kinds.
const (
	PromptLogin  PromptKind = "login"  // a login evaluate answered `challenge`
	PromptEnroll PromptKind = "enroll" // a login evaluate answered `enroll`
	PromptManage PromptKind = "manage" // the user's 2FA settings
)

// PromptStatus is where a prompt is in its life.
type PromptStatus string

// The prompt statuses.
const (
	PromptNew  PromptStatus = "new"
	PromptOpen PromptStatus = "open"
	PromptDone PromptStatus = "done"
)

// Prompt is one hosted verification, as stored.
type Prompt struct {
	ID     string
	Tenant string
	// Key is the id of the app key that made the prompt: once it is
	// revoked the prompt is dead ("" for a prompt made before prompts
	// recorded it).
	Key       string
	User      string
	LoginID   string
	Kind      PromptKind
	ReturnURL string
	State     string
	ExpiresAt time.Time
	Status    PromptStatus
	Session   string // keyed hash of the browser's session secret
	Challenge string // the challenge the page asks for
	Verified  bool   // the user proved a current factor on the page
	Method    Channel
	Ceremony  []byte // a WebAuthn ceremony's session in flight
	// Proof is the fingerprint of the account the page's proof (or the
	// factor it set up) stands for: a change made elsewhere since (a
	// reset, a new phone) leaves the page nothing proven (proven).
	Proof string
}

// PromptChange is what UpdatePrompt sets; nil fields stay.
type PromptChange struct {
	Challenge *string
	Verified  *bool
	Proof     *string
	Method    *Channel
	Ceremony  *[]byte
	// IfCeremony, when set, makes the change a compare-and-set: it applies
	// only while the prompt's ceremony is still this one (else the store
	// answers ErrConflict), so one ceremony is answered once.
	IfCeremony *[]byte
}

// The prompt's lifetimes.
const (
	promptTTL   = 10 * time.Minute
	promptKeep  = time.Hour // a late browser is still sent back with an error
	exchangeTTL = time.Minute
)

// Prompt errors. A closed prompt's errors carry "redirect": where the
// browser goes back with the error.
var (
	ErrPromptNotFound    = E(KindNotFound, "prompt_not_found", "no such prompt")
	ErrPromptClosed      = E(KindGone, "prompt_used", "this page was already used; go back to the application and sign in again")
	ErrPromptExpired     = E(KindGone, "prompt_expired", "this page expired; go back to the application and sign in again")
	ErrPromptRevoked     = E(KindGone, "prompt_revoked", "this page is no longer valid; go back to the application and sign in again")
	ErrReturnURL         = E(KindInvalid, "return_url_not_registered", "return_url is not under one of the tenant's return_urls")
	ErrLoginNotPrompted  = E(KindUnprocessable, "login_not_promptable", "the login was not answered challenge or enroll, or its challenge is closed")
	ErrExchangeNotFound  = E(KindNotFound, "code_not_found", "no such code: it is unknown, used, expired or another tenant's")
	ErrPromptNotVerified = E(KindForbidden, "not_verified", "prove a current factor first")
)

// PromptInput is a host app's request for a prompt: a LoginID, or a
// UserID with Action "manage".
type PromptInput struct {
	LoginID   string
	UserID    string
	Action    string
	ReturnURL string
	State     string
}

// PromptCreated is the answer to Create.
type PromptCreated struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ExchangeResult is what a prompt's code is exchanged for.
type ExchangeResult struct {
	UserID      string  `json:"user_id"`
	LoginID     string  `json:"login_id,omitempty"`
	Verified    bool    `json:"verified"`
	Method      Channel `json:"method,omitempty"`
	DeviceToken string  `json:"device_token,omitempty"`
}

// MethodBackupCode is the method of a verification by backup code.
const MethodBackupCode Channel = "backup_code"

// Create makes a prompt for a login evaluate answered `challenge` or
// `enroll`, or for a user's settings, for the tenant of the app key by;
// the prompt lives only as long as that key.
func (e *Prompts) Create(ctx context.Context, by Principal, in PromptInput, actor Actor) (PromptCreated, error) {
	if len(in.State) > 512 {
		return PromptCreated{}, Invalid("state", "at most 512 bytes")
	}
	if in.ReturnURL == "" {
		return PromptCreated{}, Invalid("return_url", "required")
	}
	tenant := by.Tenant
	p := Prompt{Tenant: tenant, Key: by.KeyID, ReturnURL: in.ReturnURL, State: in.State, Status: PromptNew, ExpiresAt: e.now().Add(promptTTL)}
	switch {
	case in.LoginID != "" && in.UserID == "" && in.Action == "":
		rec, ok, err := e.store.Login(ctx, in.LoginID)
		if err != nil {
			return PromptCreated{}, Internal(err)
		}
		if !ok || rec.Tenant != tenant {
			return PromptCreated{}, ErrLoginNotFound
		}
		p.User, p.LoginID = rec.User, rec.ID
		switch rec.Decision {
		case DecisionChallenge:
			p.Kind = PromptLogin
			if p.Challenge, err = e.loginChallengeOf(ctx, UserRef{tenant, rec.User}, rec.ID); err != nil {
				return PromptCreated{}, err
			}
		case DecisionEnroll:
			p.Kind = PromptEnroll
		default:
			return PromptCreated{}, ErrLoginNotPrompted
		}
	case in.LoginID == "" && in.UserID != "" && in.Action == "manage":
		if err := ValidUserID(in.UserID); err != nil {
			return PromptCreated{}, err
		}
		p.User, p.Kind = in.UserID, PromptManage
	default:
		return PromptCreated{}, Invalid("login_id", `give either login_id, or user_id with action "manage"`)
	}
	u := UserRef{tenant, p.User}
	t, pol, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return PromptCreated{}, err
	}
	if !returnURLAllowed(pol.ReturnURLs, in.ReturnURL) {
		return PromptCreated{}, ErrReturnURL
	}
	if p.Kind == PromptManage && !a.Factors.Any() {
		p.Kind = PromptEnroll // nothing to manage yet: set the first factor up
	}
	if err := e.promptAllowed(ctx, t, pol, u); err != nil {
		return PromptCreated{}, err
	}
	p.ID = e.newID("pr_", e.core.store.Placement(u))
	if err := e.store.CreatePrompt(ctx, p, promptTTL+promptKeep); err != nil {
		return PromptCreated{}, Internal(err)
	}
	return PromptCreated{URL: strings.TrimRight(e.opt.PublicURL, "/") + "/prompt/" + p.ID, ExpiresAt: p.ExpiresAt}, nil
}

// promptAllowed caps prompts per user, like the codes they lead to.
func (e *Prompts) promptAllowed(ctx context.Context, t Tenant, p Policy, u UserRef) error {
	tripped, wait, err := e.core.store.Allow(ctx, []Limit{{Scope: "prompt:u", Tenant: u.Tenant, Subject: e.userSubject(u),
		PerHour: 3 * e.opt.Limits.SMSPerUser, Name: "user"}}, e.now())
	if err != nil {
		return Internal(err)
	}
	if tripped != "" {
		return ErrResendTooSoon(wait).With("limit", tripped)
	}
	return nil
}

// loginChallengeOf finds the pending challenge of a login.
func (e *Prompts) loginChallengeOf(ctx context.Context, u UserRef, loginID string) (string, error) {
	ids, err := e.store.OpenChallenges(ctx, u, e.now())
	if err != nil {
		return "", Internal(err)
	}
	for _, id := range ids {
		c, ok, err := e.store.Challenge(ctx, u.Tenant, id)
		if err != nil {
			return "", Internal(err)
		}
		if ok && c.LoginID == loginID && c.Purpose == PurposeLogin && c.viewStatus(e.now()) == StatusPending {
			return c.ID, nil
		}
	}
	return "", ErrLoginNotPrompted
}

// Exchange trades a prompt's code for its verified result, once.
func (e *Prompts) Exchange(ctx context.Context, tenant, code string) (ExchangeResult, error) {
	if code == "" || len(code) > 64 {
		return ExchangeResult{}, Invalid("code", "required, the stepup_code the browser brought back")
	}
	raw, ok, err := e.store.TakeExchange(ctx, tenant, code)
	if err != nil {
		return ExchangeResult{}, Internal(err)
	}
	if !ok {
		return ExchangeResult{}, ErrExchangeNotFound
	}
	var r exchangeRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return ExchangeResult{}, Internal(err)
	}
	// The code is taken before its key is checked (single use above all):
	// a Redis error on the check costs the user a new sign-in, never a
	// second use of the code.
	err = e.keyAlive(ctx, tenant, r.Key)
	if errors.Is(err, ErrPromptRevoked) {
		return ExchangeResult{}, ErrExchangeNotFound // the code went with the prompt's key
	}
	if err != nil {
		return ExchangeResult{}, err
	}
	return r.ExchangeResult, nil
}

// exchangeRecord is an exchange code's stored result, with the id of the
// key that made the prompt.
type exchangeRecord struct {
	ExchangeResult
	Key string `json:"key,omitempty"`
}

// keyAlive refuses a prompt (or its exchange code) whose app key, id,
// was revoked since it was made: a leaked key revoked at once leaves none
// of the pages it opened usable. A prompt made before prompts recorded
// their key (id "") lives out its ten minutes.
func (e *Prompts) keyAlive(ctx context.Context, tenant, id string) error {
	if id == "" {
		return nil
	}
	k, ok, err := e.store.KeyByID(ctx, id)
	if err != nil {
		return Internal(err)
	}
	if !ok || k.Tenant != tenant {
		return ErrPromptRevoked
	}
	return nil
}

// alive checks that p's key still stands: ErrPromptRevoked (with where
// the browser goes back) when it does not.
func (e *Prompts) alive(ctx context.Context, p Prompt) error {
	err := e.keyAlive(ctx, p.Tenant, p.Key)
	if errors.Is(err, ErrPromptRevoked) {
		return ErrPromptRevoked.With("redirect", backTo(p, map[string]string{"error": "expired"}))
	}
	return err
}

// backTo is the prompt's return URL with query parameters added.
func backTo(p Prompt, params map[string]string) string {
	u, err := url.Parse(p.ReturnURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	if p.State != "" {
		q.Set("state", p.State)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// closed is the error for a prompt that can no longer be used, with where
// the browser goes back.
func closed(p Prompt, now time.Time) *Error {
	if !p.ExpiresAt.After(now) {
		return ErrPromptExpired.With("redirect", backTo(p, map[string]string{"error": "expired"}))
	}
	return ErrPromptClosed.With("redirect", backTo(p, map[string]string{"error": "used"}))
}

// sessionHash is how a browser session secret is stored.
func (e *core) sessionHash(id, secret string) string {
	return hex.EncodeToString(e.tokenMAC.Sum("prompt-session", id, secret))
}

// Open claims a new prompt for a browser and returns the session secret
// its later actions carry; a browser that already holds the prompt's
// session (secret) gets it back unchanged. Opening a manage prompt sends
// the code of its step-up; when that code cannot be sent (a send limit,
// the SMS kill switch) the claim is given back, so the page is not used
// up: the reload the error page asks for opens it again and tries the
// send again, under the same limits (the browser never got the secret).
func (e *Prompts) Open(ctx context.Context, id, secret string, actor Actor) (string, error) {
	if len(id) > 64 {
		return "", ErrPromptNotFound
	}
	now := e.now()
	p, found, err := e.store.Prompt(ctx, id)
	if err != nil {
		return "", Internal(err)
	}
	if !found {
		return "", ErrPromptNotFound
	}
	if p.Status != PromptDone && p.ExpiresAt.After(now) { // else closed says why
		if err := e.alive(ctx, p); err != nil {
			return "", err
		}
	}
	if secret != "" && len(secret) <= 128 && p.Status == PromptOpen &&
		constantEqual(p.Session, e.sessionHash(id, secret)) && p.ExpiresAt.After(now) {
		return secret, nil
	}
	secret = e.randomToken(32)
	p, found, claimed, err := e.store.OpenPrompt(ctx, id, e.sessionHash(id, secret), now)
	if err != nil {
		return "", Internal(err)
	}
	if !found {
		return "", ErrPromptNotFound
	}
	if !claimed {
		return "", closed(p, now)
	}
	if p.Kind == PromptManage {
		if err := e.stepUp(ctx, p, secret, actor); err != nil {
			if rerr := e.store.ReleasePrompt(context.WithoutCancel(ctx), id, e.sessionHash(id, secret)); rerr != nil {
				e.log.Warn("prompt not released", "err", rerr)
			}
			return "", err
		}
	}
	return secret, nil
}

// stepUp issues the code a manage prompt asks before it shows the factors.
func (e *Prompts) stepUp(ctx context.Context, p Prompt, secret string, actor Actor) error {
	u := UserRef{p.Tenant, p.User}
	t, pol, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return err
	}
	c, ok := preferred(pol, a.Factors)
	if !ok {
		return ErrNoFactor
	}
	d, err := e.challengeOn(ctx, t, pol, u, a, c, PurposeManage, clientData(actor), actor)
	if err != nil {
		return err
	}
	if err := e.store.Commit(ctx, u, Commit{Version: -1, NewChallenges: []Challenge{d.ch}, Jobs: d.jobs, Now: e.now()}); err != nil {
		return AsError(err)
	}
	return e.update(ctx, p, secret, PromptChange{Challenge: &d.ch.ID})
}

// session loads a prompt for a page action of the browser holding secret.
func (e *Prompts) session(ctx context.Context, id, secret string) (Prompt, error) {
	p, ok, err := e.store.Prompt(ctx, id)
	if err != nil {
		return Prompt{}, Internal(err)
	}
	if !ok || secret == "" || len(secret) > 128 {
		return Prompt{}, ErrPromptNotFound
	}
	if p.Status != PromptOpen || !constantEqual(p.Session, e.sessionHash(id, secret)) || !p.ExpiresAt.After(e.now()) {
		return Prompt{}, closed(p, e.now())
	}
	if err := e.alive(ctx, p); err != nil {
		return Prompt{}, err
	}
	return p, nil
}

func (e *Prompts) update(ctx context.Context, p Prompt, secret string, ch PromptChange) error {
	err := e.store.UpdatePrompt(ctx, p.ID, e.sessionHash(p.ID, secret), e.now(), ch)
	switch {
	case errors.Is(err, ErrPromptClosed):
		return closed(p, e.now())
	case errors.Is(err, ErrConflict):
		return err
	case err != nil:
		return Internal(err)
	}
	return nil
}

// takeCeremony clears the prompt's passkey ceremony if it is still the
// one p was read with: of two answers to one ceremony (a replayed or
// doubled request), only the first goes on to verify.
func (e *Prompts) takeCeremony(ctx context.Context, p Prompt, secret string) error {
	none, was := []byte{}, p.Ceremony
	err := e.update(ctx, p, secret, PromptChange{Ceremony: &none, IfCeremony: &was})
	if errors.Is(err, ErrConflict) {
		return ErrPasskeyFailed
	}
	return err
}

// finish closes the prompt and returns where the browser goes with the
// code the host exchanges for r.
func (e *Prompts) finish(ctx context.Context, p Prompt, secret string, r ExchangeResult) (string, error) {
	r.UserID, r.LoginID, r.Verified = p.User, p.LoginID, true
	raw, err := json.Marshal(exchangeRecord{ExchangeResult: r, Key: p.Key})
	if err != nil {
		return "", Internal(err)
	}
	code := e.newID("sc_", e.core.store.Placement(UserRef{p.Tenant, p.User}))
	err = e.store.FinishPrompt(ctx, p.ID, e.sessionHash(p.ID, secret), e.now(), code, raw, exchangeTTL)
	if errors.Is(err, ErrPromptClosed) {
		return "", closed(p, e.now())
	}
	if err != nil {
		return "", Internal(err)
	}
	return backTo(p, map[string]string{"stepup_code": code}), nil
}

// Cancel closes the prompt for a user who gives up: the browser goes back
// with error=cancelled.
func (e *Prompts) Cancel(ctx context.Context, id, secret string) (string, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return "", err
	}
	err = e.store.FinishPrompt(ctx, p.ID, e.sessionHash(p.ID, secret), e.now(), "", nil, 0)
	if err != nil && !errors.Is(err, ErrPromptClosed) {
		return "", Internal(err)
	}
	return backTo(p, map[string]string{"error": "cancelled"}), nil
}

// PromptPage is what a prompt's page shows.
type PromptPage struct {
	Kind        PromptKind
	Org         string
	LogoURL     string
	AccentColor string
	ExpiresAt   time.Time
	// Verified: the current factor was proven (manage), or nothing is
	// asked (enroll).
	Verified  bool
	Challenge *ChallengeView // the code asked for, if any
	// Others are the user's other code channels the page may switch to.
	Others     []Channel
	HasPasskey bool
	Passkeys   []PasskeyView
	Factors    []FactorView
	Channels   []Channel // the policy's allowed channels (for enrolment)
	// Email is the profile's address, masked ("" without one): where
	// e-mail codes would go.
	Email string
	// Change is the code a change on the settings page waits for (a new
	// factor's, a step-up before one, a phone change's, new backup
	// codes'), if any; TOTP the key of an authenticator app being set up.
	Change *ChallengeView
	TOTP   *TOTPSetup
	// ChangeByPasskey: the user may answer Change with a passkey.
	ChangeByPasskey bool
}

// Page returns what the prompt's page shows now.
func (e *Prompts) Page(ctx context.Context, id, secret string) (PromptPage, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return PromptPage{}, err
	}
	u := UserRef{p.Tenant, p.User}
	t, pol, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return PromptPage{}, err
	}
	pg := PromptPage{Kind: p.Kind, Org: t.SenderName, LogoURL: pol.LogoURL, AccentColor: pol.AccentColor, ExpiresAt: p.ExpiresAt,
		Verified: e.proven(p, a), Channels: pol.AllowedChannels,
		HasPasskey: len(a.Factors.Passkeys) > 0 && slices.Contains(pol.AllowedChannels, ChannelPasskey) && e.wa != nil}
	for _, k := range a.Factors.Passkeys {
		pg.Passkeys = append(pg.Passkeys, k.view())
	}
	pg.Factors = factorViews(a)
	if a.Profile.Email != "" {
		pg.Email = MaskEmail(a.Profile.Email)
	}
	if pg.Verified {
		if err := e.changePage(ctx, p, t, &pg); err != nil {
			return PromptPage{}, err
		}
	}
	if p.Challenge != "" && !pg.Verified {
		c, ok, err := e.store.Challenge(ctx, p.Tenant, p.Challenge)
		if err != nil {
			return PromptPage{}, Internal(err)
		}
		if ok {
			v := c.view(e.now())
			pg.Challenge = &v
			for _, ch := range a.Factors.Channels() {
				if ch != c.Channel && ch != ChannelPasskey && slices.Contains(pol.AllowedChannels, ch) {
					pg.Others = append(pg.Others, ch)
				}
			}
		}
	}
	return pg, nil
}

// Verify checks the code typed on the page. A login's prompt then
// finishes: the answer is where the browser goes. A manage prompt opens
// its settings (the answer is "").
func (e *Prompts) Verify(ctx context.Context, id, secret, code string, remember bool, actor Actor) (string, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return "", err
	}
	if p.Challenge == "" || p.Verified {
		return "", ErrChallengeNotFound
	}
	res, err := e.challenges.Verify(ctx, p.Tenant, p.Challenge, VerifyInput{Code: code, RememberDevice: remember, Actor: actor})
	if err != nil {
		return "", err
	}
	return e.verified(ctx, p, secret, res)
}

// verified moves a prompt on after its challenge was verified.
func (e *Prompts) verified(ctx context.Context, p Prompt, secret string, res VerifyResult) (string, error) {
	c, _, _ := e.store.Challenge(ctx, p.Tenant, p.Challenge)
	method := c.Channel
	if m, ok := res.Result["method"].(string); ok {
		method = Channel(m)
	} else if _, ok := res.Result["backup_codes_left"]; ok {
		method = MethodBackupCode
	}
	if p.Kind == PromptLogin {
		tok, _ := res.Result["device_token"].(string)
		return e.finish(ctx, p, secret, ExchangeResult{Method: method, DeviceToken: tok})
	}
	yes := true
	return "", e.update(ctx, p, secret, PromptChange{Verified: &yes, Method: &method, Proof: &res.state})
}

// Resend sends the page's code again: the login's or step-up's, or a
// settings change's.
func (e *Prompts) Resend(ctx context.Context, id, secret string) error {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return err
	}
	if p.Challenge == "" {
		return ErrChallengeNotFound
	}
	_, err = e.challenges.Resend(ctx, p.Tenant, p.Challenge)
	return err
}

// Switch moves the page's login challenge to another of the user's
// factors.
func (e *Prompts) Switch(ctx context.Context, id, secret string, channel Channel, actor Actor) error {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return err
	}
	if p.Kind != PromptLogin || p.Challenge == "" {
		return E(KindUnprocessable, "not_switchable", "only a login's code can move to another factor")
	}
	v, err := e.challenges.Switch(ctx, p.Tenant, p.Challenge, channel, actor)
	if err != nil {
		return err
	}
	return e.update(ctx, p, secret, PromptChange{Challenge: &v.ID})
}

// PasskeyLoginBegin starts a passkey assertion for the page's challenge,
// or for a settings change's (VerifyChangePasskey finishes that one).
func (e *Prompts) PasskeyLoginBegin(ctx context.Context, id, secret string) ([]byte, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	if err := e.passkeyAnswers(ctx, p); err != nil {
		return nil, err
	}
	a, err := e.passkeyAccount(ctx, p)
	if err != nil {
		return nil, err
	}
	opts, sess, err := e.beginPasskeyLogin(UserRef{p.Tenant, p.User}, a)
	if err != nil {
		return nil, err
	}
	return opts, e.update(ctx, p, secret, PromptChange{Ceremony: &sess})
}

// passkeyAnswers checks that the page asks for what a passkey may
// answer: the login's or step-up's challenge before the settings open, a
// settings change's that asks for a current factor after.
func (e *Prompts) passkeyAnswers(ctx context.Context, p Prompt) error {
	if !p.Verified && p.Kind != PromptEnroll {
		if p.Challenge == "" {
			return ErrChallengeNotFound
		}
		return nil
	}
	c, ok, err := e.pendingChange(ctx, p)
	if err != nil {
		return err
	}
	if !ok || !backupAllowed(c.Purpose) {
		return ErrChallengeNotFound
	}
	return nil
}

// PasskeyLoginFinish verifies the page's challenge with the browser's
// assertion; like Verify, it answers where the browser goes next.
func (e *Prompts) PasskeyLoginFinish(ctx context.Context, id, secret string, response []byte, remember bool, actor Actor) (string, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return "", err
	}
	if p.Challenge == "" || p.Verified || p.Kind == PromptEnroll || len(p.Ceremony) == 0 { // a settings change: VerifyChangePasskey
		return "", ErrPasskeyFailed
	}
	if err := e.takeCeremony(ctx, p, secret); err != nil {
		return "", err
	}
	res, err := e.challenges.VerifyPasskey(ctx, p.Tenant, p.Challenge, p.Ceremony, response,
		VerifyInput{RememberDevice: remember, Actor: actor})
	if err != nil {
		return "", err
	}
	return e.verified(ctx, p, secret, res)
}

// settings loads a prompt whose page may change the user's factors: a
// manage prompt after its step-up, or an enrolment.
func (e *Prompts) settings(ctx context.Context, id, secret string) (Prompt, error) {
	p, err := e.session(ctx, id, secret)
	if err != nil {
		return Prompt{}, err
	}
	if p.Kind == PromptLogin || p.Kind == PromptManage && !p.Verified {
		return Prompt{}, ErrPromptNotVerified
	}
	_, _, a, err := e.start(ctx, e.store, UserRef{p.Tenant, p.User})
	if err != nil {
		return Prompt{}, err
	}
	if !e.proven(p, a) {
		return Prompt{}, ErrPromptNotVerified
	}
	return p, nil
}

// proven reports whether a settings page may act for its user: a manage
// page whose step-up proved the account as it still is, an enrolment page
// while the user has no factor, or one that set up a factor of the
// account as it still is. A change made elsewhere since (a factor set up,
// a reset, a new phone or address) asks for proof the page never had.
func (e *core) proven(p Prompt, a Account) bool {
	same := p.Proof != "" && constantEqual(p.Proof, e.fingerprint(a))
	switch p.Kind {
	case PromptManage:
		return p.Verified && same
	case PromptEnroll:
		return !a.Factors.Any() || p.Method != "" && same
	}
	return false
}

// reproven records that the page's own change left the account as a: its
// proof stands for the account as the change made it.
func (e *Prompts) reproven(ctx context.Context, p Prompt, secret string, a Account) error {
	fp := e.fingerprint(a)
	return e.update(ctx, p, secret, PromptChange{Proof: &fp})
}

// passkeyAccount reads the prompt's user's account, refusing when the
// policy does not allow passkeys.
func (e *Prompts) passkeyAccount(ctx context.Context, p Prompt) (Account, error) {
	_, pol, a, err := e.start(ctx, e.store, UserRef{p.Tenant, p.User})
	if err != nil {
		return Account{}, err
	}
	if !slices.Contains(pol.AllowedChannels, ChannelPasskey) {
		return Account{}, ErrChannelNotAllowed
	}
	return a, nil
}

// PasskeyRegisterBegin starts adding a passkey.
func (e *Prompts) PasskeyRegisterBegin(ctx context.Context, id, secret string) ([]byte, error) {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	a, err := e.passkeyAccount(ctx, p)
	if err != nil {
		return nil, err
	}
	opts, sess, err := e.beginPasskeyRegistration(UserRef{p.Tenant, p.User}, a)
	if err != nil {
		return nil, err
	}
	return opts, e.update(ctx, p, secret, PromptChange{Ceremony: &sess})
}

// PasskeyRegisterFinish adds the passkey the browser made; the first
// factor of an enrolment comes with backup codes, shown once (returned).
func (e *Prompts) PasskeyRegisterFinish(ctx context.Context, id, secret string, response []byte, name string, actor Actor) ([]string, error) {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	if len(p.Ceremony) == 0 || len(response) > 64<<10 {
		return nil, ErrPasskeyFailed
	}
	if len(name) > 64 || !printable(name) {
		return nil, Invalid("name", "at most 64 printable characters")
	}
	if err := e.takeCeremony(ctx, p, secret); err != nil {
		return nil, err
	}
	u := UserRef{p.Tenant, p.User}
	for try := 0; try < 5; try++ {
		t, _, a, err := e.start(ctx, e.store, u)
		if err != nil {
			return nil, err
		}
		if !e.proven(p, a) { // the account the commit changes (its version)
			return nil, ErrPromptNotVerified
		}
		k, err := e.finishPasskeyRegistration(u, a, p.Ceremony, response, name)
		if err != nil {
			return nil, err
		}
		next := a
		next.Factors.Passkeys = append(slices.Clone(a.Factors.Passkeys), k)
		var codes []string
		if len(next.BackupCodes) == 0 {
			codes, next.BackupCodes = e.newBackupCodes(u)
		}
		err = e.commitChange(ctx, e.store, t, u, a, next, message.EvPasskeyAdded, map[string]string{"passkey": k.Name}, actor)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		fp := e.fingerprint(next)
		ch := PromptChange{Proof: &fp}
		if p.Kind == PromptEnroll && p.Method == "" { // the factor this page set up
			m := ChannelPasskey
			ch.Method = &m
		}
		return codes, e.update(ctx, p, secret, ch)
	}
	return nil, ErrConflict
}

// RemovePasskey removes one of the user's passkeys, with the same mail as
// any factor change.
func (e *Prompts) RemovePasskey(ctx context.Context, id, secret, passkey string, actor Actor) error {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return err
	}
	// The settings page opened on a proven factor (or set this one up).
	a, err := e.lifecycle.removePasskey(ctx, UserRef{p.Tenant, p.User}, passkey, func(a Account) bool { return e.proven(p, a) }, actor)
	if err != nil {
		return err
	}
	return e.reproven(ctx, p, secret, a)
}

// commitChange commits a user's factor change with its audit event and
// mail.
func (e *core) commitChange(ctx context.Context, st accountStore, t Tenant, u UserRef, prev, next Account, typ message.EventType, details map[string]string, actor Actor) error {
	next.Exists, next.UpdatedAt = true, e.now()
	if !prev.Exists {
		next.CreatedAt = e.now()
	}
	ev := e.event(u.Tenant, u.User, typ, actor)
	for k, v := range details {
		ev.Details[k] = v
	}
	jobs := e.userNotice(t, next, &ev)
	if err := st.Commit(ctx, u, Commit{Version: prev.Version, Account: &next, Events: []Event{ev}, Jobs: jobs, Now: e.now()}); err != nil {
		return AsError(err)
	}
	e.countEvents(ctx, u.Tenant, []Event{ev})
	return nil
}

// Done finishes a manage or enrolment prompt: the browser goes back with
// a code for the factor the user proved or set up. A settings page
// finishes after turning two-step verification off too: its user proved
// a factor before.
func (e *Prompts) Done(ctx context.Context, id, secret string) (string, error) {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return "", err
	}
	_, _, a, err := e.start(ctx, e.store, UserRef{p.Tenant, p.User})
	if err != nil {
		return "", err
	}
	if !a.Factors.Any() && p.Kind != PromptManage { // a settings page may have turned 2FA off
		return "", ErrNoFactor
	}
	m := p.Method
	if m == "" {
		m, _ = preferred(DefaultPolicy(), a.Factors)
	}
	return e.finish(ctx, p, secret, ExchangeResult{Method: m})
}

// Session returns the prompt a page action is about, for its user: the
// lifecycle calls a settings page makes run on that user.
func (e *Prompts) Session(ctx context.Context, id, secret string) (UserRef, error) {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return UserRef{}, err
	}
	return UserRef{p.Tenant, p.User}, nil
}
