package app

import "testing"

func TestSenderAddress(t *testing.T) {
	for in, want := range map[string]string{
		"security@acme.example":                 "security@acme.example",
		"Acme Security <security@acme.example>": "security@acme.example",
		`"Acme, Inc." <security@acme.example>`:  "security@acme.example",
		"":                                      "",
	} {
		if got := senderAddress(in); got != want {
			t.Errorf("senderAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
