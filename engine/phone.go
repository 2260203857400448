package engine

import (
	"net/mail"
	"net/url"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/stepup-auth/stepup/internal/mask"
)

// Phone errors.
var (
	ErrPhoneInvalid   = E(KindUnprocessable, "phone_invalid", "not a valid phone number; use the international format, e.g. +61491570156")
	ErrPhoneNotMobile = E(KindUnprocessable, "phone_not_mobile", "this number cannot receive text messages (fixed line, toll-free or premium rate)")
	ErrPhoneCountry   = E(KindUnprocessable, "phone_country_not_allowed", "text messages to this country are not allowed by the organisation's policy")
)

// ParsePhone validates a number with libphonenumber's rules and returns its
// E.164 form and region. Only numbers that can receive SMS are accepted.
func ParsePhone(raw string) (e164, region string, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 32 {
		return "", "", ErrPhoneInvalid
	}
	if !strings.HasPrefix(raw, "+") && !strings.HasPrefix(raw, "00") {
		return "", "", ErrPhoneInvalid.With("hint", "start with + and the country code")
	}
	n, perr := phonenumbers.Parse(raw, "ZZ")
	if perr != nil || !phonenumbers.IsValidNumber(n) {
		return "", "", ErrPhoneInvalid
	}
	if n.GetExtension() != "" {
		// A text message has no extension to dial: the number would be
		// kept without it, not as typed.
		return "", "", ErrPhoneInvalid.With("hint", "a mobile number has no extension")
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", "", ErrPhoneNotMobile
	}
	return phonenumbers.Format(n, phonenumbers.E164), phonenumbers.GetRegionCodeForNumber(n), nil
}

// MaskPhone shows the country code and the last three digits only, a dot
// for each hidden digit: "+61 •••• ••156" for an Australian mobile. (The
// console SMS driver's log lines use a fixed shape instead, which hides
// the length too: delivery/console.Mask.)
func MaskPhone(e164 string) string {
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil || len(e164) < 6 {
		return "••••"
	}
	cc := "+" + itoa(int(n.GetCountryCode()))
	national := phonenumbers.GetNationalSignificantNumber(n)
	if len(national) < 4 {
		return cc + " ••••"
	}
	hidden := len(national) - 3
	first := hidden - 2
	if first < 1 {
		first = hidden
	}
	return cc + " " + strings.Repeat("•", first) + " " + strings.Repeat("•", hidden-first) + national[hidden:]
}

// MaskEmail keeps the first letter and the domain: "a•••@example.com".
func MaskEmail(addr string) string { return mask.Email(addr) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// validEmail reports whether s is a bare e-mail address.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}

func publicHost(base string) string {
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
