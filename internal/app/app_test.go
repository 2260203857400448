package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/app"
	"github.com/stepup-auth/stepup/internal/certtest"
)

// Production transport: a rediss:// URL with an ACL user, the server's
// certificate trusted through redis.tls_ca_file.
func TestRedissWithACLUser(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed; run `make test`, which installs it")
	}
	dir := t.TempDir()
	certFile, keyFile, _ := certtest.Write(t, dir)
	ca := certFile
	port := freePort(t)
	cmd := exec.Command("redis-server", "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", dir,
		"--user", "default", "off", "--user", "stepup", "on", ">s3cret-pass", "~*", "&*", "+@all")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	cfg := config.Default()
	cfg.Secret = "app-test-secret-0123456789abcdef0123"
	cfg.Redis.URL = fmt.Sprintf("rediss://stepup:s3cret-pass@127.0.0.1:%d/0", port)
	cfg.Redis.TLSCAFile = ca
	cfg.SMS.Driver, cfg.Mail.Driver = "console", "console" // required with Redis
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, io.Discard, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for a.Engine.Tenants.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no TLS connection: %v", a.Engine.Tenants.Ping(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tn, err := a.Engine.Tenants.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Engine.Logins.Evaluate(ctx, tn.ID, engine.EvaluateInput{UserID: "alice", IP: "192.0.2.1", UserAgent: "curl/8"}); err != nil {
		t.Fatal(err)
	}
	// The ACL is in force: the default user is off.
	plain := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), TLSConfig: a.Redis.(*redis.Client).Options().TLSConfig})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("the server accepted the default user: the test does not prove ACL auth")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEmbeddedStoreNeedsItsPassword: the embedded store listens on a
// loopback port; another user of the machine who finds it must not read
// or write it (adding a key hash of his own is a manager key).
func TestEmbeddedStoreNeedsItsPassword(t *testing.T) {
	a, err := app.New(config.Default(), io.Discard, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		t.Fatalf("stepupd's own connection: %v", err)
	}
	other := redis.NewClient(&redis.Options{Addr: a.Redis.(*redis.Client).Options().Addr, MaxRetries: -1})
	defer other.Close()
	if err := other.Ping(ctx).Err(); err == nil {
		t.Fatal("a connection without the password was served")
	}
}
