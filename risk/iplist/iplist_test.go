package iplist

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/risk"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		entries int
		in, out []string
		errs    []string // substrings, one per bad line reported
	}{
		{name: "empty", text: "", out: []string{"192.0.2.1"}},
		{name: "comments and blank lines", text: "# FireHOL header\n#\n\n   \n192.0.2.1 # inline\n; spamhaus style\n198.51.100.0/24 ; SBL1\n",
			entries: 2, in: []string{"192.0.2.1", "198.51.100.77"}, out: []string{"192.0.2.2", "198.51.101.1"}},
		{name: "v4 and v6 addresses and prefixes", text: "203.0.113.5\n2001:db8::1\n2001:db8:1::/48\n10.0.0.0/8\r\n",
			entries: 4, in: []string{"203.0.113.5", "2001:db8::1", "2001:db8:1:ffff::9", "10.200.0.1"}, out: []string{"203.0.113.6", "2001:db8::2", "11.0.0.1"}},
		{name: "host bits of a prefix are ignored", text: "192.0.2.77/24\n", entries: 1, in: []string{"192.0.2.1"}},
		{name: "mapped addresses are unmapped", text: "::ffff:192.0.2.9\n::ffff:198.51.100.0/120\n", entries: 2, in: []string{"192.0.2.9", "198.51.100.200"}},
		{name: "bad lines are reported with their numbers", text: "# head\n192.0.2.1\nnot-an-ip\n10.0.0.0/33\n\nfe80::1%eth0\n",
			errs: []string{`line 3: not an IP or CIDR: "not-an-ip"`, `line 4: not an IP or CIDR: "10.0.0.0/33"`, `line 6: not an IP or CIDR: "fe80::1%eth0"`}},
		{name: "a long file of garbage reports a few lines and a count", text: strings.Repeat("x\n", 9),
			errs: []string{"line 1:", "line 2:", "line 3:", "line 4:", "line 5:", "and 4 more bad lines"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, n, err := Parse(strings.NewReader(tt.text))
			if tt.errs != nil {
				if err == nil {
					t.Fatal("no error")
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(tt.errs) {
					t.Fatalf("error %q, want %d lines", err, len(tt.errs))
				}
				for i, want := range tt.errs {
					if !strings.Contains(lines[i], want) {
						t.Errorf("error line %d = %q, want %q", i, lines[i], want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.entries {
				t.Errorf("entries = %d, want %d", n, tt.entries)
			}
			for _, s := range tt.in {
				if !set.Contains(netip.MustParseAddr(s)) {
					t.Errorf("%s not in the set", s)
				}
			}
			for _, s := range tt.out {
				if set.Contains(netip.MustParseAddr(s)) {
					t.Errorf("%s in the set", s)
				}
			}
		})
	}
}

func write(t *testing.T, path, text string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// An explicit time: two writes within the file system's timestamp
	// granularity must still be seen as a change.
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func names(h []risk.ListHit) string {
	var s []string
	for _, x := range h {
		s = append(s, x.Name+":"+string(x.Action))
	}
	return strings.Join(s, ",")
}

func TestLoadAndRefresh(t *testing.T) {
	dir := t.TempDir()
	tor, hosting := filepath.Join(dir, "tor.netset"), filepath.Join(dir, "hosting.netset")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, tor, "192.0.2.1\n", t0)
	write(t, hosting, "192.0.2.0/24\n", t0)
	ls, err := Load([]Spec{
		{Field: "risk.ip_lists[0]", Name: "tor", File: tor, Action: risk.ListDeny},
		{Field: "risk.ip_lists[1]", Name: "hosting", File: hosting, Action: risk.ListScore, Factor: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	if got := names(ls.Lookup(a)); got != "tor:deny,hosting:score" {
		t.Fatalf("Lookup(%s) = %s", a, got)
	}
	if h := ls.Lookup(a); h[1].Factor != 5 {
		t.Errorf("factor %v", h[1].Factor)
	}

	steps := []struct {
		name     string
		text     string // "" removes the file
		reloaded int
		err      string
		inTor    string // the address the tor list must now hold
		gone     string // an address it must no longer hold
	}{
		{name: "unchanged file: nothing read", inTor: "192.0.2.1"},
		{name: "changed file: new list", text: "198.51.100.1\n", reloaded: 1, inTor: "198.51.100.1", gone: "192.0.2.1"},
		{name: "broken file: old list kept, error reported", text: "198.51.100.2\nbogus\n",
			err: "risk.ip_lists[0] (tor): " + tor + " line 2: not an IP or CIDR: \"bogus\"", inTor: "198.51.100.1"},
		{name: "still broken: reported once", inTor: "198.51.100.1"},
		{name: "fixed: new list", text: "198.51.100.3\n", reloaded: 1, inTor: "198.51.100.3"},
		{name: "removed: old list kept", text: "", err: "risk.ip_lists[0] (tor): open " + tor, inTor: "198.51.100.3"},
	}
	for i, s := range steps {
		switch {
		case i == 0 || s.name == "still broken: reported once":
		case s.text == "":
			if err := os.Remove(tor); err != nil {
				t.Fatal(err)
			}
		default:
			write(t, tor, s.text, t0.Add(time.Duration(i)*time.Second))
		}
		done, err := ls.Refresh()
		if i > 0 && s.name != "still broken: reported once" {
			// A changed file is read once it stayed the same from one
			// Refresh to the next.
			if len(done) != 0 || err != nil {
				t.Errorf("%s: first Refresh after the change read %v, %v", s.name, done, err)
			}
			done, err = ls.Refresh()
		}
		if len(done) != s.reloaded {
			t.Errorf("%s: reloaded %v, want %d", s.name, done, s.reloaded)
		}
		switch {
		case s.err == "" && err != nil:
			t.Errorf("%s: error %v", s.name, err)
		case s.err != "" && (err == nil || !strings.HasPrefix(err.Error(), s.err)):
			t.Errorf("%s: error %v, want %q", s.name, err, s.err)
		}
		if got := names(ls.Lookup(netip.MustParseAddr(s.inTor))); !strings.Contains(got, "tor:deny") {
			t.Errorf("%s: %s not in tor (%s)", s.name, s.inTor, got)
		}
		if s.gone != "" && strings.Contains(names(ls.Lookup(netip.MustParseAddr(s.gone))), "tor") {
			t.Errorf("%s: %s still in tor", s.name, s.gone)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.netset")
	write(t, bad, "# ok\n192.0.2.1\n\n\n\n\n\n\n\n\n\n192.0.2.300\n", time.Now())
	_, err := Load([]Spec{
		{Field: "risk.ip_lists[0]", Name: "tor", File: bad, Action: risk.ListScore},
		{Field: "risk.ip_lists[1]", Name: "gone", File: filepath.Join(dir, "missing"), Action: risk.ListDeny},
	})
	want := []string{
		"risk.ip_lists[0] (tor): " + bad + ` line 12: not an IP or CIDR: "192.0.2.300"`,
		"risk.ip_lists[1] (gone): open " + filepath.Join(dir, "missing") + ": no such file or directory",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Load error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func BenchmarkLookup(b *testing.B) {
	var sb strings.Builder
	for i := range 100000 {
		sb.WriteString(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
		sb.WriteString("/32\n")
	}
	set, _, err := Parse(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("10.0.200.7")
	for b.Loop() {
		_ = set.Contains(ip)
	}
}
