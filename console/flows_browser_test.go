package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// fieldError waits for the error shown next to the control a visible
// <label> names, containing want (no double quote: XPath 1.0 has no
// escapes).
func fieldError(label, want string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[@id=//label[normalize-space(.)=%q]/@for]/following-sibling::p[@class="field-error" and contains(., %q)]`, label, want))
}

// value reads the current value of the control a visible <label> names.
func value(t *testing.T, ctx context.Context, label string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Value(field(label)))
	if err != nil {
		t.Fatalf("value of %q: %v", label, err)
	}
	return v
}

// enrolSMS gives user an SMS factor through the API.
func enrolSMS(t *testing.T, e *env, user, phone string) {
	t.Helper()
	seen := len(e.Twilio.Messages())
	st := e.Must(t, 201, "POST", "/v1/users/"+user+"/sms", e.appKey, map[string]any{"phone": phone})
	ch := st["challenge"].(map[string]any)
	e.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", e.appKey, map[string]any{"code": e.SMSCode(t, phone, seen)})
}

// The manager flows the README and SPEC promise beyond the first session
// (TestBrowserSession): every policy setting a person looks for by its
// label — networks, countries, monitor mode, every-login challenges, the
// hosted pages' return URLs and branding — with errors in words beside
// their fields and the typed values kept; a reset's reason as typed in
// its box; and turning 2FA off for everyone.
func TestBrowserManagerFlows(t *testing.T) {
	e := newEnv(t, nil)
	enrolSMS(t, e, "alice", "+61491570156")
	e.Must(t, 200, "PUT", "/v1/users/bob", e.appKey, map[string]any{"email": "bob@example.test"})
	enrolSMS(t, e, "bob", "+61491570157")
	ctx := chromium(t)

	step(t, ctx, "sign in",
		chromedp.Navigate(e.URL+"/console/signin"),
		chromedp.SendKeys(field("Manager key"), e.mgrKey),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(chromedp.Search(`//h1[.="Overview"]`)),
		chromedp.Click(link("Policy")),
		chromedp.WaitVisible(chromedp.Search(`//h1[.="Policy"]`)))

	bad := "10.0.0.0/8\n300.1.2.3/33"
	step(t, ctx, "a bad CIDR is named beside its field, the typed lines kept",
		chromedp.SetValue(field("Trusted networks"), bad),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(fieldError("Trusted networks", `300.1.2.3/33`)))
	if got := value(t, ctx, "Trusted networks"); got != bad {
		t.Fatalf("Trusted networks after the error: %q, want %q", got, bad)
	}
	step(t, ctx, "a bad country code is named beside its field",
		chromedp.SetValue(field("Trusted networks"), "10.0.0.0/8"),
		chromedp.SetValue(field("Blocked countries"), "KP, Russia"),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(fieldError("Blocked countries", `Russia`)))
	if got := value(t, ctx, "Blocked countries"); got != "KP, Russia" {
		t.Fatalf("Blocked countries after the error: %q", got)
	}
	step(t, ctx, "a return URL that is not http(s) is named beside its field",
		chromedp.SetValue(field("Blocked countries"), "KP"),
		chromedp.SetValue(field("Return URLs"), "javascript:alert(1)"),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(fieldError("Return URLs", "must be http or https")))
	step(t, ctx, "monitor mode, every login, networks, countries and the hosted pages' settings are saved",
		chromedp.SetValue(field("Return URLs"), "https://app.example/2fa/callback\nhttps://app.example/settings/done"),
		chromedp.SetValue(field("Logo URL"), "https://app.example/logo.png"),
		chromedp.SetValue(field("Accent colour"), "#1a73e8"),
		chromedp.SetValue(field("Enforcement"), "monitor"),
		chromedp.SetValue(field("Challenge"), "every_login"),
		chromedp.SetValue(field("Blocked networks"), "203.0.113.0/24"),
		chromedp.SetValue(field("SMS countries"), "AU, NZ"),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(text("Policy saved")))
	pol := e.Must(t, 200, "GET", "/v1/admin/policy", e.mgrKey, nil)
	for k, want := range map[string]string{"enforcement": "monitor", "challenge": "every_login", "logo_url": "https://app.example/logo.png",
		"accent_color": "#1a73e8", "return_urls": "[https://app.example/2fa/callback https://app.example/settings/done]",
		"trusted_networks": "[10.0.0.0/8]", "blocked_networks": "[203.0.113.0/24]", "blocked_countries": "[KP]", "sms_countries": "[AU NZ]"} {
		if got := fmt.Sprint(pol[k]); got != want {
			t.Errorf("policy %s = %s, want %s", k, got, want)
		}
	}
	if got := value(t, ctx, "Return URLs"); got != "https://app.example/2fa/callback\nhttps://app.example/settings/done" {
		t.Errorf("Return URLs shown after saving: %q", got)
	}

	step(t, ctx, "a reason typed on two lines resets the user",
		chromedp.Click(link("Users")),
		chromedp.SendKeys(field("User ID"), "alice"),
		chromedp.Click(button("Find")),
		chromedp.WaitVisible(chromedp.Search(`//h2[.="alice"]`)),
		chromedp.SetValue(field("Reason"), "lost her phone\ncalled the front desk"),
		chromedp.Click(button("Reset 2FA")),
		chromedp.WaitVisible(text("2FA was reset")))
	step(t, ctx, "a reason too long is refused in words, not as a missing one",
		chromedp.SetValue(field("Reason"), strings.Repeat("x", 501)),
		chromedp.Click(button("Reset 2FA")),
		chromedp.WaitVisible(fieldError("Reason", "at most 500")))

	step(t, ctx, "turning 2FA off for everyone needs a reason",
		chromedp.Click(link("Users")),
		chromedp.WaitVisible(chromedp.Search(`//h2[.="Turn 2FA off for everyone"]`)),
		chromedp.Click(button("Turn 2FA off for everyone")),
		chromedp.WaitVisible(fieldError("Reason for turning 2FA off", "Say why")))
	step(t, ctx, "an unknown group is named beside its field",
		chromedp.SetValue(field("Group"), "nurses"),
		chromedp.SetValue(field("Reason for turning 2FA off"), "SMS provider outage"),
		chromedp.Click(button("Turn 2FA off for everyone")),
		chromedp.WaitVisible(fieldError("Group", "no group of that name")))
	if got := value(t, ctx, "Reason for turning 2FA off"); got != "SMS provider outage" {
		t.Fatalf("the reason after the error: %q", got)
	}
	step(t, ctx, "turn 2FA off for everyone",
		chromedp.Clear(field("Group")),
		chromedp.Click(button("Turn 2FA off for everyone")),
		chromedp.WaitVisible(text("2FA was turned off for 1 user.")))
	if u := e.Must(t, 200, "GET", "/v1/admin/users/bob", e.mgrKey, nil); u["enrolled"] != false {
		t.Fatalf("bob after turning 2FA off for everyone: %v", u)
	}
	step(t, ctx, "the audit log shows it with the reason",
		chromedp.Click(link("Audit log")),
		chromedp.WaitVisible(chromedp.Search(`//tr[td[.="2FA turned off"]]//dd[.="SMS provider outage"]`)))
}
