package e2e_test

// Attacks on the 2FA lifecycle over the real HTTP API: an attacker who
// holds a user's password (so the host app's password confirmation before
// a lifecycle call passes) but none of the user's factors. Each test is
// a bug that was found this way. Helpers carry the at prefix.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/stepup-auth/stepup/internal/apptest"
)

const atReturnURL = "https://app.example.test/cb"

// atStartPasskeys starts a stepupd whose public_url is
// http://localhost:<port>, so WebAuthn is on, with the tenant "acme"
// accepting atReturnURL.
func atStartPasskeys(t *testing.T) *lcEnv {
	t.Helper()
	e := lcStart(t, apptest.Options{Redis: apptest.Single, Localhost: true})
	e.policy(t, map[string]any{"return_urls": []string{atReturnURL}})
	return e
}

var atCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// atPage is a browser on one hosted prompt.
type atPage struct {
	c    *http.Client
	url  string
	csrf string
}

// atOpen opens a prompt's page like a browser: it claims the prompt and
// keeps its session cookie.
func atOpen(t *testing.T, promptURL string) atPage {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	r, err := c.Get(promptURL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	m := atCSRF.FindSubmatch(body)
	if r.StatusCode != 200 || m == nil {
		t.Fatalf("open %s: %d %s", promptURL, r.StatusCode, body)
	}
	return atPage{c: c, url: promptURL, csrf: string(m[1])}
}

// api posts JSON to one of the page script's endpoints.
func (p atPage) api(t *testing.T, path string, body any) (int, map[string]any) {
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

var b64 = base64.RawURLEncoding

// atRegisterPasskey adds a passkey on the page with a software
// authenticator, as the page's script does with the browser's.
func atRegisterPasskey(t *testing.T, p atPage) {
	t.Helper()
	if st, res := atTryPasskey(t, p); st != 200 {
		t.Fatalf("adding a passkey: %d %v", st, res)
	}
}

// atTryPasskey tries to add a passkey on the page with a software
// authenticator ("none" attestation, P-256) and returns the answer of
// the ceremony step that refused it, or of the last one.
func atTryPasskey(t *testing.T, p atPage) (int, map[string]any) {
	t.Helper()
	st, opts := p.api(t, "/passkey/register/begin", nil)
	if st != 200 {
		return st, opts
	}
	pk, _ := opts["publicKey"].(map[string]any)
	if pk == nil {
		pk = opts
	}
	rp, _ := pk["rp"].(map[string]any)
	challenge, _ := pk["challenge"].(string)
	rpID, _ := rp["id"].(string)
	if challenge == "" || rpID == "" {
		t.Fatalf("registration options without a challenge or rp id: %v", opts)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: 2, Algorithm: -7},
		Curve:         1, XCoord: pub[1:33], YCoord: pub[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	credID := make([]byte, 32)
	_, _ = rand.Read(credID)
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x45)                     // user present, user verified, attested credential data
	auth = binary.BigEndian.AppendUint32(auth, 0) // signature counter
	auth = append(auth, make([]byte, 16)...)      // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(credID)))
	auth = append(auth, credID...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(p.url)
	client, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": challenge, "origin": u.Scheme + "://" + u.Host})
	cred := map[string]any{"id": b64.EncodeToString(credID), "rawId": b64.EncodeToString(credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(client), "attestationObject": b64.EncodeToString(att)}}
	return p.api(t, "/passkey/register/finish", map[string]any{"credential": cred, "name": "Laptop"})
}

// form posts one of the page's forms, following its redirect back to the
// page, and returns the status of where it ended.
func (p atPage) form(t *testing.T, path string, fields url.Values) int {
	t.Helper()
	fields.Set("csrf", p.csrf)
	res, err := p.c.PostForm(p.url+path, fields)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// atPasskeyOnly gives user a passkey as the only factor, on the hosted
// enrolment page, and returns the passkey's id.
func atPasskeyOnly(t *testing.T, e *lcEnv, user string) string {
	t.Helper()
	e.must(t, 200, "PUT", "/v1/users/"+user, map[string]any{"email": user + "@example.test"})
	pr := e.must(t, 201, "POST", "/v1/prompts", map[string]any{"user_id": user, "action": "manage", "return_url": atReturnURL})
	atRegisterPasskey(t, atOpen(t, lcStr(pr, "url")))
	got := e.user(t, user)
	keys, _ := got["passkeys"].([]any)
	if len(keys) != 1 || got["enrolled"] != true {
		t.Fatalf("after adding a passkey: %v", got)
	}
	return lcStr(keys[0].(map[string]any), "id")
}

// TestAttackRemoveLastPasskeyWithoutProof: a user whose only factor is a
// passkey. Turning 2FA off asks for that factor (POST .../2fa/disable is
// a challenge), but removing the passkey with the app key alone left the
// user with no factor at all: 2FA off for whoever has the password.
func TestAttackRemoveLastPasskeyWithoutProof(t *testing.T) {
	e := atStartPasskeys(t)
	id := atPasskeyOnly(t, e, "pia")

	r := e.do(t, "DELETE", "/v1/users/pia/passkeys/"+id, nil)
	csWantError(t, r, 409, "last_factor")
	if got := e.user(t, "pia"); got["enrolled"] != true {
		t.Fatalf("the user's last factor went without proof: %v", got)
	}
	// The proven way stays open: the disable asks for a current factor.
	st := e.must(t, 201, "POST", "/v1/users/pia/2fa/disable", nil)
	if ch := lcObj(st, "challenge"); ch["purpose"] != "disable" {
		t.Errorf("2fa/disable: %v", st)
	}
}

// TestAttackStaleSettingsPageAfterReset: the lost-phone case. The thief,
// with the phone and the password, opens the settings page and proves the
// SMS factor. The owner has a manager reset the account and sets up a new
// phone. The thief's page, whose proof was of a factor that is gone, must
// not go on changing the account: adding a passkey there gave the thief a
// factor of the owner's new setup.
func TestAttackStaleSettingsPageAfterReset(t *testing.T) {
	e := atStartPasskeys(t)
	e.must(t, 200, "PUT", "/v1/users/vic", map[string]any{"email": "vic@example.test"})
	stolen, fresh := lcPhone(311), lcPhone(312)
	e.enrollSMS(t, "vic", stolen)

	seen := len(e.Twilio.Messages())
	pr := e.must(t, 201, "POST", "/v1/prompts", map[string]any{"user_id": "vic", "action": "manage", "return_url": atReturnURL})
	page := atOpen(t, lcStr(pr, "url"))
	if st := page.form(t, "/verify", url.Values{"code": {e.SMSCode(t, stolen, seen)}}); st != 200 {
		t.Fatalf("step-up on the settings page: %d", st)
	}

	e.Must(t, 200, "POST", "/v1/admin/users/vic/reset", e.Mgr, map[string]any{"reason": "phone stolen"})
	e.enrollSMS(t, "vic", fresh)

	if st, res := atTryPasskey(t, page); st == 200 {
		t.Errorf("the thief's settings page, proven on the reset factor, added a passkey: %v", res)
	}
	if keys, _ := e.user(t, "vic")["passkeys"].([]any); len(keys) != 0 {
		t.Fatalf("the owner's new setup has the thief's passkey: %v", keys)
	}
}
