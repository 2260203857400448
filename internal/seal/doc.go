// Package seal encrypts small secrets at rest and in the delivery queue with
// AES-256-GCM under keys derived from the server secret.
//
// Each purpose ("queue", "totp", "phone") gets its own key through HKDF, so a
// ciphertext of one purpose never opens under another. The package holds no
// state beyond the derived key and never logs what it seals.
package seal
