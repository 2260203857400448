package iplist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// maxLineErrors bounds the bad lines one error reports: a file of the
// wrong format would otherwise produce an error as long as the file.
const maxLineErrors = 5

// LineError is a line of a list file that is not an IP address or prefix.
type LineError struct {
	Line int    // 1-based
	Text string // the line, trimmed, at most 80 bytes
}

// Error returns "line 12: not an IP or CIDR: "…"".
func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: not an IP or CIDR: %q", e.Line, e.Text)
}

// Parse reads a list: one IPv4 or IPv6 address or CIDR prefix a line
// (host bits of a prefix are ignored), blank lines and comments after '#'
// or ';' allowed. It returns the set and the number of entries, or every
// bad line (up to a few, then a count) as [LineError]s joined.
func Parse(r io.Reader) (*netipx.IPSet, int, error) {
	var (
		b    netipx.IPSetBuilder
		n    int
		errs []error
		bad  int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		if i := strings.IndexAny(s, "#;"); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if err := add(&b, s); err != nil {
			if bad++; bad <= maxLineErrors {
				errs = append(errs, &LineError{Line: line, Text: truncate(s, 80)})
			}
			continue
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	if bad > maxLineErrors {
		errs = append(errs, fmt.Errorf("and %d more bad lines", bad-maxLineErrors))
	}
	if len(errs) > 0 {
		return nil, 0, errors.Join(errs...)
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, 0, err
	}
	return set, n, nil
}

// add adds one address or prefix. Addresses are unmapped (::ffff:a.b.c.d
// is a.b.c.d) as the engine unmaps the logins' addresses; zones are refused.
func add(b *netipx.IPSetBuilder, s string) error {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		b.AddPrefix(p.Masked())
		return nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	if ip.Zone() != "" {
		return errors.New("zone")
	}
	b.Add(ip.Unmap())
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
