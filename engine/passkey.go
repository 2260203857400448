package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/stepup-auth/stepup/message"
)

// Passkey is one WebAuthn credential of a user. The engine checks
// ceremonies with go-webauthn, a pure library; the browser side is the
// hosted prompt's (package prompt).
type Passkey struct {
	ID         string              `json:"id"` // base64url of the credential id
	Name       string              `json:"name"`
	Cred       webauthn.Credential `json:"cred"` // public key, sign count, transports, flags
	AddedAt    time.Time           `json:"added_at"`
	LastUsedAt time.Time           `json:"last_used_at,omitzero"`
}

// PasskeyView is a passkey as GET /v1/users/{id} lists it.
type PasskeyView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Transports []string  `json:"transports,omitempty"`
	AddedAt    time.Time `json:"added_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func (k Passkey) view() PasskeyView {
	v := PasskeyView{ID: k.ID, Name: k.Name, AddedAt: k.AddedAt, LastUsedAt: k.LastUsedAt}
	for _, t := range k.Cred.Transport {
		v.Transports = append(v.Transports, string(t))
	}
	return v
}

// knownTransports are the transports WebAuthn defines.
var knownTransports = map[protocol.AuthenticatorTransport]bool{protocol.USB: true, protocol.NFC: true, protocol.BLE: true,
	protocol.SmartCard: true, protocol.Hybrid: true, protocol.Internal: true}

// maxPasskeys bounds a user's credentials.
const maxPasskeys = 10

// Passkey errors.
var (
	ErrPasskeyUnavailable = E(KindUnavailable, "passkeys_unavailable", "passkeys need public_url to be set")
	ErrPasskeyFailed      = E(KindUnprocessable, "passkey_failed", "the passkey could not be verified")
	ErrPasskeyCloned      = E(KindUnprocessable, "passkey_counter_regressed", "the passkey's signature counter went backwards; it may have been copied, so it was refused")
	ErrNoPasskey          = E(KindNotFound, "passkey_not_found", "the user has no such passkey")
	ErrTooManyPasskeys    = E(KindUnprocessable, "too_many_passkeys", "the user has as many passkeys as allowed; remove one first")
	ErrPasskeyExists      = E(KindConflict, "passkey_exists", "the user already has this passkey")
)

// newWebAuthn returns the relying party of publicURL: its host is the RP
// id, its origin the only origin allowed. Nil (passkeys unavailable) when
// publicURL is unset or its host is an IP address, which WebAuthn does not
// take as a relying party id.
func newWebAuthn(publicURL string) (*webauthn.WebAuthn, error) {
	if publicURL == "" {
		return nil, nil
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("engine: public_url is not a URL with a host")
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		return nil, nil
	}
	return webauthn.New(&webauthn.Config{
		RPID: u.Hostname(), RPDisplayName: "stepup", RPOrigins: []string{u.Scheme + "://" + u.Host},
	})
}

// waUser is a user as go-webauthn sees it. Its handle is a keyed hash, so
// an authenticator never holds the tenant's user id.
type waUser struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte                         { return w.id }
func (w waUser) WebAuthnName() string                       { return w.name }
func (w waUser) WebAuthnDisplayName() string                { return w.name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func (e *core) waUser(u UserRef, a Account) waUser {
	name := a.Profile.Email
	if name == "" {
		name = u.User
	}
	if a.Profile.DisplayName != "" {
		name = a.Profile.DisplayName
	}
	w := waUser{id: e.tokenMAC.Sum("webauthn-user", u.Tenant, u.User)[:32], name: name}
	for _, k := range a.Factors.Passkeys {
		w.creds = append(w.creds, k.Cred)
	}
	return w
}

// beginPasskeyLogin starts an assertion for the user's passkeys: the
// options for navigator.credentials.get and the session to keep.
func (e *core) beginPasskeyLogin(u UserRef, a Account) (options, session []byte, err error) {
	if e.wa == nil {
		return nil, nil, ErrPasskeyUnavailable
	}
	if len(a.Factors.Passkeys) == 0 {
		return nil, nil, ErrNoFactor.With("channel", string(ChannelPasskey))
	}
	opts, sess, err := e.wa.BeginLogin(e.waUser(u, a), webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, nil, Internal(err)
	}
	return marshalCeremony(opts.Response, sess)
}

// beginPasskeyRegistration starts a registration: the options for
// navigator.credentials.create and the session to keep.
func (e *core) beginPasskeyRegistration(u UserRef, a Account) (options, session []byte, err error) {
	if e.wa == nil {
		return nil, nil, ErrPasskeyUnavailable
	}
	if len(a.Factors.Passkeys) >= maxPasskeys {
		return nil, nil, ErrTooManyPasskeys
	}
	user := e.waUser(u, a)
	var exclude []protocol.CredentialDescriptor
	for _, c := range user.creds {
		exclude = append(exclude, c.Descriptor())
	}
	opts, sess, err := e.wa.BeginRegistration(user,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, nil, Internal(err)
	}
	return marshalCeremony(opts.Response, sess)
}

func marshalCeremony(opts any, sess *webauthn.SessionData) ([]byte, []byte, error) {
	o, err := json.Marshal(opts)
	if err != nil {
		return nil, nil, Internal(err)
	}
	s, err := json.Marshal(sess)
	if err != nil {
		return nil, nil, Internal(err)
	}
	return o, s, nil
}

// finishPasskeyRegistration checks the browser's answer to a registration
// and returns the new passkey.
func (e *core) finishPasskeyRegistration(u UserRef, a Account, session, response []byte, name string) (Passkey, error) {
	if e.wa == nil {
		return Passkey{}, ErrPasskeyUnavailable
	}
	var sess webauthn.SessionData
	if err := json.Unmarshal(session, &sess); err != nil {
		return Passkey{}, ErrPasskeyFailed
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, ErrPasskeyFailed
	}
	cred, err := e.wa.CreateCredential(e.waUser(u, a), sess, parsed)
	if err != nil {
		return Passkey{}, ErrPasskeyFailed
	}
	// One credential id, one passkey: logins and removals find a passkey
	// by its id, so a second key under the id of one the user has would
	// hide behind it, and removing it would remove the other.
	if slices.ContainsFunc(a.Factors.Passkeys, func(k Passkey) bool { return bytes.Equal(k.Cred.ID, cred.ID) }) {
		return Passkey{}, ErrPasskeyExists
	}
	if name == "" {
		name = "Passkey"
	}
	// What the browser said of the authenticator is kept only where
	// WebAuthn defines it: the transports it names (any string of any
	// length went into the account, the API's answers and each ceremony's
	// options) and none of the raw attestation, which nothing reads again.
	var ts []protocol.AuthenticatorTransport
	for _, t := range cred.Transport {
		if knownTransports[t] && !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	cred.Transport = ts
	cred.Attestation = webauthn.CredentialAttestation{}
	return Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), Name: name, Cred: *cred, AddedAt: e.now()}, nil
}

// checkPasskeyLogin checks an assertion against the user's passkeys and
// returns the index of the one used with its updated record. A signature
// counter that went backwards is ErrPasskeyCloned.
func (e *core) checkPasskeyLogin(u UserRef, a Account, session, response []byte) (int, Passkey, error) {
	if e.wa == nil {
		return 0, Passkey{}, ErrPasskeyUnavailable
	}
	var sess webauthn.SessionData
	if err := json.Unmarshal(session, &sess); err != nil {
		return 0, Passkey{}, ErrPasskeyFailed
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return 0, Passkey{}, ErrPasskeyFailed
	}
	cred, err := e.wa.ValidateLogin(e.waUser(u, a), sess, parsed)
	if err != nil {
		return 0, Passkey{}, ErrPasskeyFailed
	}
	i := slices.IndexFunc(a.Factors.Passkeys, func(k Passkey) bool { return bytes.Equal(k.Cred.ID, cred.ID) })
	if i < 0 {
		return 0, Passkey{}, ErrPasskeyFailed
	}
	k := a.Factors.Passkeys[i]
	if cred.Authenticator.CloneWarning {
		return i, k, ErrPasskeyCloned
	}
	k.Cred = *cred
	k.LastUsedAt = e.now()
	return i, k, nil
}

// passkeyRefused audits a passkey refused for a regressed counter.
func (e *Challenges) passkeyRefused(ctx context.Context, u UserRef, k Passkey, actor Actor) {
	ev := e.core.event(u.Tenant, u.User, message.EvPasskeyCounter, actor)
	ev.Details["passkey"] = k.Name
	if err := e.store.Commit(ctx, u, Commit{Version: -1, Events: []Event{ev}, Now: e.now()}); err != nil {
		e.log.Warn("passkey refusal not audited", "err", err)
	}
}

// VerifyPasskey verifies a challenge that asks for a current factor (a
// login, a step-up) with a passkey's assertion instead of a code, in the
// same flow as Verify: the attempt is counted, the purpose's action runs
// and a login is learned, all as with a code. session is the ceremony's
// stored session (beginPasskeyLogin), response the browser's JSON.
func (e *Challenges) VerifyPasskey(ctx context.Context, tenant, id string, session, response []byte, in VerifyInput) (VerifyResult, error) {
	if len(response) == 0 || len(response) > 16<<10 {
		return VerifyResult{}, Invalid("credential", "required, the browser's answer, at most 16 KiB")
	}
	var refused *Passkey
	var user UserRef
	res, err := e.verify(ctx, tenant, id, in, func(c Challenge, a Account) (proof, error) {
		if !backupAllowed(c.Purpose) {
			// Only where a current factor is asked for, never to prove a
			// new one.
			return proof{}, ErrChannelNotAllowed
		}
		user = UserRef{Tenant: c.Tenant, User: c.User}
		i, k, err := e.checkPasskeyLogin(user, a, session, response)
		switch {
		case errors.Is(err, ErrPasskeyCloned):
			refused = &k
			return proof{}, err
		case errors.Is(err, ErrPasskeyUnavailable):
			return proof{}, err
		case err != nil:
			return proof{how: noMatch}, nil
		}
		return proof{how: passkeyMatch, passkey: &k, index: i}, nil
	})
	if refused != nil {
		e.passkeyRefused(ctx, user, *refused, in.Actor)
	}
	return res, err
}
