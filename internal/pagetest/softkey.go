package pagetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

var b64 = base64.RawURLEncoding

// SoftKey is a software authenticator holding one credential: a P-256
// key under a credential id ("none" attestation).
type SoftKey struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	Transports []string // the browser's getTransports(), if any
}

// NewSoftKey returns a SoftKey with a fresh key and random credential id.
func NewSoftKey(t testing.TB) *SoftKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &SoftKey{ID: id, Key: k}
}

// options unwraps a ceremony's options ({publicKey: …} or bare).
func options(m map[string]any) map[string]any {
	if pk, ok := m["publicKey"].(map[string]any); ok {
		return pk
	}
	return m
}

// Create answers a registration the page began (opts) with this
// credential at counter.
func (k *SoftKey) Create(t testing.TB, p Page, opts map[string]any, counter uint32) map[string]any {
	t.Helper()
	o := options(opts)
	rp, _ := o["rp"].(map[string]any)
	rpID, _ := rp["id"].(string)
	challenge, _ := o["challenge"].(string)
	if challenge == "" || rpID == "" {
		t.Fatalf("registration options without a challenge or rp id: %v", opts)
	}
	pub, err := k.Key.PublicKey.Bytes() // 0x04 || X || Y
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
	auth = append(auth, 0x45) // user present, user verified, attested credential data
	auth = binary.BigEndian.AppendUint32(auth, counter)
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(k.ID)))
	auth = append(auth, k.ID...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": challenge, "origin": p.Origin()})
	res := map[string]any{"clientDataJSON": b64.EncodeToString(client), "attestationObject": b64.EncodeToString(att)}
	if k.Transports != nil {
		res["transports"] = k.Transports
	}
	return map[string]any{"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key", "response": res}
}

// Register adds this credential on a page (named name) and returns the
// answer of the ceremony step that refused it, or of the last.
func (k *SoftKey) Register(t testing.TB, p Page, name string, counter uint32) (int, map[string]any) {
	t.Helper()
	st, opts := p.API(t, "/passkey/register/begin", nil)
	if st != 200 {
		return st, opts
	}
	return p.API(t, "/passkey/register/finish", map[string]any{"credential": k.Create(t, p, opts, counter), "name": name})
}

// Get answers an assertion the page began (opts) at counter.
func (k *SoftKey) Get(t testing.TB, p Page, opts map[string]any, counter uint32) map[string]any {
	t.Helper()
	o := options(opts)
	rpID, _ := o["rpId"].(string)
	challenge, _ := o["challenge"].(string)
	rpHash := sha256.Sum256([]byte(rpID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x05) // user present, user verified
	auth = binary.BigEndian.AppendUint32(auth, counter)
	client, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": p.Origin()})
	ch := sha256.Sum256(client)
	digest := sha256.Sum256(append(append([]byte{}, auth...), ch[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(client), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sig)}}
}

// Login answers a login page's passkey challenge with this credential.
func (k *SoftKey) Login(t testing.TB, p Page, counter uint32) (int, map[string]any) {
	t.Helper()
	st, opts := p.API(t, "/passkey/login/begin", nil)
	if st != 200 {
		return st, opts
	}
	return p.API(t, "/passkey/login/finish", map[string]any{"credential": k.Get(t, p, opts, counter)})
}
