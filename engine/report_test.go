package engine_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// reportClock is a settable clock for a second engine.
type reportClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *reportClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *reportClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var reportLinkRE = regexp.MustCompile(`https://stepup\.example\.test/v1/report/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)`)

// TestReportLinkExpiresAfter7Days: the "this wasn't me" link of a mail
// works for 7 days and not after. The links are taken from real mails of
// a stepupd (apptest, embedded store); a second engine on the same store
// and secret, with a clock a week ahead, follows them. The engine's clock
// cannot be set through the API or the configuration.
func TestReportLinkExpiresAfter7Days(t *testing.T) {
	env := apptest.New(t, apptest.Options{})
	tenant, app, _ := env.Tenant(t, "acme")
	env.Must(t, 200, "PUT", "/v1/users/alice", app, map[string]any{"email": "alice@example.test"})
	start := time.Now()
	// A change of the address of a user without a factor: two mails (to
	// the old address and the new), two links.
	env.Must(t, 200, "PUT", "/v1/users/alice", app, map[string]any{"email": "alice@example.org"})
	msgs, err := env.SMTP.WaitFor(2, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, m := range msgs {
		l := reportLinkRE.FindStringSubmatch(m.Text)
		if l == nil {
			t.Fatalf("mail %q has no report link:\n%s", m.Subject, m.Text)
		}
		tokens = append(tokens, l[1])
	}
	if len(tokens) != 2 || tokens[0] == tokens[1] {
		t.Fatalf("report tokens %v, want two distinct", tokens)
	}

	clock := &reportClock{}
	later, err := engine.New(redisstore.New(env.App.Redis, redisstore.Options{}), engine.Options{
		Secret: []byte(apptest.Secret), PublicURL: "https://stepup.example.test", Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantInvalid := func(what string, err error) {
		t.Helper()
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Code != "report_link_invalid" || ee.Kind != engine.KindGone {
			t.Errorf("%s: %v, want report_link_invalid (410)", what, err)
		}
	}

	// A minute past the week: refused, and the refusal does not use the
	// link up (it still works at the real time).
	clock.Set(start.Add(7*24*time.Hour + time.Minute))
	wantInvalid("link 1 a week and a minute later", later.Policies.Report(ctx, tokens[0]))
	if r := env.Do(t, "POST", "/v1/report/"+tokens[0], "", nil); r.Status != 200 {
		t.Errorf("link 1 now, after the expired attempt: %d %s, want 200", r.Status, r.Raw)
	}

	// A minute before the week ends: it works, once.
	clock.Set(start.Add(7*24*time.Hour - time.Minute))
	if err := later.Policies.Report(ctx, tokens[1]); err != nil {
		t.Errorf("link 2 a minute before the week ends: %v", err)
	}
	wantInvalid("link 2 used again", later.Policies.Report(ctx, tokens[1]))
	clock.Set(start.Add(7*24*time.Hour + time.Minute))
	wantInvalid("link 2 after the week", later.Policies.Report(ctx, tokens[1]))

	evs, _, err := later.Policies.Events(ctx, tenant, engine.EventQuery{User: "alice", Type: "report_received"})
	if err != nil || len(evs) != 2 {
		t.Errorf("report_received events: %v %v, want 2", evs, err)
	}
}
