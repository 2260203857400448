package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// ErrOpen is returned when a ciphertext is malformed or fails authentication.
var ErrOpen = errors.New("seal: cannot open ciphertext")

// Box seals and opens byte strings for one purpose.
type Box struct {
	aead cipher.AEAD
	rand io.Reader
}

// DeriveKey derives a 32-byte key for purpose from the server secret.
func DeriveKey(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "stepup/"+purpose, 32)
	if err != nil { // only on impossible lengths
		panic(fmt.Sprintf("seal: derive key: %v", err))
	}
	return k
}

// New returns a Box for purpose. random may be nil for crypto/rand.
func New(secret []byte, purpose string, random io.Reader) *Box {
	block, err := aes.NewCipher(DeriveKey(secret, purpose))
	if err != nil {
		panic(fmt.Sprintf("seal: %v", err))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("seal: %v", err))
	}
	if random == nil {
		random = rand.Reader
	}
	return &Box{aead: aead, rand: random}
}

// Seal encrypts plain; the nonce is prepended to the result.
func (b *Box) Seal(plain []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := io.ReadFull(b.rand, nonce); err != nil {
		panic(fmt.Sprintf("seal: read nonce: %v", err))
	}
	return b.aead.Seal(nonce, nonce, plain, nil)
}

// Open decrypts a ciphertext made by Seal.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// MAC is a keyed hash (HMAC-SHA256) for one purpose; it is used wherever a
// value must be compared or indexed without being stored. It is safe for
// concurrent use; keyed states are pooled because the hot path hashes
// several values per request.
type MAC struct{ pool *sync.Pool }

// NewMAC returns a MAC for purpose.
func NewMAC(secret []byte, purpose string) MAC {
	key := DeriveKey(secret, purpose)
	return MAC{pool: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Sum returns HMAC-SHA256(key, parts joined by a zero byte).
func (m MAC) Sum(parts ...string) []byte {
	h := m.pool.Get().(hash.Hash)
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	m.pool.Put(h)
	return sum
}
