package delivery

import (
	"regexp"
	"strings"

	"github.com/stepup-auth/stepup/internal/mask"
)

// longNumber matches digit runs, optionally with a leading + and inner
// spaces, dashes or brackets, that are long enough to be a phone number or a
// code; provider error codes (five digits) and HTTP statuses stay readable.
var longNumber = regexp.MustCompile(`\+?\d[\d \-()]{4,}\d`)

// emailAddress matches an e-mail address in an error text: SMTP replies
// and go-mail's errors quote the recipient. Any characters but spaces and
// the ones that delimit an address count, so an internationalised address
// (jösé@exämple.test) is matched too.
var emailAddress = regexp.MustCompile(`[^\s<>()\[\]:;@,"]+@[^\s<>()\[\]:;@,"]+`)

// MaskAddresses replaces every e-mail address in s by its first character
// and domain, as in "g•••@example.test".
func MaskAddresses(s string) string {
	return emailAddress.ReplaceAllStringFunc(s, mask.Email)
}

// maxErrorText bounds error texts stored with a job.
const maxErrorText = 200

// scrub makes an error text safe to log and store: handlers promise not to
// put secrets into errors, and this is the seat belt for the ones that
// forget (a provider echoing the destination number, for one).
func scrub(s string) string {
	s = MaskAddresses(s)
	s = longNumber.ReplaceAllStringFunc(s, func(m string) string {
		digits := 0
		for _, r := range m {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if digits < 6 {
			return m
		}
		return "•••"
	})
	s = strings.ToValidUTF8(s, "")
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
