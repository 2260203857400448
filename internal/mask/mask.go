package mask

import (
	"strings"
	"unicode/utf8"
)

// Email keeps an address's first character and its domain:
// "a•••@example.com". The first character is a whole rune, so an
// internationalised address stays valid UTF-8; anything without a local
// part becomes "•••".
func Email(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "•••"
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "•••@" + domain
}
