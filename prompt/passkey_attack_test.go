package prompt_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/stepup-auth/stepup/engine"
)

var b64u = base64.RawURLEncoding

// tab is a browser on one prompt page, talking to the page script's
// JSON endpoints as the script does.
type tab struct {
	c    *http.Client
	url  string
	csrf string
}

func openTab(t *testing.T, u string) tab {
	t.Helper()
	c, csrf := openPage(t, u)
	return tab{c: c, url: u, csrf: csrf}
}

func (p tab) api(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", p.url+path, bytes.NewReader(raw))
	req.Header.Set("X-CSRF-Token", p.csrf)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return res.StatusCode, m
}

func (p tab) origin() string {
	u, _ := url.Parse(p.url)
	return u.Scheme + "://" + u.Host
}

// softKey is a software authenticator holding one credential: a P-256
// key under a chosen credential id.
type softKey struct {
	id         []byte
	key        *ecdsa.PrivateKey
	transports []string // the browser's getTransports(), if any
}

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &softKey{id: id, key: k}
}

// options unwraps a ceremony's options ({publicKey: …} or bare).
func options(m map[string]any) map[string]any {
	if pk, ok := m["publicKey"].(map[string]any); ok {
		return pk
	}
	return m
}

// create answers a registration the page began (opts) with this
// credential at counter.
func (k *softKey) create(t *testing.T, p tab, opts map[string]any, counter uint32) map[string]any {
	t.Helper()
	o := options(opts)
	rp, _ := o["rp"].(map[string]any)
	rpID, _ := rp["id"].(string)
	challenge, _ := o["challenge"].(string)
	pub, err := k.key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: 2, Algorithm: -7},
		Curve:         1, XCoord: pub[1:33], YCoord: pub[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x45) // UP, UV, attested credential data
	auth = binary.BigEndian.AppendUint32(auth, counter)
	auth = append(auth, make([]byte, 16)...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(k.id)))
	auth = append(auth, k.id...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": challenge, "origin": p.origin()})
	res := map[string]any{"clientDataJSON": b64u.EncodeToString(client), "attestationObject": b64u.EncodeToString(att)}
	if k.transports != nil {
		res["transports"] = k.transports
	}
	return map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key", "response": res}
}

// register adds this credential on a settings page; the answer of the
// step that refused it, or of the last.
func (k *softKey) register(t *testing.T, p tab, counter uint32) (int, map[string]any) {
	t.Helper()
	st, opts := p.api(t, "/passkey/register/begin", nil)
	if st != 200 {
		return st, opts
	}
	return p.api(t, "/passkey/register/finish", map[string]any{"credential": k.create(t, p, opts, counter), "name": "Key"})
}

// get answers an assertion the page began (opts) at counter.
func (k *softKey) get(t *testing.T, p tab, opts map[string]any, counter uint32) map[string]any {
	t.Helper()
	o := options(opts)
	rpID, _ := o["rpId"].(string)
	challenge, _ := o["challenge"].(string)
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x05) // UP, UV
	auth = binary.BigEndian.AppendUint32(auth, counter)
	client, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": p.origin()})
	ch := sha256.Sum256(client)
	digest := sha256.Sum256(append(append([]byte{}, auth...), ch[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64u.EncodeToString(client), "authenticatorData": b64u.EncodeToString(auth),
			"signature": b64u.EncodeToString(sig)}}
}

// login answers a login page's challenge with this credential.
func (k *softKey) login(t *testing.T, p tab, counter uint32) (int, map[string]any) {
	t.Helper()
	st, opts := p.api(t, "/passkey/login/begin", nil)
	if st != 200 {
		return st, opts
	}
	return p.api(t, "/passkey/login/finish", map[string]any{"credential": k.get(t, p, opts, counter)})
}

// passkeyUser gives user a passkey (k, at counter) as the only factor,
// on an enrolment page.
func (s site) passkeyUser(t *testing.T, user string, k *softKey, counter uint32) {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.app, map[string]any{"email": user + "@example.test"})
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"allowed_channels": []string{"passkey", "sms", "totp", "email"}})
	pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": user, "action": "manage", "return_url": s.host.callback()})
	if st, res := k.register(t, openTab(t, pr["url"].(string)), counter); st != 200 {
		t.Fatalf("register %s's passkey: %d %v", user, st, res)
	}
}

// loginTab evaluates a login of user and opens its prompt.
func (s site) loginTab(t *testing.T, user string) tab {
	t.Helper()
	_, u := s.login(t, user, "")
	return openTab(t, u)
}

func errCode(res map[string]any) string {
	e, _ := res["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestPasskeyCounterRegressed: a signature counter that goes backwards
// (a cloned authenticator) is refused; one that goes forward is not.
func TestPasskeyCounterRegressed(t *testing.T) {
	s := newSite(t)
	k := newSoftKey(t)
	s.passkeyUser(t, "pam", k, 10)
	if st, res := k.login(t, s.loginTab(t, "pam"), 11); st != 200 {
		t.Fatalf("login with the counter ahead: %d %v", st, res)
	}
	st, res := k.login(t, s.loginTab(t, "pam"), 5)
	if st == 200 || errCode(res) != "passkey_counter_regressed" {
		t.Fatalf("login with the counter behind: %d %v", st, res)
	}
}

// TestPasskeyOtherUsersCredential: a passkey of one user does not answer
// another user's login, in the same tenant or another.
func TestPasskeyOtherUsersCredential(t *testing.T) {
	s := newSite(t)
	mine, theirs := newSoftKey(t), newSoftKey(t)
	s.passkeyUser(t, "ann", mine, 1)
	s.passkeyUser(t, "ben", theirs, 1)
	if st, res := mine.login(t, s.loginTab(t, "ben"), 2); st == 200 {
		t.Fatalf("ann's passkey answered ben's login: %v", res)
	}
	if st, res := theirs.login(t, s.loginTab(t, "ben"), 2); st != 200 {
		t.Fatalf("ben's own passkey: %d %v", st, res)
	}
}

// TestPasskeyAssertionReplayed: one assertion answers one ceremony; the
// same answer posted again (or to a newer ceremony) is refused.
func TestPasskeyAssertionReplayed(t *testing.T) {
	s := newSite(t)
	k := newSoftKey(t)
	s.passkeyUser(t, "ray", k, 1)
	p := s.loginTab(t, "ray")
	_, opts := p.api(t, "/passkey/login/begin", nil)
	cred := k.get(t, p, opts, 2)
	// A wrong first answer, then the right one twice.
	p2 := s.loginTab(t, "ray")
	_, opts2 := p2.api(t, "/passkey/login/begin", nil)
	if st, res := p2.api(t, "/passkey/login/finish", map[string]any{"credential": cred}); st == 200 {
		t.Fatalf("an assertion for another page's ceremony was taken: %v", res)
	}
	if st, res := p2.api(t, "/passkey/login/finish", map[string]any{"credential": k.get(t, p2, opts2, 3)}); st == 200 {
		t.Fatalf("a ceremony answered (wrongly) once was answered again: %v", res)
	}
	if st, res := p.api(t, "/passkey/login/finish", map[string]any{"credential": cred}); st != 200 {
		t.Fatalf("the right answer: %d %v", st, res)
	}
}

// settingsTab opens user's settings page and proves the passkey k on it.
func (s site) settingsTab(t *testing.T, user string, k *softKey, counter uint32) tab {
	t.Helper()
	pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": user, "action": "manage", "return_url": s.host.callback()})
	p := openTab(t, pr["url"].(string))
	if st, res := k.login(t, p, counter); st != 200 {
		t.Fatalf("step-up with the passkey: %d %v", st, res)
	}
	return p
}

// TestPasskeyDuplicateCredentialID: a credential id the user already has
// is refused at registration. Before, a second passkey under the owner's
// credential id (the attacker's key, added while at the owner's unlocked
// settings page) stayed hidden behind the owner's at each login, and
// "Remove" on it (by id) removed the owner's passkey instead, leaving the
// attacker's as the one that answers.
func TestPasskeyDuplicateCredentialID(t *testing.T) {
	s := newSite(t)
	own := newSoftKey(t)
	s.passkeyUser(t, "vic", own, 1)
	p := s.settingsTab(t, "vic", own, 2)
	evil := newSoftKey(t)
	evil.id = own.id
	if st, res := evil.register(t, p, 0); st == 200 {
		t.Errorf("a passkey under the id of the user's own was added: %v", res)
	}
	keys, _ := s.Must(t, 200, "GET", "/v1/users/vic", s.app, nil)["passkeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("passkeys: %v", keys)
	}
	// The owner's passkey still answers.
	if st, res := own.login(t, s.loginTab(t, "vic"), 3); st != 200 {
		t.Fatalf("the owner's passkey: %d %v", st, res)
	}
}

// TestPasskeyTransportsFromTheBrowser: the transports a browser reports
// at registration are the client's words. Kept as sent, any string of any
// length went into the account (read at every evaluate), into
// GET /v1/users/{id} for the host app to show, and back to browsers in
// each ceremony's options; so did the raw attestation, which nothing
// reads again. Only the transports WebAuthn defines are kept.
func TestPasskeyTransportsFromTheBrowser(t *testing.T) {
	s := newSite(t)
	k := newSoftKey(t)
	k.transports = []string{"internal", "hybrid", "<img src=x onerror=alert(1)>", strings.Repeat("x", 30000), "usb\x00"}
	s.passkeyUser(t, "tia", k, 1)
	keys, _ := s.Must(t, 200, "GET", "/v1/users/tia", s.app, nil)["passkeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("passkeys: %v", keys)
	}
	got, _ := json.Marshal(keys[0].(map[string]any)["transports"])
	if string(got) != `["internal","hybrid"]` {
		t.Errorf("transports kept: %.200s", got)
	}
	a, err := s.App.Store.Account(context.Background(), engine.UserRef{Tenant: s.tenant, User: "tia"})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(a.Factors.Passkeys); len(raw) > 1024 {
		t.Errorf("a passkey takes %d bytes of the account: %.300s", len(raw), raw)
	}
	if st, res := k.login(t, s.loginTab(t, "tia"), 2); st != 200 {
		t.Fatalf("login with the passkey: %d %v", st, res)
	}
}
