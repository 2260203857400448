package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
)

// IP reputation lists over the HTTP API: each action, and the files
// reloaded while stepupd runs (a change, a broken file, a fix).

const (
	listHosting = "198.51.100.21" // GB, in alice's /24: on the score list
	listNear    = "198.51.100.22" // GB, in alice's /24: on no list
	listTor     = "203.0.113.66"  // US: on the deny list
	listTor2    = "203.0.113.67"  // US: on the deny list after the reload
)

type listSite struct {
	evalSite
	dir string
}

// file writes a list file; the tests wait for the reload in the log.
func (s listSite) file(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(s.dir, name+".netset")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitLog waits until the log holds n lines with every one of parts.
func (s listSite) waitLog(t *testing.T, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(evalPatience)
	for time.Now().Before(deadline) {
		count := 0
		for line := range strings.SplitSeq(s.Logs.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				count++
			}
		}
		if count >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %d log lines with %q within %s:\n%s", n, parts, evalPatience, s.Logs.String())
}

func newListSite(t *testing.T) listSite {
	t.Helper()
	s := listSite{dir: t.TempDir()}
	hosting := s.file(t, "hosting", "# hosting providers\n"+listHosting+"\n")
	vpn := s.file(t, "vpn", "# nothing yet\n2001:db8:bad::/48\n")
	tor := s.file(t, "tor", "# Tor exits\n"+listTor+"\n")
	geo := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	env := apptest.New(t, apptest.Options{Redis: apptest.Embedded, Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = geo
		c.Limits.ChallengesPerIPHour = 1000
		c.Risk.IPLists = []config.IPList{
			{Name: "hosting", File: hosting, Action: "score"},
			{Name: "vpn", File: vpn, Action: "challenge"},
			{Name: "tor", File: tor, Action: "deny"},
		}
		c.Risk.IPListsPoll = 20 * time.Millisecond
	}})
	_, app, mgr := env.Tenant(t, "acme")
	s.evalSite = evalSite{Env: env, app: app, mgr: mgr}
	return s
}

func listDetail(t *testing.T, ev map[string]any) string {
	t.Helper()
	sig, ok := evalSignal(ev, "ip_list")
	if !ok {
		return ""
	}
	d, _ := sig["detail"].(string)
	return d
}

func TestIPLists(t *testing.T) {
	s := newListSite(t)
	for range 4 {
		s.evaluate(t, "alice", evalIPGB, "laptop")
	}
	s.enrollEmail(t, "alice")
	if ev := s.evaluate(t, "alice", evalIPGB, "laptop"); ev["decision"] != "allow" || listDetail(t, ev) != "" {
		t.Fatalf("familiar login: %v", ev)
	}

	t.Run("score raises the score and names the list", func(t *testing.T) {
		near := s.evaluate(t, "alice", listNear, "laptop")
		listed := s.evaluate(t, "alice", listHosting, "laptop")
		if listDetail(t, near) != "" || listDetail(t, listed) != "hosting" {
			t.Fatalf("ip_list: unlisted %v, listed %v", near, listed)
		}
		// ×20 is log10 20 ≈ 1.3 decades, 26 points.
		if d := evalScore(listed) - evalScore(near); d < 20 || d > 32 {
			t.Errorf("listed score %d, unlisted %d: want about 26 more", evalScore(listed), evalScore(near))
		}
	})

	t.Run("deny denies and sorts first", func(t *testing.T) {
		ev := s.evaluate(t, "alice", listTor, "laptop")
		if ev["decision"] != "deny" || evalSignals(ev)[0] != "ip_list" || listDetail(t, ev) != "tor" {
			t.Fatalf("tor login: %v", ev)
		}
	})

	t.Run("challenge, after a reload, challenges a familiar login", func(t *testing.T) {
		s.file(t, "vpn", "2001:db8:bad::/48\n"+evalIPGB+"\n")
		s.waitLog(t, 1, `"msg":"ip list reloaded"`, `"name":"vpn"`, `"entries":2`)
		ev := s.evaluate(t, "alice", evalIPGB, "laptop")
		if ev["decision"] != "challenge" || listDetail(t, ev) != "vpn" || evalObj(ev, "challenge")["channel"] != "email" {
			t.Fatalf("familiar login from a challenge-listed address: %v", ev)
		}
		if evalObj(ev, "risk")["level"] != "low" {
			t.Errorf("the challenge list changed the score: %v", ev)
		}
	})

	t.Run("a broken file keeps the last good list and logs the line", func(t *testing.T) {
		s.file(t, "tor", listTor2+"\n\nnot-an-address\n")
		s.waitLog(t, 1, `"msg":"ip list not reloaded, the last good list stays"`,
			`risk.ip_lists[2] (tor): `+filepath.Join(s.dir, "tor.netset")+` line 3: not an IP or CIDR: \"not-an-address\"`)
		if ev := s.evaluate(t, "alice", listTor, "laptop"); ev["decision"] != "deny" || listDetail(t, ev) != "tor" {
			t.Fatalf("old tor address after a broken reload: %v", ev)
		}
		if ev := s.evaluate(t, "alice", listTor2, "laptop"); ev["decision"] == "deny" || listDetail(t, ev) != "" {
			t.Fatalf("new tor address of the broken file: %v", ev)
		}
	})

	t.Run("the fixed file replaces the list", func(t *testing.T) {
		s.file(t, "tor", listTor2+"\n")
		s.waitLog(t, 1, `"msg":"ip list reloaded"`, `"name":"tor"`, `"entries":1`)
		if ev := s.evaluate(t, "alice", listTor2, "laptop"); ev["decision"] != "deny" || listDetail(t, ev) != "tor" {
			t.Fatalf("new tor address: %v", ev)
		}
		if ev := s.evaluate(t, "alice", listTor, "laptop"); ev["decision"] == "deny" || listDetail(t, ev) != "" {
			t.Fatalf("address removed from tor: %v", ev)
		}
	})
}
