package mask

import "testing"

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com": "a•••@example.com",
		"ösel@example.test": "ö•••@example.test",
		"@example.com":      "•••",
		"no-at-sign":        "•••",
		"":                  "•••",
	} {
		if got := Email(in); got != want {
			t.Errorf("Email(%q) = %q, want %q", in, got, want)
		}
	}
}
