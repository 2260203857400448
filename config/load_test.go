package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	got, err := Load("", []string{"PATH=/usr/bin", "HOME=/root", "STEPUPX=1"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load with nothing set = %+v, want Default() %+v", got, Default())
	}
	if !got.Embedded() {
		t.Error("default config is not embedded")
	}
	if err := got.Validate(); err != nil {
		t.Errorf("default config does not validate:\n%v", err)
	}
	// Spot-check the defaults SPEC.md and the example promise.
	for name, ok := range map[string]bool{
		"listen":                  got.Listen == "127.0.0.1:8080",
		"sms.driver":              got.SMS.Driver == "" && got.SMSDriver() == "console",
		"sms.twilio.api_base_url": got.SMS.Twilio.APIBaseURL == "https://api.twilio.com",
		"mail.driver":             got.Mail.Driver == "" && got.MailDriver() == "console",
		"mail.smtp.port":          got.Mail.SMTP.Port == 587,
		"mail.smtp.tls":           got.Mail.SMTP.TLS == "starttls",
		"delivery.backoff_max":    got.Delivery.BackoffMax == 5*time.Minute,
		"codes.length":            got.Codes.Length == 6,
		"risk.unseen_penalty":     got.Risk.UnseenPenalty == 4.0,
		"risk.ipv4_block_prefix":  got.Risk.IPv4BlockPrefix == 16,
		"risk.mass_prior":         got.Risk.MassPrior == 2,
		"risk.targeted_share":     got.Risk.TargetedShare == 0.5,
		"audit.max_events":        got.Audit.MaxEvents == 100000,
	} {
		if !ok {
			t.Errorf("default of %s is wrong", name)
		}
	}
}

func TestLoadEmptyFile(t *testing.T) {
	for name, content := range map[string]string{
		"empty":         "",
		"comments only": "# nothing set\n",
		"document mark": "---\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(writeFile(t, "stepup.yaml", content), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, Default()) {
				t.Errorf("Load = %+v, want Default()", got)
			}
		})
	}
}

func TestLoadYAML(t *testing.T) {
	path := writeFile(t, "stepup.yaml", `
listen: ":9090"
secret: "0123456789abcdef0123456789abcdef"
trusted_proxies: ["10.0.0.0/8", "192.0.2.1"]
redis:
  cluster_addrs: "10.0.0.1:6379, 10.0.0.2:6379"
  tls: true
sms:
  driver: twilio
  twilio:
    account_sid: AC123
    from: "+14155550100"
mail:
  smtp:
    port: 465
codes:
  ttl: 90s
  length: 8
risk:
  unseen_penalty: 3
  history_days:          # null keeps the default
geoip: {}
tls:
`)
	got, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Default()
	want.Listen = ":9090"
	want.Secret = "0123456789abcdef0123456789abcdef"
	want.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1"}
	want.Redis.ClusterAddrs = []string{"10.0.0.1:6379", "10.0.0.2:6379"}
	want.Redis.TLS = true
	want.SMS.Driver = "twilio"
	want.SMS.Twilio.AccountSID = "AC123"
	want.SMS.Twilio.From = "+14155550100"
	want.Mail.SMTP.Port = 465
	want.Codes.TTL = 90 * time.Second
	want.Codes.Length = 8
	want.Risk.UnseenPenalty = 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
	}
	if got.Embedded() {
		t.Error("config with cluster_addrs is embedded")
	}
}

func TestLoadEnvWinsOverFile(t *testing.T) {
	path := writeFile(t, "stepup.yaml", `
listen: "127.0.0.1:1"
trusted_proxies: ["10.0.0.0/8"]
sms:
  twilio:
    account_sid: ACfile
    auth_token: file-token
codes:
  ttl: 1m
`)
	env := []string{
		"STEPUP_LISTEN=0.0.0.0:8443",
		"STEPUP_SMS_TWILIO_ACCOUNT_SID=ACenv",
		"STEPUP_CODES_TTL=2m",
		"STEPUP_CODES_MAX_SENDS=7",
		"STEPUP_REDIS_TLS=true",
		"STEPUP_RISK_UNSEEN_PENALTY=2.5",
		"STEPUP_RISK_TARGETED_SHARE=0.25",
		"STEPUP_TRUSTED_PROXIES=", // empty list overrides the file's
		"STEPUP_OPERATOR_KEY=a=b", // only the first = separates
		"PATH=/bin",
	}
	got, err := Load(path, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"listen", got.Listen, "0.0.0.0:8443"},
		{"account_sid", got.SMS.Twilio.AccountSID, "ACenv"},
		{"auth_token (file only)", got.SMS.Twilio.AuthToken, "file-token"},
		{"codes.ttl", got.Codes.TTL, 2 * time.Minute},
		{"codes.max_sends", got.Codes.MaxSends, 7},
		{"redis.tls", got.Redis.TLS, true},
		{"risk.unseen_penalty", got.Risk.UnseenPenalty, 2.5},
		{"risk.targeted_share", got.Risk.TargetedShare, 0.25},
		{"trusted_proxies", len(got.TrustedProxies), 0},
		{"operator_key", got.OperatorKey, "a=b"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestLoadEnvLists(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"10.0.0.1:6379", []string{"10.0.0.1:6379"}},
		{"10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379", []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}},
		{" a:1 , b:2 ,, ", []string{"a:1", "b:2"}},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := Load("", []string{"STEPUP_REDIS_CLUSTER_ADDRS=" + tt.value})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !slices.Equal(got.Redis.ClusterAddrs, tt.want) {
				t.Errorf("cluster_addrs = %q, want %q", got.Redis.ClusterAddrs, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string // written to a file when not empty
		env  []string
		want []string // substrings of the error
		not  []string // must not appear (secrets)
	}{
		{
			name: "unknown yaml keys",
			yaml: "listen: \":1\"\nredis:\n  uri: redis://x\nfoo: 1\n",
			want: []string{`stepup.yaml: unknown key "foo"`, `stepup.yaml: unknown key "redis.uri"`},
		},
		{
			name: "unknown env variable",
			env:  []string{"STEPUP_REDIS_URI=redis://x", "STEPUP_LISTEN=:1"},
			want: []string{"config: environment: unknown variable STEPUP_REDIS_URI"},
		},
		{
			name: "env name split differently",
			env:  []string{"STEPUP_SMS_TWILIO_ACCOUNT=x"},
			want: []string{"unknown variable STEPUP_SMS_TWILIO_ACCOUNT"},
		},
		{
			name: "yaml syntax error names file and line",
			yaml: "listen: \":1\"\nredis:\n  url: [\n",
			want: []string{"stepup.yaml: yaml: line "},
		},
		{
			name: "yaml tab indentation",
			yaml: "redis:\n\turl: x\n",
			want: []string{"stepup.yaml: yaml: line 2:"},
		},
		{
			name: "yaml not a mapping",
			yaml: "- a\n- b\n",
			want: []string{"stepup.yaml: yaml: unmarshal errors:\n  line 1:"},
		},
		{
			name: "duplicate yaml key",
			yaml: "listen: \":1\"\nlisten: \":2\"\n",
			want: []string{"stepup.yaml: yaml: ", "line 2", `"listen" already defined`},
		},
		{
			name: "wrong yaml types",
			yaml: "codes:\n  ttl: 300\n  length: six\nsms:\n  twilio:\n    from: +14155550100\nredis:\n  tls: yes\nrisk:\n  unseen_penalty: high\ntrusted_proxies: [1]\nsecret: 0123456789\n",
			want: []string{
				`stepup.yaml: secret: must be a string, got a number (quote the value)`,
				`stepup.yaml: trusted_proxies: entry 1 must be a string, got a number (quote it)`,
				`stepup.yaml: redis.tls: must be true or false, got yes`,
				`stepup.yaml: sms.twilio.from: must be a string, got a number (quote the value)`,
				`stepup.yaml: codes.length: must be an integer, got six`,
				`stepup.yaml: codes.ttl: must be a duration with a unit such as "30s" or "5m", got 300`,
				`stepup.yaml: risk.unseen_penalty: must be a number, got high`,
			},
			not: []string{"12345678901234567890123456789012345"},
		},
		{
			name: "section given a scalar",
			yaml: "redis: localhost\n",
			want: []string{`stepup.yaml: redis: must be a mapping of redis.* keys, got a string`},
		},
		{
			name: "wrong env types",
			env: []string{
				"STEPUP_CODES_LENGTH=six",
				"STEPUP_CODES_TTL=300",
				"STEPUP_REDIS_TLS=maybe",
				"STEPUP_RISK_UNSEEN_PENALTY=x",
			},
			want: []string{
				`config: environment: STEPUP_REDIS_TLS (redis.tls): must be true or false, got "maybe"`,
				`config: environment: STEPUP_CODES_LENGTH (codes.length): must be an integer, got "six"`,
				`config: environment: STEPUP_CODES_TTL (codes.ttl): must be a duration such as "30s" or "5m", got "300"`,
				`config: environment: STEPUP_RISK_UNSEEN_PENALTY (risk.unseen_penalty): must be a number, got "x"`,
			},
		},
		{
			name: "missing file",
			yaml: "-", // sentinel: path to a file that does not exist
			want: []string{"config: open ", "no such file or directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			switch tt.yaml {
			case "":
			case "-":
				path = filepath.Join(t.TempDir(), "missing.yaml")
			default:
				path = writeFile(t, "stepup.yaml", tt.yaml)
			}
			_, err := Load(path, tt.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(msg, n) {
					t.Errorf("error contains %q:\n%s", n, msg)
				}
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	ft, err := fieldsOf(reflect.TypeFor[Config]())
	if err != nil {
		t.Fatal(err)
	}
	for key, env := range map[string]string{
		"listen":                         "STEPUP_LISTEN",
		"operator_key":                   "STEPUP_OPERATOR_KEY",
		"redis.cluster_addrs":            "STEPUP_REDIS_CLUSTER_ADDRS",
		"redis.tls_insecure_skip_verify": "STEPUP_REDIS_TLS_INSECURE_SKIP_VERIFY",
		"sms.twilio.account_sid":         "STEPUP_SMS_TWILIO_ACCOUNT_SID",
		"sms.twilio.status_callback_url": "STEPUP_SMS_TWILIO_STATUS_CALLBACK_URL",
		"mail.smtp.tls":                  "STEPUP_MAIL_SMTP_TLS",
		"limits.challenges_per_ip_hour":  "STEPUP_LIMITS_CHALLENGES_PER_IP_HOUR",
		"geoip.asn_db":                   "STEPUP_GEOIP_ASN_DB",
	} {
		f, ok := ft.byKey[key]
		if !ok {
			t.Errorf("no key %s", key)
			continue
		}
		if f.env != env {
			t.Errorf("env name of %s = %s, want %s", key, f.env, env)
		}
	}
}

func TestFieldTableRejectsBadStructs(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"untagged", reflect.TypeFor[struct{ A string }](), "missing or invalid koanf tag"},
		{"unsupported", reflect.TypeFor[struct {
			A int32 `koanf:"a"`
		}](), "unsupported type int32"},
		{"env collision", reflect.TypeFor[struct {
			A struct {
				B string `koanf:"b_c"`
			} `koanf:"a"`
			AB struct {
				C string `koanf:"c"`
			} `koanf:"a_b"`
		}](), "share the environment name STEPUP_A_B_C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fieldsOf(tt.typ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("fieldsOf = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// TestExampleCoversEveryKey keeps stepup.example.yaml from drifting: it
// must hold exactly the keys of Config, with the default values, and load.
func TestExampleCoversEveryKey(t *testing.T) {
	const path = "../stepup.example.yaml"
	ft, err := fieldsOf(reflect.TypeFor[Config]())
	if err != nil {
		t.Fatal(err)
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	inExample := make(map[string]bool)
	for _, key := range k.Keys() {
		inExample[key] = true
	}
	for _, f := range ft.list {
		if !inExample[f.key] {
			t.Errorf("key %s is missing from %s", f.key, path)
		}
	}

	got, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("%s does not show the defaults:\n got %+v\nwant %+v", path, got, Default())
	}
	if err := got.Validate(); err != nil {
		t.Errorf("%s does not validate:\n%v", path, err)
	}

	// Every key should carry a comment, on its line or in the lines above.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasSuffix(trimmed, ":") {
			continue // comments, blanks and section headers
		}
		if !commented(lines, i) {
			t.Errorf("%s:%d: %q has no comment", path, i+1, trimmed)
		}
	}
}

// commented reports whether the key on line i has a comment above it in
// its paragraph (the lines up to the previous blank line).
func commented(lines []string, i int) bool {
	for j := i - 1; j >= 0; j-- {
		prev := strings.TrimSpace(lines[j])
		switch {
		case strings.HasPrefix(prev, "#"):
			return true
		case prev == "":
			return false
		}
	}
	return false
}
