package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"testing"
)

var secret = []byte("seal-test-secret-0123456789abcdef0123")

func TestBoxRoundTripAndPurposes(t *testing.T) {
	a, b := New(secret, "queue", nil), New(secret, "totp", nil)
	sealed := a.Seal([]byte("123456 is your code"))
	if bytes.Contains(sealed, []byte("123456")) {
		t.Fatal("plaintext visible in the ciphertext")
	}
	got, err := a.Open(sealed)
	if err != nil || string(got) != "123456 is your code" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := b.Open(sealed); err == nil {
		t.Fatal("a ciphertext opened under another purpose")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := a.Open(sealed); err == nil {
		t.Fatal("a tampered ciphertext opened")
	}
	if _, err := a.Open([]byte("short")); err == nil {
		t.Fatal("a short ciphertext opened")
	}
}

func TestMACMatchesHMACAndIsSafeConcurrently(t *testing.T) {
	m := NewMAC(secret, "codes")
	want := hmac.New(sha256.New, DeriveKey(secret, "codes"))
	want.Write([]byte("a\x00b"))
	expected := want.Sum(nil)
	if !bytes.Equal(m.Sum("a", "b"), expected) {
		t.Fatal("Sum differs from HMAC-SHA256 of the parts joined by NUL")
	}
	if bytes.Equal(m.Sum("ab"), m.Sum("a", "b")) {
		t.Fatal("parts are not separated")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if !bytes.Equal(m.Sum("a", "b"), expected) {
					t.Errorf("goroutine %d: pooled state leaked between sums", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}
