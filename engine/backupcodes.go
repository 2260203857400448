package engine

import (
	"encoding/hex"
	"strings"
)

func normalizeCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "-", "").Replace(s)
}

func (e *core) backupHash(u UserRef, code string) string {
	return hex.EncodeToString(e.codeMAC.Sum("backup", u.Tenant, u.User, normalizeCode(code)))
}

// newBackupCodes returns 10 codes (shown once) and their hashes.
func (e *core) newBackupCodes(u UserRef) ([]string, []string) {
	codes, hashes := make([]string, 10), make([]string, 10)
	for i := range codes {
		raw := e.randomToken(5) // 8 base32 characters, 40 bits
		codes[i] = raw[:4] + "-" + raw[4:8]
		hashes[i] = e.backupHash(u, codes[i])
	}
	return codes, hashes
}
