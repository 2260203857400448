package app_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/app"
)

// A bad or missing list file stops stepupd at start, naming the list, the
// file and the line.
func TestIPListsBadFileStopsStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tor.netset")
	if err := os.WriteFile(bad, []byte("# Tor exits\n192.0.2.1\n192.0.2.300\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Risk.IPLists = []config.IPList{
		{Name: "tor", File: bad, Action: "deny"},
		{Name: "gone", File: filepath.Join(dir, "gone.netset"), Action: "score"},
	}
	a, err := app.New(cfg, io.Discard, app.Options{})
	if err == nil {
		a.Close()
		t.Fatal("stepupd started with a bad list")
	}
	for _, want := range []string{
		"risk.ip_lists[0] (tor): " + bad + ` line 3: not an IP or CIDR: "192.0.2.300"`,
		"risk.ip_lists[1] (gone): open " + filepath.Join(dir, "gone.netset") + ": no such file or directory",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want a line %q", err, want)
		}
	}
}
