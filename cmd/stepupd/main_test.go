package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/certtest"
	"github.com/stepup-auth/stepup/internal/redistest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is stdout shared between run and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestInvalidConfigNamesTheField(t *testing.T) {
	err := run(nil, []string{"STEPUP_REDIS_URL=http://localhost:6379"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "redis.url") {
		t.Fatalf("err = %v, want one naming redis.url", err)
	}
	err = run(nil, []string{"STEPUP_NO_SUCH_KEY=1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "STEPUP_NO_SUCH_KEY") {
		t.Fatalf("err = %v, want one naming the unknown variable", err)
	}
}

// TestRedisWithoutDriversRefusesToStart: with Redis, the console drivers
// (which print codes and report links to the log) must be chosen
// explicitly; stepupd refuses to start with a line naming each setting.
func TestRedisWithoutDriversRefusesToStart(t *testing.T) {
	addr := redistest.Server(t)
	base := []string{"STEPUP_REDIS_URL=redis://" + addr, "STEPUP_SECRET=" + strings.Repeat("s", 40),
		"STEPUP_LISTEN=" + freeAddr(t)}
	err := run(nil, base, &bytes.Buffer{})
	if err == nil {
		t.Fatal("stepupd with redis.url and no drivers started")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"sms.driver: required", "mail.driver: required"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("err = %v, want a line starting %q", err, want)
		}
	}
	err = run(nil, append(base, "STEPUP_MAIL_DRIVER=console"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "sms.driver") || strings.Contains(err.Error(), "mail.driver") {
		t.Errorf("with mail.driver set: err = %v, want one naming sms.driver only", err)
	}
}

// start runs stepupd with env until the test ends, returning its stdout.
func start(t *testing.T, env []string, ready func() error) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(nil, env, out) }()
	deadline := time.Now().Add(10 * time.Second)
	for ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("stepupd did not come up:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("stepupd stopped: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		// SIGTERM: stepupd finishes in-flight work and returns.
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stepupd returned %v after SIGTERM", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("stepupd did not stop after SIGTERM")
		}
	})
	return out
}

func TestEmbeddedDefaultPrintsWorkingKeys(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr
	out := start(t, []string{"STEPUP_LISTEN=" + addr}, func() error {
		_, err := http.Get(url + "/healthz")
		return err
	})
	m := regexp.MustCompile(`app key\s+(su_app_\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no app key printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "in memory") {
		t.Error("no warning that state lives in memory")
	}
	req, _ := http.NewRequest("POST", url+"/v1/logins/evaluate",
		strings.NewReader(`{"user_id":"alice","ip":"192.0.2.10","user_agent":"curl/8"}`))
	req.Header.Set("Authorization", "Bearer "+m[1])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("evaluate with the printed key: %d", res.StatusCode)
	}
}

// TestEmbeddedDefaultHidesTheOperatorKey: the demo banner prints the keys
// it made, but never the operator key the operator configured: stdout is
// a log, kept and shipped elsewhere.
func TestEmbeddedDefaultHidesTheOperatorKey(t *testing.T) {
	addr := freeAddr(t)
	const opKey = "op-key-from-the-environment-0123456789"
	out := start(t, []string{"STEPUP_LISTEN=" + addr, "STEPUP_OPERATOR_KEY=" + opKey}, func() error {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err
	})
	if strings.Contains(out.String(), opKey) {
		t.Errorf("stdout shows the operator key:\n%s", out.String())
	}
	if !regexp.MustCompile(`operator key\s+\(set: STEPUP_OPERATOR_KEY`).MatchString(out.String()) {
		t.Errorf("banner does not say the operator key is set:\n%s", out.String())
	}
}

// TestStartsBesideKubernetesServiceVariables: a Service named stepup
// gives the pod STEPUP_* variables that are no settings; stepupd starts
// and names them in its debug log.
func TestStartsBesideKubernetesServiceVariables(t *testing.T) {
	addr := freeAddr(t)
	kube := []string{
		"STEPUP_SERVICE_HOST=10.0.0.1", "STEPUP_SERVICE_PORT=8080", "STEPUP_SERVICE_PORT_HTTP=8080",
		"STEPUP_PORT=tcp://10.0.0.1:8080", "STEPUP_PORT_8080_TCP=tcp://10.0.0.1:8080",
		"STEPUP_PORT_8080_TCP_PROTO=tcp", "STEPUP_PORT_8080_TCP_PORT=8080", "STEPUP_PORT_8080_TCP_ADDR=10.0.0.1",
	}
	out := start(t, append(kube, "STEPUP_LISTEN="+addr, "STEPUP_LOG_LEVEL=debug"), func() error {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err
	})
	for _, kv := range kube {
		if !strings.Contains(out.String(), `"variable":"`+kv+`"`) {
			t.Errorf("debug log does not name %s:\n%s", kv, out.String())
		}
	}
}

func TestServesTLS(t *testing.T) {
	certFile, keyFile, pool := certtest.Write(t, t.TempDir())
	addr := freeAddr(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	start(t, []string{"STEPUP_LISTEN=" + addr, "STEPUP_TLS_CERT_FILE=" + certFile, "STEPUP_TLS_KEY_FILE=" + keyFile}, func() error {
		res, err := client.Get("https://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err
	})
}
