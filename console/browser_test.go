package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console in a real browser: Debian's chromium, headless, driven by
// what a person sees — labels, button and link text, page text.

// chromium starts a headless chromium for the test; without one the test
// fails with the advice to run `make test`, which installs it.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (%v); run `make test`, which installs it (apt-get install -y chromium)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// field finds the control a visible <label> names.
func field(label string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[@id=//label[normalize-space(.)=%q]/@for]`, label))
}

func button(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space(.)=%q]`, text))
}

func link(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//nav//a[normalize-space(.)=%q]`, text))
}

// text waits for an element with exactly this text.
func text(s string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[normalize-space(.)=%q]`, s))
}

// step runs actions with a bound on how long they may take.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
}

// screenshot writes docs/console/<name>.png when STEPUP_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("STEPUP_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "console", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A manager's whole session, as the newcomer of the README does it.
func TestBrowserSession(t *testing.T) {
	e := newEnv(t, nil)
	seedLogins(t, e)
	ctx := chromium(t)

	step(t, ctx, "a page without a session goes to sign in",
		chromedp.Navigate(e.URL+"/console/policy"),
		chromedp.WaitVisible(field("Manager key")))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/console/signin") {
		t.Fatalf("at %s, want the sign-in page", loc)
	}
	screenshot(t, ctx, "signin")

	step(t, ctx, "an app key is refused",
		chromedp.SendKeys(field("Manager key"), e.appKey),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(text("Only a manager key can sign in here; app and operator keys cannot.")))

	step(t, ctx, "sign in",
		chromedp.SendKeys(field("Manager key"), e.mgrKey),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(chromedp.Search(`//h1[.="Overview"]`)),
		chromedp.WaitVisible(text("Logins per day by decision")))
	screenshot(t, ctx, "overview")

	step(t, ctx, "a validation error is shown next to its field",
		chromedp.Click(link("Policy")),
		chromedp.WaitVisible(field("Mode")),
		chromedp.SetValue(field("Challenge threshold"), "95"),
		chromedp.SetValue(field("Deny threshold"), "90"),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id=//label[.="Challenge threshold"]/@for]/following-sibling::p[@class="field-error" and contains(., "must be below thresholds.deny")]`)))
	screenshot(t, ctx, "policy-error")

	step(t, ctx, "set the policy to Required with 3 grace logins",
		chromedp.SetValue(field("Challenge threshold"), "40"),
		chromedp.SetValue(field("Mode"), "required"),
		chromedp.SetValue(field("Grace logins"), "3"),
		chromedp.SetValue(field("Manager e-mails"), "office@clinic.example"),
		chromedp.Click(button("Save")),
		chromedp.WaitVisible(text("Policy saved")))
	screenshot(t, ctx, "policy")
	pol := e.Must(t, 200, "GET", "/v1/admin/policy", e.mgrKey, nil)
	if pol["mode"] != "required" || pol["grace_logins"] != float64(3) {
		t.Fatalf("policy after saving: mode %v, grace %v", pol["mode"], pol["grace_logins"])
	}

	step(t, ctx, "find a user",
		chromedp.Click(link("Users")),
		chromedp.SendKeys(field("User ID"), "user0"),
		chromedp.Click(button("Find")),
		chromedp.WaitVisible(chromedp.Search(`//h2[.="user0"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h2[.="Recent logins"]/following-sibling::table//td[.="allow" or .="challenge"]`)))

	step(t, ctx, "reset the user's 2FA",
		chromedp.SendKeys(field("Reason"), "lost her phone, called the front desk"),
		chromedp.Click(button("Reset 2FA")),
		chromedp.WaitVisible(text("2FA was reset")))
	screenshot(t, ctx, "users")

	step(t, ctx, "read the audit log",
		chromedp.Click(link("Audit log")),
		chromedp.WaitVisible(chromedp.Search(`//td[.="2FA reset by a manager"]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "manager (mgr)")]`)))

	step(t, ctx, "the live tail adds a new event",
		chromedp.Click(field("Live tail: add new events as they happen")),
		chromedp.WaitVisible(text("Watching for new events")))
	e.clock.Add(time.Second) // the test clock stands still otherwise
	e.Must(t, 200, "POST", "/v1/admin/users/alice/reset", e.mgrKey, map[string]any{"reason": "second reset from the API"})
	step(t, ctx, "the new event arrives",
		chromedp.WaitVisible(chromedp.Search(`//tr[contains(@class, "new")]//dd[.="second reset from the API"]`)))
	screenshot(t, ctx, "audit")

	step(t, ctx, "operations",
		chromedp.Click(link("Operations")),
		chromedp.WaitVisible(text("SMS is on.")),
		chromedp.Click(button("Turn SMS off")),
		chromedp.WaitVisible(text("SMS switched off: no text messages are sent.")))
	screenshot(t, ctx, "operations")

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('form[action="/console/operations/sms"] input[name=csrf]').remove(), true`)); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "a form without the CSRF token is refused",
		chromedp.Click(button("Turn SMS on")),
		chromedp.WaitVisible(text("This form did not come from your console session. Reload the page and try again.")))
	if pol := e.Must(t, 200, "GET", "/v1/admin/policy", e.mgrKey, nil); pol["sms_disabled"] != true {
		t.Fatal("a form without its CSRF token changed the policy")
	}

	step(t, ctx, "sign out",
		chromedp.Navigate(e.URL+"/console/overview"),
		chromedp.Click(button("Sign out")),
		chromedp.WaitVisible(field("Manager key")),
		chromedp.Navigate(e.URL+"/console/users"),
		chromedp.WaitVisible(field("Manager key")))
}

// seedLogins evaluates logins over the ten days before now, so the
// overview has something to draw.
func seedLogins(t *testing.T, e *env) {
	t.Helper()
	// The audit log's stream ids are Redis's time: the clock must end
	// where it started.
	e.clock.Add(-10 * 24 * time.Hour)
	uas := []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"}
	for day := range 10 {
		for n := range 3 + day%4 {
			user := fmt.Sprintf("user%d", n)
			e.Must(t, 200, "POST", "/v1/logins/evaluate", e.appKey, map[string]any{"user_id": user,
				"ip": fmt.Sprintf("198.51.100.%d", 1+(day*n)%7), "user_agent": uas[(day+n)%2], "device_id": fmt.Sprintf("d%d", (day+n)%3)})
		}
		e.clock.Add(24 * time.Hour)
	}
}
