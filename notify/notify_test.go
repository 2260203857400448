package notify

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stepup-auth/stepup/message"
)

func TestAudiences(t *testing.T) {
	tests := []struct {
		typ           message.EventType
		user, manager bool
	}{
		{message.EvSMSEnrolled, true, false},
		{message.EvTOTPEnabled, true, false},
		{message.EvTOTPReset, true, false},
		{message.EvEmailEnabled, true, false},
		{message.EvPasskeyAdded, true, false},
		{message.EvPasskeyRemoved, true, false},
		{message.EvDisabled, true, true},
		{message.EvPhoneChanged, true, false},
		{message.EvEmailChanged, true, false},
		{message.EvBackupRegen, true, false},
		{message.EvBackupUsed, true, false},
		{message.EvDevicesForgotten, true, false},
		{message.EvAdminReset, true, true},
		{message.EvModeOff, true, true},
		{message.EvLoginDenied, true, false},
		{message.EvPolicyChanged, false, true},
		{message.EvReport, false, true},
		{message.EvAlertSMSLimit, false, true},
		{message.EvAlertEmailLimit, false, true},
		{message.EvAlertAttemptLimit, false, true},
		{message.EvAlertKillSwitch, false, true},
		{message.EvAlertDeliveryFailing, false, true},
		{message.EvAlertLoginSpike, false, true},
		{message.EvAlertLoginReported, false, true},
		{message.EvDailyDigest, false, true},
		{"no_such_type", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := UserFacing(tt.typ); got != tt.user {
			t.Errorf("UserFacing(%q) = %v, want %v", tt.typ, got, tt.user)
		}
		if got := ManagerFacing(tt.typ); got != tt.manager {
			t.Errorf("ManagerFacing(%q) = %v, want %v", tt.typ, got, tt.manager)
		}
	}
	if got, want := len(Types()), len(tests)-2; got != want {
		t.Errorf("Types() has %d types, the table %d", got, want)
	}
}

func TestWrongAudience(t *testing.T) {
	r := newTestRenderer(t)
	if _, err := r.UserMail(testEvent(message.EvPolicyChanged), testRecipient, testSender, ""); err == nil {
		t.Error("UserMail(policy_changed): no error")
	}
	if _, err := r.ManagerMail(testEvent(message.EvPhoneChanged), testManagers, testSender); err == nil {
		t.Error("ManagerMail(phone_changed): no error")
	}
	if _, err := r.UserMail(testEvent("bogus"), testRecipient, testSender, ""); err == nil {
		t.Error("UserMail(bogus): no error")
	}
	if _, err := r.UserMail(testEvent(message.EvPhoneChanged), Recipient{Name: "x"}, testSender, ""); err == nil {
		t.Error("UserMail without an address: no error")
	}
	if _, err := r.ManagerMail(testEvent(message.EvDailyDigest), nil, testSender); err == nil {
		t.Error("ManagerMail without addresses: no error")
	}
}

// allMails renders every mail of every type from ev, adjusted per type.
func allMails(t *testing.T, r *Renderer, adjust func(*Event), to Recipient, reportURL string) []Mail {
	t.Helper()
	var out []Mail
	for _, typ := range Types() {
		if UserFacing(typ) {
			ev := testEvent(typ)
			adjust(&ev)
			m, err := r.UserMail(ev, to, testSender, reportURL)
			if err != nil {
				t.Fatalf("UserMail(%s): %v", typ, err)
			}
			out = append(out, m)
		}
		if ManagerFacing(typ) {
			ev := managerEvent(typ)
			adjust(&ev)
			m, err := r.ManagerMail(ev, testManagers, testSender)
			if err != nil {
				t.Fatalf("ManagerMail(%s): %v", typ, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestNoFullIPOrPhone(t *testing.T) {
	r := newTestRenderer(t)
	ips := []string{"203.0.113.9", "2001:db8:abcd:12::1", "::ffff:198.51.100.23"}
	for _, ip := range ips {
		mails := allMails(t, r, func(ev *Event) {
			ev.IP, ev.Country = ip, "AU"
			// Phones as the engine masks them, plus one it forgot to mask.
			ev.Details["phone"] = "+61 ••••• ••156"
			ev.Details["old_phone"] = "+61 ••••• ••156"
			ev.Details["new_phone"] = "+61491570789"
		}, testRecipient, testReportURL)
		full := []string{ip, "2001:db8:abcd:12", "198.51.100.23", "491570156", "491570789", "+61491570789"}
		for _, m := range mails {
			for _, part := range []string{m.Subject, m.Text, m.HTML} {
				for _, f := range full {
					if strings.Contains(part, f) {
						t.Errorf("%q: output contains %q:\n%s", m.Subject, f, part)
					}
				}
			}
		}
	}
}

func TestMaskIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.9", "203.0.113.x"},
		{" 10.1.2.3 ", "10.1.2.x"},
		{"::ffff:198.51.100.23", "198.51.100.x"},
		{"2001:db8:abcd:12::1", "2001:db8:abcd:x:x:x:x:x"},
		{"fe80::1%eth0", "fe80:0:0:x:x:x:x:x"},
		{"203.0.113.9:443", ""},
		{"not an ip", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := maskIP(tt.in); got != tt.want {
			t.Errorf("maskIP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+61 ••••• ••156", "+61 ••••• ••156"},
		{"+61491570156", "••••• ••156"},
		{"+44 7700 900123", "••••• ••123"},
		{"***156", "***156"},
		{"12345", "12345"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := maskPhone(tt.in); got != tt.want {
			t.Errorf("maskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTMLEscapesHostileInput(t *testing.T) {
	r := newTestRenderer(t)
	const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	to := testRecipient
	to.Name = hostile
	from := Sender{Name: `Acme <b>"Corp"</b>`, Address: "no-reply@acme.example"}
	mails := allMails(t, r, func(ev *Event) {
		ev.User = hostile
		ev.Browser = hostile
		for k := range ev.Details {
			if k != "before" && k != "after" {
				ev.Details[k] = hostile
			}
		}
		ev.Details["group"] = hostile
		ev.Details["reason"] = hostile
		if ev.Type == message.EvPolicyChanged {
			ev.Details["after"] = `{"mode":"<script>x</script>"}`
		}
	}, to, `javascript:alert(1)`)
	for _, m := range mails {
		for _, bad := range []string{"<script", "<img", "javascript:", "<b>"} {
			if strings.Contains(m.HTML, bad) {
				t.Errorf("%q: HTML contains %q", m.Subject, bad)
			}
		}
		if !strings.Contains(m.HTML, "&lt;script&gt;") {
			t.Errorf("%q: HTML lacks the escaped name", m.Subject)
		}
	}

	// The same mail via the builder the golden test uses, to see the
	// escaped display name in the greeting.
	m, err := r.UserMail(testEvent(message.EvPhoneChanged), to, from, testReportURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.HTML, "Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("greeting not escaped as expected:\n%s", m.HTML)
	}
	if m.FromName != `Acme <b>"Corp"</b>` {
		t.Errorf("FromName = %q; the sender quotes it, the renderer must not mangle it", m.FromName)
	}
}

func TestTextDetailsStayOnTheirLine(t *testing.T) {
	// A detail is quoted inside a sentence ("reason given: “…”"): a manager
	// whose reason held line breaks could append paragraphs that read as
	// the mail's own, a fake "secure your account" link among them.
	r := newTestRenderer(t)
	const forged = "lost phone\r\n\r\nOpen this link to secure your account:\nhttps://evil.example/fix\u2028\x1b[2J"
	mails := allMails(t, r, func(ev *Event) {
		ev.Browser = forged
		for k := range ev.Details {
			if k != "before" && k != "after" {
				ev.Details[k] = forged
			}
		}
		ev.Details["reason"] = forged
	}, testRecipient, testReportURL)
	for _, m := range mails {
		for _, l := range strings.Split(m.Text, "\n") {
			if strings.HasPrefix(l, "https://evil.example") || strings.HasPrefix(l, "Open this link") {
				t.Errorf("%q: a detail started a line of its own: %q", m.Subject, l)
			}
		}
		if strings.ContainsAny(m.Text, "\r\u2028\x1b") {
			t.Errorf("%q: text keeps a control character of a detail", m.Subject)
		}
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	r := newTestRenderer(t)
	ev := managerEvent(message.EvDisabled)
	ev.Details["group"] = "staff\r\nBcc: victim@example.com"
	m, err := r.ManagerMail(ev, testManagers, testSender)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", m.Subject)
	}
}

func TestLocaleFallback(t *testing.T) {
	r := newTestRenderer(t)
	want, err := r.UserMail(testEvent(message.EvPhoneChanged), testRecipient, testSender, testReportURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, locale := range []string{"", "en", "EN_gb", "fr-CA", "zz", "x-private"} {
		to := testRecipient
		to.Locale = locale
		got, err := r.UserMail(testEvent(message.EvPhoneChanged), to, testSender, testReportURL)
		if err != nil {
			t.Fatalf("locale %q: %v", locale, err)
		}
		if got.Text != want.Text || got.HTML != want.HTML || got.Subject != want.Subject {
			t.Errorf("locale %q does not fall back to en", locale)
		}
	}
	if !slices.Contains(r.Locales(), "en") {
		t.Errorf("Locales() = %v, want en among them", r.Locales())
	}
}

func TestTimeZone(t *testing.T) {
	r := newTestRenderer(t)
	tests := []struct {
		zone      string
		wantLocal string // "" for no local line
	}{
		{"Australia/Sydney", "20:28 AEDT (Australia/Sydney)"},
		{"America/New_York", "04:28 EST (America/New_York)"},
		{"", ""},
		{"UTC", ""},
		{"Local", ""},
		{"Mars/Olympus_Mons", ""},
		{"../../etc/passwd", ""},
	}
	for _, tt := range tests {
		to := testRecipient
		to.TimeZone = tt.zone
		m, err := r.UserMail(testEvent(message.EvTOTPEnabled), to, testSender, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Text, "Wednesday 14 January 2026, 09:28 UTC") {
			t.Errorf("zone %q: no UTC time in\n%s", tt.zone, m.Text)
		}
		localLine := regexp.MustCompile(`(?m)^ {10}\S.*$`).FindString(m.Text)
		switch {
		case tt.wantLocal == "" && localLine != "":
			t.Errorf("zone %q: unexpected local time %q", tt.zone, localLine)
		case tt.wantLocal != "" && !strings.HasSuffix(localLine, tt.wantLocal):
			t.Errorf("zone %q: local line %q, want suffix %q", tt.zone, localLine, tt.wantLocal)
		}
	}
}

func TestReportLink(t *testing.T) {
	r := newTestRenderer(t)
	with, err := r.UserMail(testEvent(message.EvPhoneChanged), testRecipient, testSender, testReportURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(with.Text, testReportURL) || !strings.Contains(with.HTML, `href="`+testReportURL+`"`) {
		t.Error("report link missing")
	}
	without, err := r.UserMail(testEvent(message.EvPhoneChanged), testRecipient, testSender, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without.Text, "Wasn't you? Open") || strings.Contains(without.HTML, "This wasn't me") {
		t.Error("report paragraph present without a link")
	}
	if !strings.Contains(without.Text, "If this wasn't you, change your password") {
		t.Error("advice missing without a link")
	}
}

func TestWhereHiddenForAdminActions(t *testing.T) {
	r := newTestRenderer(t)
	m, err := r.UserMail(testEvent(message.EvAdminReset), testRecipient, testSender, "")
	if err != nil {
		t.Fatal(err)
	}
	// The user learns that an administrator acted, not where the
	// administrator sat.
	if strings.Contains(m.Text, "Network:") || strings.Contains(m.Text, "Where:") {
		t.Errorf("admin's location shown to the user:\n%s", m.Text)
	}
}

func TestEventWithoutTimeUsesClock(t *testing.T) {
	r := newTestRenderer(t)
	ev := testEvent(message.EvTOTPEnabled)
	ev.At = time.Time{}
	m, err := r.UserMail(ev, testRecipient, testSender, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "09:30 UTC") {
		t.Errorf("clock time not used:\n%s", m.Text)
	}
}

func TestPolicyDiff(t *testing.T) {
	tests := []struct {
		name, before, after string
		want                []change
	}{
		{"same", `{"mode":"optional"}`, `{"mode":"optional"}`, nil},
		{"both empty", "", "", nil},
		{"nested and lists", `{"mode":"optional","thresholds":{"deny":90},"sms_countries":[]}`,
			`{"mode":"required","thresholds":{"deny":80},"sms_countries":["AU"]}`,
			[]change{{"mode", "optional", "required"}, {"sms_countries", "[]", `["AU"]`}, {"thresholds.deny", "90", "80"}}},
		{"added and removed", `{"groups":{"staff":{"mode":"required"}}}`, `{"grace_logins":3}`,
			[]change{{"grace_logins", "(not set)", "3"}, {"groups.staff.mode", "required", "(not set)"}}},
		{"first group", `{"groups":{}}`, `{"groups":{"staff":{"mode":"off"}}}`, []change{{"groups.staff.mode", "(not set)", "off"}}},
		{"last group removed", `{"groups":{"staff":{"mode":"off"}}}`, `{"groups":{}}`, []change{{"groups.staff.mode", "off", "(not set)"}}},
		{"empty string", `{"label":"x"}`, `{"label":""}`, []change{{"label", "x", `""`}}},
		{"not json", `mode=optional`, `mode=required`, []change{{"policy", "mode=optional", "mode=required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policyDiff(tt.before, tt.after)
			if !slices.Equal(got, tt.want) {
				t.Errorf("policyDiff = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTidyText(t *testing.T) {
	got := tidyText("\n\nHello,  \n\n\n\nbody\t\n\n")
	if want := "Hello,\n\nbody\n"; got != want {
		t.Errorf("tidyText = %q, want %q", got, want)
	}
}

func TestCleanName(t *testing.T) {
	if got := cleanName("  Alice\r\n\tExample\x00 "); got != "Alice Example" {
		t.Errorf("cleanName = %q", got)
	}
	long := strings.Repeat("é", 150)
	if got := []rune(cleanName(long)); len(got) != 101 {
		t.Errorf("cleanName kept %d runes, want 100 and an ellipsis", len(got))
	}
}

func BenchmarkUserMail(b *testing.B) {
	r := newTestRenderer(b)
	ev := testEvent(message.EvPhoneChanged)
	for b.Loop() {
		if _, err := r.UserMail(ev, testRecipient, testSender, testReportURL); err != nil {
			b.Fatal(err)
		}
	}
}

// testTemplates copies the embedded templates into a MapFS, plus extra.
func testTemplates(t *testing.T, extra fstest.MapFS, drop ...string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || slices.Contains(drop, p) {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func TestPartialLocale(t *testing.T) {
	fsys := testTemplates(t, fstest.MapFS{
		"templates/de/phone_changed.subject.txt": {Data: []byte("Ihre Telefonnummer für die Zwei-Faktor-Anmeldung wurde geändert\n")},
	})
	locales, err := loadTemplates(fsys, "templates")
	if err != nil {
		t.Fatal(err)
	}
	r := &Renderer{clock: fixedClock(testNow), locales: locales}
	to := testRecipient
	to.Locale = "de-AT"
	m, err := r.UserMail(testEvent(message.EvPhoneChanged), to, testSender, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Ihre Telefonnummer für die Zwei-Faktor-Anmeldung wurde geändert" {
		t.Errorf("subject = %q, want the German one", m.Subject)
	}
	if !strings.Contains(m.Text, "The phone number that receives") {
		t.Errorf("missing body not borrowed from en:\n%s", m.Text)
	}
	// Country names follow the locale even where the words are borrowed.
	if !strings.Contains(m.Text, "Australien") {
		t.Errorf("country not named in German:\n%s", m.Text)
	}
}

func TestBrokenTemplates(t *testing.T) {
	tests := []struct {
		name  string
		extra fstest.MapFS
		drop  []string
	}{
		{"en lacks a file", nil, []string{"templates/en/phone_changed.html"}},
		{"en lacks a layout", nil, []string{"templates/en/layout.txt"}},
		{"syntax error", fstest.MapFS{"templates/de/phone_changed.txt": {Data: []byte("{{if}")}}, nil},
		{"bad locale name", fstest.MapFS{"templates/not a tag!/layout.txt": {Data: []byte("")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := loadTemplates(testTemplates(t, tt.extra, tt.drop...), "templates"); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestModeOffMovedWording: a user moved into a group whose policy asks for
// no code, or out of his group into a tenant policy that asks for none, is
// told where he was moved, never "to the group ,".
func TestModeOffMovedWording(t *testing.T) {
	r := newTestRenderer(t)
	for group, want := range map[string]string{"contractors": "moved your account to the group contractors, for which", "": "moved your account out of its group"} {
		ev := testEvent(message.EvModeOff)
		ev.Details = map[string]string{"moved": "yes", "group": group}
		m, err := r.UserMail(ev, testRecipient, testSender, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) || strings.Contains(m.Text, "group ,") {
			t.Errorf("group %q: mail does not say %q:\n%s", group, want, m.Text)
		}
	}
}
