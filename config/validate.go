package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// FieldError is one problem found by [Config.Validate].
type FieldError struct {
	// Field is the YAML key, or the section (such as "redis") for a
	// problem spanning keys of it.
	Field string
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error returns "field: msg".
func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Minimum lengths of secrets. 32 bytes is what the key derivation in
// internal/seal expects of its input; the operator key guards every tenant.
const (
	minSecretLen = 32
	// MinOperatorKeyLen is the operator key length below which stepupd
	// warns at start (a short key is allowed: test setups use them).
	MinOperatorKeyLen = 32
)

var (
	// e164 is a phone number in E.164 form.
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// senderID is an alphanumeric sender ID or a short code.
	senderID = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
)

// Validate checks every field and returns all problems at once, joined with
// [errors.Join] so the message has one line per problem, each a
// [FieldError] starting with the YAML key. It returns nil for a usable
// configuration.
//
// Files the configuration names (GeoIP databases, TLS certificate and key,
// Redis CA bundle) must exist and be readable, so a typo fails at start
// rather than at the first request that needs them.
func (c Config) Validate() error {
	v := &validator{}
	c.validateTop(v)
	c.validateRedis(v)
	v.file("geoip.country_db", c.GeoIP.CountryDB)
	v.file("geoip.city_db", c.GeoIP.CityDB)
	v.file("geoip.asn_db", c.GeoIP.ASNDB)
	c.validateSMS(v)
	c.validateMail(v)
	c.validateTLS(v)
	c.validateNumbers(v)
	c.validateIPLists(v)
	return errors.Join(v.errs...)
}

// validator collects FieldErrors.
type validator struct {
	errs []error
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// intRange checks lo <= n <= hi.
func (v *validator) intRange(field string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(field, "must be between %d and %d, got %d", lo, hi, n)
	}
}

// duration checks lo <= d <= hi.
func (v *validator) duration(field string, d, lo, hi time.Duration) {
	switch {
	case d <= 0:
		v.add(field, "must be positive, got %s", d)
	case d < lo:
		v.add(field, "must be at least %s, got %s", lo, d)
	case d > hi:
		v.add(field, "must be at most %s, got %s", hi, d)
	}
}

// file checks that a configured path, if any, is a readable regular file.
func (v *validator) file(field, path string) bool {
	if path == "" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		v.add(field, "cannot read file: %v", err)
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		v.add(field, "%s is not a regular file", path)
		return false
	}
	return true
}

// httpURL checks an absolute http or https URL with a host.
func (v *validator) httpURL(field, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		v.add(field, "must be an absolute http(s) URL: %s", urlParseError(raw, err))
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(field, "must be an absolute http(s) URL, got %q", u.Redacted())
	}
}

// urlParseError says why url.Parse refused raw without quoting a
// password: url.Error repeats the whole URL, and its cause quotes the part
// it stumbled on, which for a password holding '#', '/' or '?' (ending the
// user info early) is the password's start, taken for a port.
func urlParseError(raw string, err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	msg := err.Error()
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return msg // no user info
	}
	// A quoted part seen only after the user info (a bad port of the
	// host) is safe to show.
	if i, j := strings.IndexByte(msg, '"'), strings.LastIndexByte(msg, '"'); i < j {
		q := msg[i+1 : j]
		if q != "" && !strings.Contains(raw[:at], q) && strings.Contains(raw[at:], q) {
			return msg
		}
		return "the user name or password may hold a character that must be percent-encoded (: / ? # @ % and spaces)"
	}
	return msg
}

// hostPort checks host:port with a numeric port; the host may be empty
// (all interfaces) only when allowEmptyHost.
func hostPort(addr string, allowEmptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	if host == "" && !allowEmptyHost {
		return fmt.Errorf("must be host:port with a host, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

func (c Config) validateTop(v *validator) {
	if err := hostPort(c.Listen, true); err != nil {
		v.add("listen", "%v", err)
	}
	switch {
	case c.Secret == "" && !c.Embedded():
		v.add("secret", "required when redis.url or redis.cluster_addrs is set; must be at least %d bytes", minSecretLen)
	case c.Secret != "" && len(c.Secret) < minSecretLen:
		v.add("secret", "must be at least %d bytes, got %d", minSecretLen, len(c.Secret))
	}
	if c.OperatorKey != "" {
		if strings.ContainsFunc(c.OperatorKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			v.add("operator_key", "must not contain spaces or control characters")
		}
	}
	if c.PublicURL != "" {
		v.httpURL("public_url", c.PublicURL)
	}
	if c.Tracing.Endpoint != "" {
		v.httpURL("tracing.endpoint", c.Tracing.Endpoint)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err == nil {
			continue
		}
		v.add("trusted_proxies", "%q is not an IP address or CIDR", p)
	}
}

func (c Config) validateRedis(v *validator) {
	r := c.Redis
	if r.URL != "" && len(r.ClusterAddrs) > 0 {
		v.add("redis", "url and cluster_addrs are exclusive")
	}
	tlsInUse := false
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		switch {
		case err != nil:
			v.add("redis.url", "cannot parse: %s", urlParseError(r.URL, err))
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add("redis.url", "scheme must be redis or rediss")
		case u.Host == "":
			v.add("redis.url", "must name a host, as in redis://host:6379/0")
		default:
			if _, err := redis.ParseURL(r.URL); err != nil {
				v.add("redis.url", "%v", err)
			}
			tlsInUse = u.Scheme == "rediss"
			if r.Username != "" && u.User != nil && u.User.Username() != "" {
				v.add("redis.username", "also set in redis.url; set it in one place")
			}
			if _, has := u.User.Password(); r.Password != "" && has {
				v.add("redis.password", "also set in redis.url; set it in one place")
			}
		}
		if r.TLS {
			v.add("redis.tls", "applies to redis.cluster_addrs only; use a rediss:// redis.url for TLS to a single node")
		}
	}
	for _, a := range r.ClusterAddrs {
		if err := hostPort(a, false); err != nil {
			v.add("redis.cluster_addrs", "%v", err)
		}
	}
	if len(r.ClusterAddrs) > 0 && r.TLS {
		tlsInUse = true
	}

	if c.Embedded() {
		// Settings that would be ignored: most likely redis.url was
		// forgotten, and the data would silently live in memory.
		const msg = "set but neither redis.url nor redis.cluster_addrs is (stepupd would use its in-memory store)"
		if r.Username != "" {
			v.add("redis.username", msg)
		}
		if r.Password != "" {
			v.add("redis.password", msg)
		}
		if r.TLS {
			v.add("redis.tls", msg)
		}
	}
	if !tlsInUse {
		const msg = "requires TLS: a rediss:// redis.url, or redis.tls with redis.cluster_addrs"
		if r.TLSCAFile != "" {
			v.add("redis.tls_ca_file", msg)
		}
		if r.TLSInsecureSkipVerify {
			v.add("redis.tls_insecure_skip_verify", msg)
		}
	}
	if v.file("redis.tls_ca_file", r.TLSCAFile) {
		if pem, err := os.ReadFile(r.TLSCAFile); err != nil {
			v.add("redis.tls_ca_file", "cannot read file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.add("redis.tls_ca_file", "contains no PEM certificate")
		}
	}
}

func (c Config) validateSMS(v *validator) {
	t := c.SMS.Twilio
	switch c.SMS.Driver {
	case "":
		if !c.Embedded() {
			v.add("sms.driver", "required when redis.url or redis.cluster_addrs is set: twilio, or console to print codes to the log")
		}
	case "console":
	case "twilio":
		if t.AccountSID == "" {
			v.add("sms.twilio.account_sid", "required when sms.driver is twilio")
		}
		if t.AuthToken == "" {
			v.add("sms.twilio.auth_token", "required when sms.driver is twilio")
		}
		if t.From == "" && t.MessagingServiceSID == "" {
			v.add("sms.twilio.from", "required when sms.driver is twilio, unless sms.twilio.messaging_service_sid is set")
		}
		if t.APIBaseURL == "" {
			v.add("sms.twilio.api_base_url", "required when sms.driver is twilio")
		}
	default:
		v.add("sms.driver", "must be twilio or console, got %q", c.SMS.Driver)
	}
	if t.From != "" && !e164.MatchString(t.From) && !senderID.MatchString(t.From) {
		v.add("sms.twilio.from", "must be an E.164 number (+14155550100), a short code or an alphanumeric sender ID of at most 11 characters, got %q", t.From)
	}
	if t.APIBaseURL != "" {
		v.httpURL("sms.twilio.api_base_url", t.APIBaseURL)
	}
	if t.StatusCallbackURL != "" {
		v.httpURL("sms.twilio.status_callback_url", t.StatusCallbackURL)
	}
}

// Warnings lists settings that are valid but unusual enough to say so at
// start: a short operator key, trusted proxies that are every address, an
// SMTP login without TLS over the network, Twilio identifiers of an
// unfamiliar shape (a Twilio-compatible test server may use any).
func (c Config) Warnings() []string {
	var w []string
	if n := len(c.OperatorKey); n > 0 && n < MinOperatorKeyLen {
		w = append(w, fmt.Sprintf("operator_key: %d bytes; use at least %d random bytes in production", n, MinOperatorKeyLen))
	}
	for _, p := range c.TrustedProxies {
		if pfx, err := netip.ParsePrefix(p); err == nil && pfx.Bits() == 0 {
			w = append(w, fmt.Sprintf("trusted_proxies: %q trusts every address: any client can set X-Forwarded-For and escape the failed-key throttle", p))
		}
	}
	if m := c.Mail.SMTP; m.TLS == "none" && m.Username != "" && !isLoopback(m.Host) {
		w = append(w, "mail.smtp.tls: none with mail.smtp.username: the login crosses the network unencrypted "+
			"(challenge-response only; a server offering only PLAIN or LOGIN will refuse every mail)")
	}
	t := c.SMS.Twilio
	if t.AccountSID != "" && !strings.HasPrefix(t.AccountSID, "AC") {
		w = append(w, "sms.twilio.account_sid: Twilio account SIDs start with AC")
	}
	if t.MessagingServiceSID != "" && !strings.HasPrefix(t.MessagingServiceSID, "MG") {
		w = append(w, "sms.twilio.messaging_service_sid: Twilio messaging service SIDs start with MG")
	}
	return w
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c Config) validateMail(v *validator) {
	m := c.Mail
	switch m.Driver {
	case "":
		if !c.Embedded() {
			v.add("mail.driver", "required when redis.url or redis.cluster_addrs is set: smtp, or console to print mails to the log")
		}
	case "console":
	case "smtp":
		if m.SMTP.Host == "" {
			v.add("mail.smtp.host", "required when mail.driver is smtp")
		}
		if m.From == "" {
			v.add("mail.from", "required when mail.driver is smtp")
		}
	default:
		v.add("mail.driver", "must be smtp or console, got %q", m.Driver)
	}
	if m.From != "" {
		if _, err := mail.ParseAddress(m.From); err != nil {
			v.add("mail.from", "must be an e-mail address such as \"Example <2fa@example.com>\": %v", err)
		}
	}
	if h := m.SMTP.Host; h != "" && strings.Contains(h, ":") && net.ParseIP(h) == nil {
		v.add("mail.smtp.host", "must be a host name without port; set mail.smtp.port")
	}
	v.intRange("mail.smtp.port", m.SMTP.Port, 1, 65535)
	switch m.SMTP.TLS {
	case "starttls", "tls", "none":
	default:
		v.add("mail.smtp.tls", "must be starttls, tls or none, got %q", m.SMTP.TLS)
	}
	if m.SMTP.Password != "" && m.SMTP.Username == "" {
		v.add("mail.smtp.username", "required when mail.smtp.password is set")
	}
}

func (c Config) validateTLS(v *validator) {
	cert, key := c.TLS.CertFile, c.TLS.KeyFile
	switch {
	case cert != "" && key == "":
		v.add("tls.key_file", "required when tls.cert_file is set")
	case cert == "" && key != "":
		v.add("tls.cert_file", "required when tls.key_file is set")
	}
	certOK := v.file("tls.cert_file", cert)
	keyOK := v.file("tls.key_file", key)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			v.add("tls", "cert_file and key_file are not a valid key pair: %v", err)
		}
	}
}

func (c Config) validateNumbers(v *validator) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}

	d := c.Delivery
	v.intRange("delivery.workers", d.Workers, 1, 256)
	v.intRange("delivery.max_attempts", d.MaxAttempts, 1, 100)
	v.duration("delivery.backoff_base", d.BackoffBase, time.Millisecond, time.Hour)
	v.duration("delivery.backoff_max", d.BackoffMax, time.Millisecond, 24*time.Hour)
	if d.BackoffBase > 0 && d.BackoffMax > 0 && d.BackoffMax < d.BackoffBase {
		v.add("delivery.backoff_max", "must not be less than delivery.backoff_base (%s)", d.BackoffBase)
	}
	// A shorter idle time would let a second worker take over a job whose
	// first worker is merely slow, and send the message twice.
	v.duration("delivery.claim_idle", d.ClaimIdle, time.Second, time.Hour)

	k := c.Codes
	v.intRange("codes.length", k.Length, 4, 10)
	v.duration("codes.ttl", k.TTL, 10*time.Second, 24*time.Hour)
	v.intRange("codes.max_attempts", k.MaxAttempts, 1, 100)
	v.intRange("codes.max_sends", k.MaxSends, 1, 100)
	v.duration("codes.resend_cooldown", k.ResendCooldown, time.Second, time.Hour)
	if k.ResendCooldown > 0 && k.TTL > 0 && k.ResendCooldown >= k.TTL {
		v.add("codes.resend_cooldown", "must be less than codes.ttl (%s)", k.TTL)
	}

	r := c.Risk
	v.intRange("risk.history_size", r.HistorySize, 1, 1000)
	v.intRange("risk.history_days", r.HistoryDays, 1, 3650)
	v.intRange("risk.feedback_days", r.FeedbackDays, 1, 90)
	v.duration("risk.report_half_life", r.ReportHalfLife, time.Hour, 90*24*time.Hour)
	v.intRange("risk.ipv4_prefix", r.IPv4Prefix, 8, 32)
	v.intRange("risk.ipv6_prefix", r.IPv6Prefix, 16, 128)
	if p := r.UnseenPenalty; math.IsNaN(p) || p < 1 || p > 100 {
		v.add("risk.unseen_penalty", "must be a factor between 1 and 100, got %g", p)
	}
	v.intRange("risk.ipv4_block_prefix", r.IPv4BlockPrefix, 8, 32)
	v.intRange("risk.ipv6_block_prefix", r.IPv6BlockPrefix, 16, 128)
	if r.IPv4BlockPrefix >= r.IPv4Prefix && r.IPv4Prefix > 0 {
		v.add("risk.ipv4_block_prefix", "must be shorter than risk.ipv4_prefix (%d), got %d", r.IPv4Prefix, r.IPv4BlockPrefix)
	}
	if r.IPv6BlockPrefix >= r.IPv6Prefix && r.IPv6Prefix > 0 {
		v.add("risk.ipv6_block_prefix", "must be shorter than risk.ipv6_prefix (%d), got %d", r.IPv6Prefix, r.IPv6BlockPrefix)
	}
	if m := r.MassPrior; math.IsNaN(m) || m < 0.1 || m > 1000 {
		v.add("risk.mass_prior", "must be a number of logins between 0.1 and 1000, got %g", m)
	}
	if ts := r.TargetedShare; math.IsNaN(ts) || ts <= 0 || ts > 1 {
		v.add("risk.targeted_share", "must be a share above 0 and at most 1, got %g", ts)
	}
	if f := r.ReportedFactor; math.IsNaN(f) || f < 1 || f > 10000 {
		v.add("risk.reported_factor", "must be a factor between 1 and 10000, got %g", f)
	}

	const maxLimit = 10_000_000
	l := c.Limits
	v.intRange("limits.sms_per_user_hour", l.SMSPerUserHour, 1, maxLimit)
	v.intRange("limits.sms_per_number_hour", l.SMSPerNumberHour, 1, maxLimit)
	v.intRange("limits.sms_per_country_hour", l.SMSPerCountryHour, 1, maxLimit)
	v.intRange("limits.challenges_per_ip_hour", l.ChallengesPerIPHour, 1, maxLimit)
	v.intRange("limits.sms_per_tenant_hour", l.SMSPerTenantHour, 1, maxLimit)
	v.intRange("limits.email_per_user_hour", l.EmailPerUserHour, 1, maxLimit)
	v.intRange("limits.email_per_address_hour", l.EmailPerAddressHour, 1, maxLimit)
	// A budget below a challenge's own attempts would lock users out of
	// one mistyped login; above 1000 it guards nothing.
	v.intRange("limits.wrong_codes_per_user_hour", l.WrongCodesPerUserHour, 3, 1000)
	v.intRange("limits.auth_failures_per_ip_minute", l.AuthFailuresPerIPMinute, 1, maxLimit)

	v.intRange("audit.max_events", c.Audit.MaxEvents, 100, 1_000_000_000)
}

// listName is an IP list's name: it is shown as the ip_list signal's
// detail, so short and plain.
var listName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validateIPLists checks risk.ip_lists; the files' contents are read (and
// their bad lines reported) when stepupd starts.
func (c Config) validateIPLists(v *validator) {
	seen := make(map[string]bool)
	for i, l := range c.Risk.IPLists {
		f := fmt.Sprintf("risk.ip_lists[%d]", i)
		switch {
		case l.Name == "":
			v.add(f+".name", "required")
		case !listName.MatchString(l.Name):
			v.add(f+".name", "must be 1-64 letters, digits, '.', '_' or '-', got %q", l.Name)
		case seen[l.Name]:
			v.add(f+".name", "%q names two lists", l.Name)
		}
		seen[l.Name] = true
		if l.File == "" {
			v.add(f+".file", "required")
		}
		v.file(f+".file", l.File)
		switch l.Action {
		case "score":
			if l.Factor != 0 && !(l.Factor >= 1 && l.Factor <= 1000) {
				v.add(f+".factor", "must be a factor between 1 and 1000, got %g", l.Factor)
			}
		case "challenge", "deny":
			if l.Factor != 0 {
				v.add(f+".factor", "only a list with action score has a factor")
			}
		default:
			v.add(f+".action", "must be score, challenge or deny, got %q", l.Action)
		}
	}
	v.duration("risk.ip_lists_poll", c.Risk.IPListsPoll, time.Second, time.Hour)
}
