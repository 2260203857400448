package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeCert(t, certFile, keyFile)
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

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stepupd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
