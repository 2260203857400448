package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef" // 32 bytes

// testPKI writes a self-signed certificate, its key, a second unrelated key
// and a non-PEM file, and returns their paths.
type testPKI struct {
	cert, key, otherKey, notPEM string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() (*ecdsa.PrivateKey, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	key, keyPEM := newKey()
	_, otherPEM := newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stepup test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		cert:     filepath.Join(dir, "cert.pem"),
		key:      filepath.Join(dir, "key.pem"),
		otherKey: filepath.Join(dir, "other.pem"),
		notPEM:   filepath.Join(dir, "not.pem"),
	}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(p.key, keyPEM)
	write(p.otherKey, otherPEM)
	write(p.notPEM, []byte("not a certificate\n"))
	return p
}

func TestValidate(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.mmdb")
	listFile := filepath.Join(dir, "list.netset")
	if err := os.WriteFile(listFile, []byte("192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // exactly the lines of the error; none = valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"single redis", func(c *Config) {
			c.Redis.URL = "rediss://user:pw@redis.example.com:6380/2"
			c.Redis.TLSCAFile = pki.cert
			c.Secret = testSecret
		}, nil},
		{"cluster with tls", func(c *Config) {
			c.Redis.ClusterAddrs = []string{"10.0.0.1:6379", "[::1]:6379", "redis-2:7000"}
			c.Redis.Username, c.Redis.Password = "stepup", "pw"
			c.Redis.TLS, c.Redis.TLSInsecureSkipVerify = true, true
			c.Secret = testSecret
		}, nil},
		{"full production", func(c *Config) {
			c.Redis.URL = "redis://localhost:6379"
			c.Secret = testSecret + "more"
			c.OperatorKey = strings.Repeat("k", 40)
			c.PublicURL = "https://2fa.example.com/base"
			c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"}
			c.GeoIP.CountryDB = pki.cert // any readable file
			c.SMS.Driver = "twilio"
			c.SMS.Twilio = Twilio{AccountSID: "AC0123", AuthToken: "tok", MessagingServiceSID: "MG01", APIBaseURL: "http://127.0.0.1:9999", StatusCallbackURL: "https://x.example/cb"}
			c.Mail.Driver = "smtp"
			c.Mail.From = "Example 2FA <2fa@example.com>"
			c.Mail.SMTP = SMTP{Host: "smtp.example.com", Port: 465, Username: "u", Password: "p", TLS: "tls"}
			c.TLS = TLS{CertFile: pki.cert, KeyFile: pki.key}
			c.Log.Level = "debug"
		}, nil},
		{"twilio alphanumeric sender", func(c *Config) {
			c.SMS.Driver = "twilio"
			c.SMS.Twilio.AccountSID, c.SMS.Twilio.AuthToken, c.SMS.Twilio.From = "AC1", "t", "Example"
		}, nil},

		// Top level.
		{"listen not host:port", func(c *Config) { c.Listen = "8080" }, []string{`listen: must be host:port, got "8080"`}},
		{"listen bad port", func(c *Config) { c.Listen = "localhost:http" }, []string{`listen: port must be a number from 0 to 65535, got "http"`}},
		{"listen port range", func(c *Config) { c.Listen = ":70000" }, []string{`listen: port must be a number from 0 to 65535, got "70000"`}},
		{"secret short", func(c *Config) { c.Secret = "short" }, []string{"secret: must be at least 32 bytes, got 5"}},
		{"secret required with redis", func(c *Config) { c.Redis.URL = "redis://localhost" }, []string{"secret: required when redis.url or redis.cluster_addrs is set; must be at least 32 bytes"}},
		{"secret required with cluster", func(c *Config) { c.Redis.ClusterAddrs = []string{"a:1"} }, []string{"secret: required when redis.url or redis.cluster_addrs is set; must be at least 32 bytes"}},
		{"operator key short is allowed", func(c *Config) { c.OperatorKey = "abc" }, nil},
		{"operator key spaces", func(c *Config) { c.OperatorKey = strings.Repeat("k", 32) + " x" }, []string{"operator_key: must not contain spaces or control characters"}},
		{"public url relative", func(c *Config) { c.PublicURL = "2fa.example.com" }, []string{`public_url: must be an absolute http(s) URL, got "2fa.example.com"`}},
		{"public url scheme", func(c *Config) { c.PublicURL = "ftp://x" }, []string{`public_url: must be an absolute http(s) URL, got "ftp://x"`}},
		{"public url unparsable", func(c *Config) { c.PublicURL = "http://x:port" }, []string{`public_url: must be an absolute http(s) URL: invalid port ":port" after host`}},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.local", "10.0.0.0/33"} }, []string{
			`trusted_proxies: "proxy.local" is not an IP address or CIDR`,
			`trusted_proxies: "10.0.0.0/33" is not an IP address or CIDR`,
		}},

		// Redis.
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://localhost"; c.Secret = testSecret }, []string{"redis.url: scheme must be redis or rediss"}},
		{"redis url no host", func(c *Config) { c.Redis.URL = "redis:///0"; c.Secret = testSecret }, []string{"redis.url: must name a host, as in redis://host:6379/0"}},
		{"redis url bad db", func(c *Config) { c.Redis.URL = "redis://localhost/x"; c.Secret = testSecret }, []string{`redis.url: redis: invalid database number: "x"`}},
		{"redis url unparsable hides password", func(c *Config) { c.Redis.URL = "redis://u:hunter2@h:port"; c.Secret = testSecret }, []string{`redis.url: cannot parse: invalid port ":port" after host`}},
		{"redis exclusive", func(c *Config) {
			c.Redis.URL, c.Redis.ClusterAddrs, c.Secret = "redis://localhost", []string{"a:1"}, testSecret
		}, []string{"redis: url and cluster_addrs are exclusive"}},
		{"redis cluster addr", func(c *Config) { c.Redis.ClusterAddrs = []string{"a:1", "b", ":6379"}; c.Secret = testSecret }, []string{
			`redis.cluster_addrs: must be host:port, got "b"`,
			`redis.cluster_addrs: must be host:port with a host, got ":6379"`,
		}},
		{"redis tls with url", func(c *Config) { c.Redis.URL, c.Redis.TLS, c.Secret = "redis://h", true, testSecret }, []string{
			"redis.tls: applies to redis.cluster_addrs only; use a rediss:// redis.url for TLS to a single node",
		}},
		{"redis credentials twice", func(c *Config) {
			c.Redis.URL, c.Secret = "redis://u:p@h", testSecret
			c.Redis.Username, c.Redis.Password = "u", "p"
		}, []string{"redis.username: also set in redis.url; set it in one place", "redis.password: also set in redis.url; set it in one place"}},
		{"redis settings without redis", func(c *Config) { c.Redis.Username, c.Redis.Password, c.Redis.TLS = "u", "p", true }, []string{
			"redis.username: set but neither redis.url nor redis.cluster_addrs is (stepupd would use its in-memory store)",
			"redis.password: set but neither redis.url nor redis.cluster_addrs is (stepupd would use its in-memory store)",
			"redis.tls: set but neither redis.url nor redis.cluster_addrs is (stepupd would use its in-memory store)",
		}},
		{"redis tls options without tls", func(c *Config) {
			c.Redis.URL, c.Secret = "redis://h", testSecret
			c.Redis.TLSCAFile, c.Redis.TLSInsecureSkipVerify = pki.cert, true
		}, []string{
			"redis.tls_ca_file: requires TLS: a rediss:// redis.url, or redis.tls with redis.cluster_addrs",
			"redis.tls_insecure_skip_verify: requires TLS: a rediss:// redis.url, or redis.tls with redis.cluster_addrs",
		}},
		{"redis ca not pem", func(c *Config) { c.Redis.URL, c.Secret, c.Redis.TLSCAFile = "rediss://h", testSecret, pki.notPEM }, []string{
			"redis.tls_ca_file: contains no PEM certificate",
		}},
		{"redis ca missing", func(c *Config) { c.Redis.URL, c.Secret, c.Redis.TLSCAFile = "rediss://h", testSecret, missing }, []string{
			"redis.tls_ca_file: cannot read file: open " + missing + ": no such file or directory",
		}},

		// Drivers: with Redis a console driver must be chosen, not
		// defaulted into, as it prints codes and report links to the log.
		{"drivers required with redis", func(c *Config) {
			c.Redis.URL, c.Secret = "redis://h", testSecret
			c.SMS.Driver, c.Mail.Driver = "", ""
		}, []string{
			"sms.driver: required when redis.url or redis.cluster_addrs is set: twilio, or console to print codes to the log",
			"mail.driver: required when redis.url or redis.cluster_addrs is set: smtp, or console to print mails to the log",
		}},
		{"drivers required with a cluster", func(c *Config) {
			c.Redis.ClusterAddrs, c.Secret = []string{"10.0.0.1:6379"}, testSecret
			c.SMS.Driver = ""
		}, []string{"sms.driver: required when redis.url or redis.cluster_addrs is set: twilio, or console to print codes to the log"}},
		{"explicit console with redis", func(c *Config) { c.Redis.URL, c.Secret = "redis://h", testSecret }, nil},
		{"drivers default to console when embedded", func(c *Config) { c.SMS.Driver, c.Mail.Driver = "", "" }, nil},

		// GeoIP.
		{"geoip missing files", func(c *Config) { c.GeoIP = GeoIP{CountryDB: missing, CityDB: dir, ASNDB: missing} }, []string{
			"geoip.country_db: cannot read file: open " + missing + ": no such file or directory",
			"geoip.city_db: " + dir + " is not a regular file",
			"geoip.asn_db: cannot read file: open " + missing + ": no such file or directory",
		}},

		// SMS.
		{"sms driver", func(c *Config) { c.SMS.Driver = "sns" }, []string{`sms.driver: must be twilio or console, got "sns"`}},
		{"twilio required", func(c *Config) { c.SMS.Driver = "twilio"; c.SMS.Twilio.APIBaseURL = "" }, []string{
			"sms.twilio.account_sid: required when sms.driver is twilio",
			"sms.twilio.auth_token: required when sms.driver is twilio",
			"sms.twilio.from: required when sms.driver is twilio, unless sms.twilio.messaging_service_sid is set",
			"sms.twilio.api_base_url: required when sms.driver is twilio",
		}},
		{"twilio formats", func(c *Config) {
			c.SMS.Twilio = Twilio{AccountSID: "SK1", MessagingServiceSID: "PN1", From: "0412 345 678 9", APIBaseURL: "api.twilio.com", StatusCallbackURL: "/cb"}
		}, []string{
			`sms.twilio.from: must be an E.164 number (+14155550100), a short code or an alphanumeric sender ID of at most 11 characters, got "0412 345 678 9"`,
			`sms.twilio.api_base_url: must be an absolute http(s) URL, got "api.twilio.com"`,
			`sms.twilio.status_callback_url: must be an absolute http(s) URL, got "/cb"`,
		}},

		// Mail.
		{"mail driver", func(c *Config) { c.Mail.Driver = "sendmail" }, []string{`mail.driver: must be smtp or console, got "sendmail"`}},
		{"smtp required", func(c *Config) { c.Mail.Driver = "smtp" }, []string{
			"mail.smtp.host: required when mail.driver is smtp",
			"mail.from: required when mail.driver is smtp",
		}},
		{"mail from", func(c *Config) { c.Mail.From = "not an address" }, []string{
			`mail.from: must be an e-mail address such as "Example <2fa@example.com>": mail: no angle-addr`,
		}},
		{"smtp host with port", func(c *Config) { c.Mail.SMTP.Host = "smtp.example.com:587" }, []string{"mail.smtp.host: must be a host name without port; set mail.smtp.port"}},
		{"smtp ipv6 host", func(c *Config) { c.Mail.SMTP.Host = "::1" }, nil},
		{"smtp port", func(c *Config) { c.Mail.SMTP.Port = 0 }, []string{"mail.smtp.port: must be between 1 and 65535, got 0"}},
		{"smtp tls", func(c *Config) { c.Mail.SMTP.TLS = "ssl" }, []string{`mail.smtp.tls: must be starttls, tls or none, got "ssl"`}},
		{"smtp password without user", func(c *Config) { c.Mail.SMTP.Password = "p" }, []string{"mail.smtp.username: required when mail.smtp.password is set"}},

		// HTTPS.
		{"tls cert without key", func(c *Config) { c.TLS.CertFile = pki.cert }, []string{"tls.key_file: required when tls.cert_file is set"}},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = pki.key }, []string{"tls.cert_file: required when tls.key_file is set"}},
		{"tls missing files", func(c *Config) { c.TLS = TLS{CertFile: missing, KeyFile: missing} }, []string{
			"tls.cert_file: cannot read file: open " + missing + ": no such file or directory",
			"tls.key_file: cannot read file: open " + missing + ": no such file or directory",
		}},
		{"tls mismatched pair", func(c *Config) { c.TLS = TLS{CertFile: pki.cert, KeyFile: pki.otherKey} }, []string{
			"tls: cert_file and key_file are not a valid key pair: tls: private key does not match public key",
		}},

		// Numbers and enums.
		{"log level", func(c *Config) { c.Log.Level = "INFO" }, []string{`log.level: must be debug, info, warn or error, got "INFO"`}},
		{"delivery", func(c *Config) {
			c.Delivery = Delivery{Workers: 0, MaxAttempts: 101, BackoffBase: time.Minute, BackoffMax: time.Second, ClaimIdle: 10 * time.Millisecond}
		}, []string{
			"delivery.workers: must be between 1 and 256, got 0",
			"delivery.max_attempts: must be between 1 and 100, got 101",
			"delivery.backoff_max: must not be less than delivery.backoff_base (1m0s)",
			"delivery.claim_idle: must be at least 1s, got 10ms",
		}},
		{"delivery durations positive", func(c *Config) {
			c.Delivery.BackoffBase, c.Delivery.BackoffMax, c.Delivery.ClaimIdle = 0, -time.Second, 2*time.Hour
		}, []string{
			"delivery.backoff_base: must be positive, got 0s",
			"delivery.backoff_max: must be positive, got -1s",
			"delivery.claim_idle: must be at most 1h0m0s, got 2h0m0s",
		}},
		{"codes", func(c *Config) {
			c.Codes = Codes{Length: 3, TTL: 25 * time.Hour, MaxAttempts: 0, MaxSends: 0, ResendCooldown: 0}
		}, []string{
			"codes.length: must be between 4 and 10, got 3",
			"codes.ttl: must be at most 24h0m0s, got 25h0m0s",
			"codes.max_attempts: must be between 1 and 100, got 0",
			"codes.max_sends: must be between 1 and 100, got 0",
			"codes.resend_cooldown: must be positive, got 0s",
		}},
		{"codes length too long", func(c *Config) { c.Codes.Length = 11 }, []string{"codes.length: must be between 4 and 10, got 11"}},
		{"codes cooldown vs ttl", func(c *Config) { c.Codes.TTL, c.Codes.ResendCooldown = time.Minute, time.Minute }, []string{
			"codes.resend_cooldown: must be less than codes.ttl (1m0s)",
		}},
		{"risk", func(c *Config) {
			c.Risk = Risk{HistorySize: 0, HistoryDays: 0, IPv4Prefix: 33, IPv6Prefix: 8, UnseenPenalty: -1}
		}, []string{
			"risk.history_size: must be between 1 and 1000, got 0",
			"risk.history_days: must be between 1 and 3650, got 0",
			"risk.feedback_days: must be between 1 and 90, got 0",
			"risk.report_half_life: must be positive, got 0s",
			"risk.ipv4_prefix: must be between 8 and 32, got 33",
			"risk.ipv6_prefix: must be between 16 and 128, got 8",
			"risk.unseen_penalty: must be a factor between 1 and 100, got -1",
			"risk.ipv4_block_prefix: must be between 8 and 32, got 0",
			"risk.ipv6_block_prefix: must be between 16 and 128, got 0",
			"risk.mass_prior: must be a number of logins between 0.1 and 1000, got 0",
			"risk.targeted_share: must be a share above 0 and at most 1, got 0",
			"risk.reported_factor: must be a factor between 1 and 10000, got 0",
			"risk.ip_lists_poll: must be positive, got 0s",
		}},
		{"risk block not shorter than network", func(c *Config) {
			c.Risk.IPv4Prefix, c.Risk.IPv4BlockPrefix = 16, 16
			c.Risk.IPv6Prefix, c.Risk.IPv6BlockPrefix = 48, 56
		}, []string{
			"risk.ipv4_block_prefix: must be shorter than risk.ipv4_prefix (16), got 16",
			"risk.ipv6_block_prefix: must be shorter than risk.ipv6_prefix (48), got 56",
		}},
		{"risk model constants out of range", func(c *Config) {
			c.Risk.MassPrior, c.Risk.TargetedShare, c.Risk.ReportedFactor = math.Inf(1), 1.5, 0.5
		}, []string{
			"risk.mass_prior: must be a number of logins between 0.1 and 1000, got +Inf",
			"risk.targeted_share: must be a share above 0 and at most 1, got 1.5",
			"risk.reported_factor: must be a factor between 1 and 10000, got 0.5",
		}},
		{"ip lists", func(c *Config) {
			c.Risk.IPLists = []IPList{
				{Name: "tor", File: listFile, Action: "challenge"},
				{Name: "hosting", File: listFile, Action: "score", Factor: 50},
				{Name: "", File: missing, Action: "block"},
				{Name: "tor", File: "", Action: "deny", Factor: 2},
				{Name: "bad name!", File: listFile, Action: "score", Factor: 0.5},
			}
			c.Risk.IPListsPoll = time.Millisecond
		}, []string{
			"risk.ip_lists[2].name: required",
			"risk.ip_lists[2].file: cannot read file: open " + missing + ": no such file or directory",
			`risk.ip_lists[2].action: must be score, challenge or deny, got "block"`,
			`risk.ip_lists[3].name: "tor" names two lists`,
			"risk.ip_lists[3].file: required",
			"risk.ip_lists[3].factor: only a list with action score has a factor",
			`risk.ip_lists[4].name: must be 1-64 letters, digits, '.', '_' or '-', got "bad name!"`,
			"risk.ip_lists[4].factor: must be a factor between 1 and 1000, got 0.5",
			"risk.ip_lists_poll: must be at least 1s, got 1ms",
		}},
		{"risk penalty NaN", func(c *Config) { c.Risk.UnseenPenalty = math.NaN() }, []string{"risk.unseen_penalty: must be a factor between 1 and 100, got NaN"}},
		{"limits", func(c *Config) { c.Limits = Limits{} }, []string{
			"limits.sms_per_user_hour: must be between 1 and 10000000, got 0",
			"limits.sms_per_number_hour: must be between 1 and 10000000, got 0",
			"limits.sms_per_country_hour: must be between 1 and 10000000, got 0",
			"limits.challenges_per_ip_hour: must be between 1 and 10000000, got 0",
			"limits.sms_per_tenant_hour: must be between 1 and 10000000, got 0",
			"limits.email_per_user_hour: must be between 1 and 10000000, got 0",
			"limits.email_per_address_hour: must be between 1 and 10000000, got 0",
			"limits.wrong_codes_per_user_hour: must be between 3 and 1000, got 0",
			"limits.auth_failures_per_ip_minute: must be between 1 and 10000000, got 0",
		}},
		{"wrong codes budget", func(c *Config) { c.Limits.WrongCodesPerUserHour = 2 }, []string{"limits.wrong_codes_per_user_hour: must be between 3 and 1000, got 2"}},
		{"audit", func(c *Config) { c.Audit.MaxEvents = 10 }, []string{"audit.max_events: must be between 100 and 1000000000, got 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			// Set as a production file would; the cases below that test
			// their absence clear them.
			c.SMS.Driver, c.Mail.Driver = "console", "console"
			tt.mutate(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() lines:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the redis password: %v", err)
			}
		})
	}
}

// TestValidateURLErrorsHidePasswords gives URLs whose password holds a
// character that ends the user info early ('#', '/', '?'): url.Parse then
// quotes the password's start as a bad port, which must not reach the
// error stepupd prints.
func TestValidateURLErrorsHidePasswords(t *testing.T) {
	for _, pw := range []string{"hun#ter2", "hun/ter2", "hun?ter2"} {
		c := Default()
		c.SMS.Driver, c.Mail.Driver, c.Secret = "console", "console", testSecret
		c.Redis.URL = "redis://default:" + pw + "@redis.internal:6379/0"
		c.Tracing.Endpoint = "https://otel:" + pw + "@collector.internal:4318"
		err := c.Validate()
		if err == nil {
			t.Fatalf("password %q: no error", pw)
		}
		for _, want := range []string{"redis.url: ", "tracing.endpoint: "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("password %q: error lacks %q: %v", pw, want, err)
			}
		}
		if strings.Contains(err.Error(), "hun") {
			t.Errorf("password %q: error quotes the password: %v", pw, err)
		}
	}
}

// TestValidateCollectsAll checks that one call reports every problem as a
// FieldError reachable through errors.As.
func TestValidateCollectsAll(t *testing.T) {
	c := Default()
	c.Listen = "nope"
	c.Codes.Length = 0
	c.SMS.Driver = "twilio"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() error %T is not a joined error", err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		fe, ok := errors.AsType[FieldError](e)
		if !ok {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"listen", "sms.twilio.account_sid", "sms.twilio.auth_token", "sms.twilio.from", "codes.length"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields = %q, want %q", fields, want)
	}
	if fe, ok := errors.AsType[FieldError](err); !ok || fe.Field != "listen" {
		t.Errorf("errors.As(FieldError) = %+v, %v; want the listen error first", fe, ok)
	}
}

func TestLogValueRedacts(t *testing.T) {
	c := Default()
	c.Secret = testSecret
	c.OperatorKey = "operator-key-operator-key-operator"
	c.Redis.URL = "redis://user:hunter2@localhost:6379/0"
	c.Redis.Password = "redis-pass"
	c.SMS.Twilio.AuthToken = "twilio-token"
	c.Mail.SMTP.Password = "smtp-pass"
	c.SMS.Twilio.AccountSID = "AC42"

	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("start", "config", c)
	out := b.String()
	for _, secret := range []string{testSecret, c.OperatorKey, "hunter2", "redis-pass", "twilio-token", "smtp-pass"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"config.secret=[redacted]",
		"config.redis.url=redis://user:xxxxx@localhost:6379/0",
		"config.sms.twilio.account_sid=AC42",
		"config.codes.ttl=5m0s",
		"config.mail.smtp.password=[redacted]",
		"config.tls.cert_file=\"\"", // empty values stay visibly empty
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// Unusual but valid settings are warned about at start, not refused: a
// Twilio-compatible test server may use any account id, a test setup a
// short operator key.
func TestWarnings(t *testing.T) {
	c := Default()
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("defaults warn: %v", w)
	}
	c.OperatorKey = "op"
	c.SMS.Twilio = Twilio{AccountSID: "SK1", MessagingServiceSID: "PN1"}
	want := []string{
		"operator_key: 2 bytes; use at least 32 random bytes in production",
		"sms.twilio.account_sid: Twilio account SIDs start with AC",
		"sms.twilio.messaging_service_sid: Twilio messaging service SIDs start with MG",
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Fatalf("warnings = %q, want %q", got, want)
	}
}

// TestWarningsSilentMistakes: settings an operator can make without
// noticing that they undo a protection.
func TestWarningsSilentMistakes(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"every address a proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "0.0.0.0/0", "::/0"} }, []string{
			`trusted_proxies: "0.0.0.0/0" trusts every address: any client can set X-Forwarded-For and escape the failed-key throttle`,
			`trusted_proxies: "::/0" trusts every address: any client can set X-Forwarded-For and escape the failed-key throttle`,
		}},
		{"a proxy network", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1"} }, nil},
		{"smtp auth in clear over the network", func(c *Config) {
			c.Mail.SMTP = SMTP{Host: "mail.example.com", Port: 25, TLS: "none", Username: "u", Password: "p"}
		}, []string{"mail.smtp.tls: none with mail.smtp.username: the login crosses the network unencrypted " +
			"(challenge-response only; a server offering only PLAIN or LOGIN will refuse every mail)"}},
		{"smtp auth in clear on this host", func(c *Config) {
			c.Mail.SMTP = SMTP{Host: "localhost", Port: 25, TLS: "none", Username: "u", Password: "p"}
		}, nil},
		{"smtp without auth", func(c *Config) { c.Mail.SMTP = SMTP{Host: "mail.example.com", Port: 25, TLS: "none"} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			if got := c.Warnings(); !slices.Equal(got, tt.want) {
				t.Errorf("warnings = %q, want %q", got, tt.want)
			}
		})
	}
}
