package notify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/message"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var (
	testNow = time.Date(2026, 1, 14, 9, 30, 0, 0, time.UTC)

	testRecipient = Recipient{
		Email:    "alice@example.com",
		Name:     "Alice Example",
		Locale:   "en-AU",
		TimeZone: "Australia/Sydney",
	}
	testSender    = Sender{Name: "Acme", Address: "no-reply@acme.example"}
	testManagers  = []string{"it@acme.example", "security@acme.example"}
	testReportURL = "https://2fa.acme.example/v1/report/ev_01?sig=k3Jx9"
)

func newTestRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer(Options{PublicURL: "https://2fa.acme.example/", Clock: fixedClock(testNow)})
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

// testEvent is a realistic event of type t, as the engine would send it.
func testEvent(t message.EventType) Event {
	ev := Event{
		ID: "ev_01", Tenant: "t_acme", User: "u-42", Type: t,
		At:    testNow.Add(-2 * time.Minute),
		Actor: message.ActorUser,
		IP:    "203.0.113.9", Country: "AU", Browser: "Firefox", OS: "Windows",
		Details: map[string]string{},
	}
	d := ev.Details
	switch t {
	case message.EvSMSEnrolled:
		d["channel"], d["phone"] = "sms", "+61 ••••• ••156"
	case message.EvTOTPEnabled, message.EvTOTPReset:
		d["channel"] = "totp"
	case message.EvEmailEnabled:
		d["channel"], d["email"] = "email", "a••••@example.com"
	case message.EvDisabled:
		d["channel"] = "sms"
	case message.EvPhoneChanged:
		d["old_phone"], d["new_phone"] = "+61 ••••• ••156", "+61 ••••• ••789"
	case message.EvEmailChanged:
		d["old_email"], d["new_email"], d["confirmed"] = "a••••@example.com", "a••••@example.org", "factor"
	case message.EvBackupRegen:
		d["count"] = "10"
	case message.EvBackupUsed:
		d["remaining"] = "2"
	case message.EvDevicesForgotten:
		d["reason"], d["count"] = string(message.ReasonPasswordChanged), "3"
	case message.EvAdminReset:
		ev.Actor = message.ActorManager
		d["reason"], d["by"] = "Lost phone, identity checked in ticket #4411", "helpdesk key"
	case message.EvModeOff:
		ev.Actor, ev.User = message.ActorManager, ""
		d["reason"], d["count"], d["by"] = "Moving to SSO", "154", "ops key"
	case message.EvLoginDenied:
		ev.Actor = message.ActorSystem
		ev.IP, ev.Country, ev.Browser, ev.OS = "198.51.100.23", "BR", "Chrome", "Linux"
		d["reason"] = "a sign-in from a network on the block list"
	case message.EvPolicyChanged:
		ev.Actor, ev.User = message.ActorManager, ""
		d["by"] = "ops key"
		d["before"] = `{"mode":"optional","challenge":"risk_based","grace_logins":5,"thresholds":{"challenge":40,"deny":90},"sms_countries":[],"manager_emails":["it@acme.example"]}`
		d["after"] = `{"mode":"required","challenge":"risk_based","grace_logins":3,"thresholds":{"challenge":35,"deny":90},"sms_countries":["AU","NZ"],"manager_emails":["it@acme.example"]}`
	case message.EvReport:
		d["reported_type"], d["reported_at"] = string(message.EvPhoneChanged), "2026-01-14T09:12:00Z"
	case message.EvAlertSMSLimit:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["limit"], d["count"], d["max"], d["window"] = "per_prefix_hourly", "100", "100", "1 hour"
		d["country"], d["prefix"] = "LV", "+371 2"
	case message.EvAlertEmailLimit:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["limit"] = "address"
	case message.EvAlertAttemptLimit:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["limit"], d["max"], d["window"] = "wrong_codes_per_user", "10", "the last hour"
	case message.EvAlertKillSwitch:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["reason"], d["until"] = "SMS spend passed the daily cap", "2026-01-14 12:00 UTC"
	case message.EvAlertDeliveryFailing:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["channel"], d["provider"], d["failures"], d["window"] = "sms", "twilio", "37", "15 minutes"
		d["dead_letters"], d["last_error"] = "4", "21608: the number is unverified"
	case message.EvAlertLoginSpike:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["count"], d["window"], d["baseline"], d["country"] = "240", "1 hour", "9", "VN"
	case message.EvAlertLoginReported:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		d["user"], d["network"], d["country"], d["at"] = "jdoe", "198.51.100.x", "BR", "2026-01-13T22:41:00Z"
	case message.EvDailyDigest:
		ev.Actor, ev.User = message.ActorSystem, ""
		ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
		for k, v := range map[string]string{
			"date": "2026-01-13", "logins": "1834", "allowed": "1702", "challenged": "120", "denied": "12",
			"challenges_verified": "111", "challenges_failed": "9", "enrolled": "7", "disabled": "1",
			"reports": "0", "sms_sent": "97", "sms_failed": "2", "emails_sent": "31", "totp_used": "15",
			"would_challenge": "42", "would_deny": "3",
		} {
			d[k] = v
		}
	}
	return ev
}

// managerEvent is the event behind the managers' copy of a type that also
// goes to the user.
func managerEvent(t message.EventType) Event {
	ev := testEvent(t)
	if t == message.EvDisabled {
		ev.Actor, ev.User = message.ActorManager, ""
		ev.Details = map[string]string{"reason": "Pilot ended", "group": "staff", "count": "12", "by": "ops key"}
	}
	return ev
}

// goldenMail is one mail of the golden set.
type goldenMail struct {
	name string // file stem under testdata/golden
	mail func(*Renderer) (Mail, error)
}

func goldenMails() []goldenMail {
	var out []goldenMail
	for _, typ := range Types() {
		if UserFacing(typ) {
			out = append(out, goldenMail{string(typ), func(r *Renderer) (Mail, error) {
				return r.UserMail(testEvent(typ), testRecipient, testSender, testReportURL)
			}})
		}
		if ManagerFacing(typ) {
			out = append(out, goldenMail{templateName(typ, true), func(r *Renderer) (Mail, error) {
				return r.ManagerMail(managerEvent(typ), testManagers, testSender)
			}})
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	r := newTestRenderer(t)
	for _, g := range goldenMails() {
		t.Run(g.name, func(t *testing.T) {
			m, err := g.mail(r)
			if err != nil {
				t.Fatal(err)
			}
			text := "Subject: " + m.Subject + "\nFrom: " + m.FromName + " <" + m.FromAddress + ">\nTo: " +
				strings.Join(m.To, ", ") + "\n\n" + m.Text
			checkGolden(t, g.name+".txt", text)
			checkGolden(t, g.name+".html", m.HTML)
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s", path, got)
	}
}

// TestGoldenFilesComplete catches a golden file left behind by a renamed type.
func TestGoldenFilesComplete(t *testing.T) {
	want := map[string]bool{}
	for _, g := range goldenMails() {
		want[g.name+".txt"], want[g.name+".html"] = true, true
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("stray golden file %s", e.Name())
		}
	}
}
