package notify

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// maskedIP matches an address the engine already masked: 203.0.113.x or
// 2001:db8:1:2::x.
var maskedIP = regexp.MustCompile(`^(\d{1,3}\.\d{1,3}\.\d{1,3}\.x|[0-9a-f:]{2,39}:x)$`)

// maskIP shows the network an address belongs to and hides the host:
// 203.0.113.9 → 203.0.113.x, 2001:db8:abcd:12::1 → 2001:db8:abcd:x:x:x:x:x
// (the /48). An address the engine already masked is shown as it is.
// Anything else renders as nothing, so a malformed value can never leak
// through unmasked.
func maskIP(s string) string {
	s = strings.TrimSpace(s)
	if maskedIP.MatchString(s) {
		return s
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return fmt.Sprintf("%d.%d.%d.x", b[0], b[1], b[2])
	}
	b := addr.As16()
	return fmt.Sprintf("%x:%x:%x:x:x:x:x:x",
		uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]), uint16(b[4])<<8|uint16(b[5]))
}

// maskPhone returns a phone number the engine already masked unchanged and
// masks one that still looks whole, keeping only its last three digits.
// The engine is meant to mask (it knows the country's format); this is the
// second line of defence.
func maskPhone(s string) string {
	if s == "" || strings.ContainsAny(s, "•*") {
		return s
	}
	var digits []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) < 6 {
		return s
	}
	return "••••• ••" + string(digits[len(digits)-3:])
}
