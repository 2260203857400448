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
// authenticator ("none" attestation, P-256), as the page's script does
// with the browser's.
func atRegisterPasskey(t *testing.T, p atPage, origin string) {
	t.Helper()
	st, opts := p.api(t, "/passkey/register/begin", nil)
	if st != 200 {
		t.Fatalf("passkey/register/begin: %d %v", st, opts)
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
	client, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": challenge, "origin": origin})
	cred := map[string]any{"id": b64.EncodeToString(credID), "rawId": b64.EncodeToString(credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(client), "attestationObject": b64.EncodeToString(att)}}
	if st, res := p.api(t, "/passkey/register/finish", map[string]any{"credential": cred, "name": "Laptop"}); st != 200 {
		t.Fatalf("passkey/register/finish: %d %v", st, res)
	}
}

// atPasskeyOnly gives user a passkey as the only factor, on the hosted
// enrolment page, and returns the passkey's id.
func atPasskeyOnly(t *testing.T, e *lcEnv, user string) string {
	t.Helper()
	e.must(t, 200, "PUT", "/v1/users/"+user, map[string]any{"email": user + "@example.test"})
	pr := e.must(t, 201, "POST", "/v1/prompts", map[string]any{"user_id": user, "action": "manage", "return_url": atReturnURL})
	u, err := url.Parse(lcStr(pr, "url"))
	if err != nil {
		t.Fatal(err)
	}
	atRegisterPasskey(t, atOpen(t, u.String()), u.Scheme+"://"+u.Host)
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
