package config

import (
	"log/slog"
	"net/url"
	"reflect"
	"time"

	"github.com/stepup-auth/stepup/risk"
)

// Config is the whole of stepupd's configuration. The koanf tags are the YAML
// keys of SPEC.md section 9; see stepup.example.yaml for every key with its
// default. The zero value is not useful: start from [Default] or [Load].
//
// Fields tagged redact:"true" are secrets and redact:"url" a URL that may
// carry a password; [Config.LogValue] masks both.
type Config struct {
	// Listen is the host:port the API is served on.
	Listen string `koanf:"listen"`
	// Secret is the server secret (at least 32 bytes) from which code
	// HMACs, hashes and encryption keys are derived. Required with Redis;
	// in embedded mode stepupd generates one when it is empty.
	Secret string `koanf:"secret" redact:"true"`
	// OperatorKey is the operator's bearer key.
	OperatorKey string `koanf:"operator_key" redact:"true"`
	// PublicURL is the externally visible base URL, used in e-mail links
	// and the Twilio status callback.
	PublicURL string `koanf:"public_url"`
	// TrustedProxies lists IPs and CIDRs whose X-Forwarded-For header is
	// believed.
	TrustedProxies []string `koanf:"trusted_proxies"`

	// Redis selects Redis or Redis Cluster; unset means embedded.
	Redis Redis `koanf:"redis"`
	// GeoIP names the .mmdb databases of the risk scorer.
	GeoIP GeoIP `koanf:"geoip"`
	// SMS configures the SMS sender.
	SMS SMS `koanf:"sms"`
	// Mail configures the e-mail sender.
	Mail Mail `koanf:"mail"`
	// TLS makes stepupd serve HTTPS itself.
	TLS TLS `koanf:"tls"`
	// Log configures logging.
	Log Log `koanf:"log"`
	// Delivery configures the queue workers.
	Delivery Delivery `koanf:"delivery"`
	// Codes configures one-time codes.
	Codes Codes `koanf:"codes"`
	// Risk tunes the risk scorer.
	Risk Risk `koanf:"risk"`
	// Limits are abuse rate limits.
	Limits Limits `koanf:"limits"`
	// Audit configures the audit log.
	Audit Audit `koanf:"audit"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `koanf:"metrics"`
	// Tracing configures OpenTelemetry tracing; off by default.
	Tracing Tracing `koanf:"tracing"`
}

// Tracing configures OpenTelemetry tracing.
type Tracing struct {
	// Endpoint is the OTLP/HTTP collector spans are exported to, such as
	// "http://otel-collector:4318" (the path defaults to /v1/traces).
	// Empty turns tracing off.
	Endpoint string `koanf:"endpoint" redact:"url"`
}

// Metrics configures GET /metrics.
type Metrics struct {
	// Token, when set, is the bearer token /metrics requires
	// ("Authorization: Bearer <token>"); empty leaves /metrics open to
	// anyone who can reach the listener.
	Token string `koanf:"token" redact:"true"`
}

// Redis selects the Redis deployment. With neither URL nor ClusterAddrs set,
// stepupd runs on its embedded in-process store.
type Redis struct {
	// URL is a redis:// or rediss:// URL of a single node (or a
	// replicated primary); it may carry the username and password.
	URL string `koanf:"url" redact:"url"`
	// ClusterAddrs are host:port seed nodes of a Redis Cluster.
	ClusterAddrs []string `koanf:"cluster_addrs"`
	// Username is the ACL user (for a cluster; a single node may take it
	// from URL instead).
	Username string `koanf:"username"`
	// Password is the ACL password (for a cluster; a single node may take
	// it from URL instead).
	Password string `koanf:"password" redact:"true"`
	// TLS turns on TLS to the cluster seeds and nodes. A single node uses
	// a rediss:// URL instead.
	TLS bool `koanf:"tls"`
	// TLSCAFile is a PEM bundle of CAs to verify the Redis servers with
	// instead of the system roots.
	TLSCAFile string `koanf:"tls_ca_file"`
	// TLSInsecureSkipVerify disables server certificate verification.
	// For tests only.
	TLSInsecureSkipVerify bool `koanf:"tls_insecure_skip_verify"`
}

// GeoIP names MaxMind-format .mmdb databases. Each is optional; a missing
// database only removes the risk features it provides.
type GeoIP struct {
	// CountryDB is a GeoIP2/GeoLite2 Country database.
	CountryDB string `koanf:"country_db"`
	// CityDB is a GeoIP2/GeoLite2 City database.
	CityDB string `koanf:"city_db"`
	// ASNDB is a GeoLite2 ASN database.
	ASNDB string `koanf:"asn_db"`
}

// SMS selects and configures the SMS sender.
type SMS struct {
	// Driver is "twilio" or "console" (messages go to the log). Empty means
	// console with the embedded store; with Redis it must be set: console
	// prints codes to the log, which must be a decision, not a default.
	Driver string `koanf:"driver"`
	// Twilio configures the twilio driver.
	Twilio Twilio `koanf:"twilio"`
}

// Twilio is a Twilio account used to send SMS.
type Twilio struct {
	// AccountSID is the account's SID ("AC…").
	AccountSID string `koanf:"account_sid"`
	// AuthToken is the account's auth token.
	AuthToken string `koanf:"auth_token" redact:"true"`
	// From is the sender: an E.164 number, a short code or an
	// alphanumeric sender ID. Either From or MessagingServiceSID is needed.
	From string `koanf:"from"`
	// MessagingServiceSID ("MG…") sends through a Messaging Service,
	// which picks the sender.
	MessagingServiceSID string `koanf:"messaging_service_sid"`
	// APIBaseURL is Twilio's API root, changed for edge locations and
	// contract tests.
	APIBaseURL string `koanf:"api_base_url"`
	// StatusCallbackURL receives Twilio's delivery status callbacks; empty
	// means PublicURL plus the API's callback path.
	StatusCallbackURL string `koanf:"status_callback_url"`
}

// Mail selects and configures the e-mail sender.
type Mail struct {
	// Driver is "smtp" or "console" (mails go to the log). Empty means
	// console with the embedded store; with Redis it must be set: console
	// prints codes and report links to the log.
	Driver string `koanf:"driver"`
	// From is the sender address, optionally with a display name.
	From string `koanf:"from"`
	// SMTP configures the smtp driver.
	SMTP SMTP `koanf:"smtp"`
}

// SMTP is the submission server the smtp mail driver talks to.
type SMTP struct {
	// Host is the server's host name or IP, without port.
	Host string `koanf:"host"`
	// Port is the server's TCP port.
	Port int `koanf:"port"`
	// Username authenticates to the server together with Password; both
	// empty means no authentication.
	Username string `koanf:"username"`
	// Password is the SMTP password.
	Password string `koanf:"password" redact:"true"`
	// TLS is "starttls", "tls" (implicit TLS, usually port 465) or "none".
	TLS string `koanf:"tls"`
	// TLSInsecureSkipVerify disables server certificate verification.
	// For tests and self-signed servers only.
	TLSInsecureSkipVerify bool `koanf:"tls_insecure_skip_verify"`
}

// TLS makes stepupd serve HTTPS itself. Both files or neither.
type TLS struct {
	// CertFile is a PEM certificate chain.
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `koanf:"key_file"`
}

// Log configures the JSON log.
type Log struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `koanf:"level"`
}

// Delivery configures the durable SMS/e-mail queue workers.
type Delivery struct {
	// Workers is the number of concurrent senders per process.
	Workers int `koanf:"workers"`
	// MaxAttempts is how many tries a job gets before the dead-letter
	// stream.
	MaxAttempts int `koanf:"max_attempts"`
	// BackoffBase is the delay before the first retry; it doubles per try.
	BackoffBase time.Duration `koanf:"backoff_base"`
	// BackoffMax caps the retry delay.
	BackoffMax time.Duration `koanf:"backoff_max"`
	// ClaimIdle is how long a job may sit unacknowledged with a crashed
	// worker before another worker claims it.
	ClaimIdle time.Duration `koanf:"claim_idle"`
}

// Codes configures one-time codes sent by SMS or e-mail.
type Codes struct {
	// Length is the number of digits, 4 to 10.
	Length int `koanf:"length"`
	// TTL is how long a code stays valid.
	TTL time.Duration `koanf:"ttl"`
	// MaxAttempts is how many wrong guesses lock a challenge.
	MaxAttempts int `koanf:"max_attempts"`
	// MaxSends is how many times one challenge's code may be sent.
	MaxSends int `koanf:"max_sends"`
	// ResendCooldown is the minimum time between two sends.
	ResendCooldown time.Duration `koanf:"resend_cooldown"`
}

// Risk tunes the login risk scorer.
type Risk struct {
	// HistorySize is how many past logins per user are kept.
	HistorySize int `koanf:"history_size"`
	// HistoryDays is how long past logins count.
	HistoryDays int `koanf:"history_days"`
	// IPv4Prefix is the prefix length under which IPv4 addresses count as
	// the same network.
	IPv4Prefix int `koanf:"ipv4_prefix"`
	// IPv6Prefix is the same for IPv6.
	IPv6Prefix int `koanf:"ipv6_prefix"`
	// UnseenPenalty is the factor by which risk grows when the user never
	// had a feature's value at some level (risk.Options.UnseenPenalty).
	UnseenPenalty float64 `koanf:"unseen_penalty"`
	// IPv4BlockPrefix and IPv6BlockPrefix are the prefix lengths of the
	// operator's block (risk.Options.IPv4BlockPrefix): the scope a
	// carrier's NAT or a home's DHCP leases move within, standing in for
	// the AS without an ASN database. Shorter than the network prefixes.
	IPv4BlockPrefix int `koanf:"ipv4_block_prefix"`
	IPv6BlockPrefix int `koanf:"ipv6_block_prefix"`
	// MassPrior is the weight, in logins, of the prior in each user's
	// missing mass (risk.Options.MassPrior).
	MassPrior float64 `koanf:"mass_prior"`
	// TargetedShare is the least share of a user's own network a targeted
	// attacker is assumed to reach (risk.Options.TargetedShare).
	TargetedShare float64 `koanf:"targeted_share"`
	// ReportedFactor multiplies the risk of logins from a network with a
	// fresh fraud report (risk.Options.ReportedFactor).
	ReportedFactor float64 `koanf:"reported_factor"`
	// IPLists are IP reputation lists (a Tor exit list, a hosting
	// provider's ranges, a FireHOL .netset): files of one IP or CIDR a
	// line whose addresses raise the risk, force a challenge or are
	// denied. Empty by default.
	IPLists []IPList `koanf:"ip_lists"`
	// IPListsPoll is how often the list files are checked for changes
	// (modification time and size); a changed file is reloaded without a
	// restart.
	IPListsPoll time.Duration `koanf:"ip_lists_poll"`
	// FeedbackDays is how long a login may get a verdict (POST
	// /v1/logins/{id}/feedback); every evaluated login's record is kept
	// this long.
	FeedbackDays int `koanf:"feedback_days"`
	// ReportHalfLife is how fast a fraud report's weight on its network
	// decays.
	ReportHalfLife time.Duration `koanf:"report_half_life"`
}

// IPList is one IP reputation list file.
type IPList struct {
	// Name names the list in the ip_list signal of the logins it holds
	// ("tor"); letters, digits, '.', '_' and '-'.
	Name string `koanf:"name" yaml:"name"`
	// File is the path of the list: one IPv4/IPv6 address or CIDR prefix
	// a line, blank lines and comments after '#' or ';' allowed.
	File string `koanf:"file" yaml:"file"`
	// Action is "score" (the risk is multiplied by Factor), "challenge"
	// (an enrolled user is challenged, even on a remembered device) or
	// "deny" (the login is denied, as from a blocked network).
	Action string `koanf:"action" yaml:"action"`
	// Factor is what a score list multiplies the risk by (1-1000; 0 means
	// 20, risk.DefaultListFactor). Only with action score.
	Factor float64 `koanf:"factor" yaml:"factor"`
}

// Limits are abuse rate limits, each per rolling hour.
type Limits struct {
	// SMSPerUserHour caps SMS to one user.
	SMSPerUserHour int `koanf:"sms_per_user_hour"`
	// SMSPerNumberHour caps SMS to one phone number, across users.
	SMSPerNumberHour int `koanf:"sms_per_number_hour"`
	// SMSPerCountryHour caps SMS to one destination country, against
	// toll fraud.
	SMSPerCountryHour int `koanf:"sms_per_country_hour"`
	// ChallengesPerIPHour caps challenges started from one client IP.
	ChallengesPerIPHour int `koanf:"challenges_per_ip_hour"`
	// SMSPerTenantHour caps all SMS of one tenant, against SMS pumping
	// (a tenant's policy may lower it with sms_per_hour).
	SMSPerTenantHour int `koanf:"sms_per_tenant_hour"`
	// EmailPerUserHour caps code mails to one user.
	EmailPerUserHour int `koanf:"email_per_user_hour"`
	// EmailPerAddressHour caps code mails to one address, across users.
	EmailPerAddressHour int `koanf:"email_per_address_hour"`
	// WrongCodesPerUserHour caps the codes one user may try, across all the
	// user's challenges and factors; past it every verification answers
	// 429 until the hour has passed. Right codes do not count.
	WrongCodesPerUserHour int `koanf:"wrong_codes_per_user_hour"`
	// AuthFailuresPerIPMinute caps failed API key checks from one client
	// address a minute; past it the address gets 429 for every key.
	AuthFailuresPerIPMinute int `koanf:"auth_failures_per_ip_minute"`
}

// Audit configures the audit log.
type Audit struct {
	// MaxEvents is the approximate number of audit events kept per tenant
	// and shard stream before the oldest are trimmed.
	MaxEvents int `koanf:"max_events"`
}

// Default returns the configuration used for every key that neither the
// file nor the environment sets: an embedded store, console SMS and mail
// (the drivers are left empty, which means console only without Redis).
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		SMS: SMS{
			Twilio: Twilio{APIBaseURL: "https://api.twilio.com"},
		},
		Mail: Mail{
			SMTP: SMTP{Port: 587, TLS: "starttls"},
		},
		Log: Log{Level: "info"},
		Delivery: Delivery{
			Workers:     4,
			MaxAttempts: 8,
			BackoffBase: 2 * time.Second,
			BackoffMax:  5 * time.Minute,
			ClaimIdle:   30 * time.Second,
		},
		Codes: Codes{
			Length:         6,
			TTL:            5 * time.Minute,
			MaxAttempts:    5,
			MaxSends:       3,
			ResendCooldown: 30 * time.Second,
		},
		Risk: Risk{
			HistorySize:  50,
			HistoryDays:  180,
			FeedbackDays: 7, ReportHalfLife: 72 * time.Hour,
			IPv4Prefix:      24,
			IPv6Prefix:      64,
			UnseenPenalty:   risk.DefaultUnseenPenalty,
			IPv4BlockPrefix: risk.DefaultIPv4Block,
			IPv6BlockPrefix: risk.DefaultIPv6Block,
			MassPrior:       risk.DefaultMassPrior,
			TargetedShare:   risk.DefaultTargetedShare,
			ReportedFactor:  risk.DefaultReportedFactor,
			IPListsPoll:     5 * time.Second,
		},
		Limits: Limits{
			SMSPerUserHour:          10,
			SMSPerNumberHour:        5,
			SMSPerCountryHour:       1000,
			ChallengesPerIPHour:     50,
			SMSPerTenantHour:        5000,
			EmailPerUserHour:        10,
			EmailPerAddressHour:     5,
			AuthFailuresPerIPMinute: 20,
			// Okta's default factor lockout is 10 wrong codes.
			WrongCodesPerUserHour: 10,
		},
		Audit: Audit{MaxEvents: 100000},
	}
}

// Embedded reports whether stepupd runs on its in-process store, that is
// neither redis.url nor redis.cluster_addrs is set.
func (c Config) Embedded() bool {
	return c.Redis.URL == "" && len(c.Redis.ClusterAddrs) == 0
}

// LogValue implements [slog.LogValuer]: every key with its value, secrets
// replaced by "[redacted]" and the password of redis.url masked, so the
// effective configuration can be logged at start.
func (c Config) LogValue() slog.Value {
	fields, err := fieldsOf(reflect.TypeFor[Config]())
	if err != nil {
		return slog.StringValue("config: " + err.Error())
	}
	v := reflect.ValueOf(c)
	attrs := make([]slog.Attr, 0, len(fields.list))
	for _, f := range fields.list {
		val := v.FieldByIndex(f.index).Interface()
		switch s, _ := val.(string); {
		case f.redact == "true" && s != "":
			val = "[redacted]"
		case f.redact == "url" && s != "":
			if u, err := url.Parse(s); err == nil {
				val = u.Redacted()
			} else {
				val = "[redacted]"
			}
		}
		attrs = append(attrs, slog.Any(f.key, val))
	}
	return slog.GroupValue(attrs...)
}

// SMSDriver returns the SMS driver in use: sms.driver, or "console" when it
// is empty (allowed with the embedded store only).
func (c Config) SMSDriver() string { return orConsole(c.SMS.Driver) }

// MailDriver returns the mail driver in use: mail.driver, or "console" when
// it is empty (allowed with the embedded store only).
func (c Config) MailDriver() string { return orConsole(c.Mail.Driver) }

func orConsole(driver string) string {
	if driver == "" {
		return "console"
	}
	return driver
}
