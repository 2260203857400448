package e2e_test

// Acceptance tests of the audit log (GET /v1/admin/events): every change is
// recorded with who made it and from where, a change that failed leaves no
// event, filters and paging work newest first, and a tenant only ever sees
// its own events. Helpers are in notify_test.go.

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// auditNewest checks that the newest event of the whole tenant is typ, for
// user: the change just made was recorded, and nothing after it.
func (e *ntfEnv) auditNewest(t *testing.T, user, typ string) map[string]any {
	t.Helper()
	evs, _ := e.events(t, "?limit=1")
	if len(evs) != 1 || evs[0]["type"] != typ || (user != "" && evs[0]["user_id"] != user) {
		t.Fatalf("newest audit event %v, want %s of user %q", evs, typ, user)
	}
	return evs[0]
}

// auditWhere checks who and where of an event.
func auditWhere(t *testing.T, ev map[string]any, actor, ip, country string) {
	t.Helper()
	if ev["actor"] != actor || ntfStr(ev, "ip") != ip || ntfStr(ev, "country") != country {
		t.Errorf("%v event: actor %v, ip %v, country %v; want %s, %q, %q", ev["type"], ev["actor"], ev["ip"], ev["country"], actor, ip, country)
	}
	if strings.Contains(ntfStr(ev, "ip"), ntfIP) || strings.Contains(ntfStr(ev, "ip"), ntfGBIP) {
		t.Errorf("%v event keeps the full IP: %v", ev["type"], ev["ip"])
	}
}

// auditNone checks that the user has no event of type typ.
func (e *ntfEnv) auditNone(t *testing.T, user, typ, why string) {
	t.Helper()
	if evs, _ := e.events(t, "?user_id="+user+"&type="+typ); len(evs) != 0 {
		t.Errorf("%s: the audit log has %d %s event(s) for %s: %v", why, len(evs), typ, user, evs)
	}
}

func TestAuditRecordsEveryChange(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	actor := map[string]any{"ip": ntfIP, "user_agent": ntfUA}

	codes := e.enrollSMS(t, "alice", ntfPhone1)
	ev := e.auditNewest(t, "alice", "sms_enrolled")
	auditWhere(t, ev, "user", ntfMaskedIP, "AU")
	if ev["tenant"] != e.Tenant || ev["browser"] == nil || ev["os"] == nil {
		t.Errorf("sms_enrolled event: %v", ev)
	}

	e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, actor)
	auditWhere(t, e.auditNewest(t, "alice", "backup_codes_regenerated"), "user", ntfMaskedIP, "AU")
	codes = ntfStrings(ntfObj(e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, actor), "result")["backup_codes"])

	lg := e.evaluate(t, "alice", ntfIP, "laptop", "")
	if lg["decision"] != "challenge" {
		t.Fatalf("first login: %v", lg)
	}
	e.Must(t, 200, "POST", "/v1/challenges/"+ntfStr(ntfObj(lg, "challenge"), "id")+"/verify", e.AppKey,
		map[string]any{"code": codes[0], "remember_device": true})
	ev = e.auditNewest(t, "alice", "backup_code_used")
	auditWhere(t, ev, "user", ntfMaskedIP, "AU")

	// The host app passes the user's IP with the password change (the
	// optional actor context of the call).
	e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", e.AppKey, actor)
	ev = e.auditNewest(t, "alice", "devices_forgotten")
	if d := ntfObj(ev, "details"); d["reason"] != "password_changed" || d["count"] != "1" {
		t.Errorf("devices_forgotten event: %v", ev)
	}
	auditWhere(t, ev, "user", ntfMaskedIP, "AU")

	res := e.stepSMS(t, "/v1/users/alice/phone-change", ntfPhone1, map[string]any{"new_phone": ntfPhone2, "ip": ntfIP, "user_agent": ntfUA})
	e.verifySMS(t, ntfStr(ntfObj(ntfObj(res, "result"), "next_challenge"), "id"), ntfPhone2, 0, nil)
	auditWhere(t, e.auditNewest(t, "alice", "phone_changed"), "user", ntfMaskedIP, "AU")

	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"blocked_countries": []string{"GB"}})
	ev = e.auditNewest(t, "", "policy_changed")
	if ev["user_id"] != nil || ev["actor"] != "manager" || !strings.Contains(ntfStr(ntfObj(ev, "details"), "changes"), "blocked_countries") {
		t.Errorf("policy_changed event: %v", ev)
	}
	if lg := e.evaluate(t, "alice", ntfGBIP, "", ""); lg["decision"] != "deny" {
		t.Fatalf("login from a blocked country: %v", lg)
	}
	auditWhere(t, e.auditNewest(t, "alice", "login_denied"), "user", "198.51.100.x", "GB")

	e.stepSMS(t, "/v1/users/alice/2fa/disable", ntfPhone2, actor)
	auditWhere(t, e.auditNewest(t, "alice", "2fa_disabled"), "user", ntfMaskedIP, "AU")

	e.enrollSMS(t, "alice", ntfPhone1)
	e.Must(t, 200, "POST", "/v1/admin/users/alice/reset", e.MgrKey, map[string]any{"reason": "lost phone"})
	// A manager acts from the caller's address (the test client, loopback).
	auditWhere(t, e.auditNewest(t, "alice", "admin_reset"), "manager", "127.0.0.x", "")

	// Every change is in alice's log, newest first.
	evs, _ := e.events(t, "?user_id=alice")
	var types []string
	for _, ev := range evs {
		types = append(types, ntfStr(ev, "type"))
		if ev["user_id"] != "alice" {
			t.Errorf("?user_id=alice returned %v", ev)
		}
	}
	want := []string{"admin_reset", "sms_enrolled", "2fa_disabled", "login_denied", "phone_changed", "devices_forgotten",
		"backup_code_used", "backup_codes_regenerated", "backup_codes_regenerated", "sms_enrolled"}
	if !slices.Equal(types, want) {
		t.Errorf("alice's events %v, want %v", types, want)
	}
}

func TestAuditFiltersAndPaging(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	for _, u := range []string{"bob", "carol"} {
		e.putUser(t, u, u+"@example.test")
	}
	forget := func(user string) {
		t.Helper()
		e.Must(t, 200, "POST", "/v1/users/"+user+"/events/password-changed", e.AppKey, nil)
	}
	for range 3 {
		forget("bob")
		forget("carol")
	}
	// since: a time after the events so far. Event ids carry the
	// millisecond they were written; wait (a few ms at most) until the
	// clock is past it, so the next events are strictly later.
	newest, _ := e.events(t, "?limit=1")
	ms, err := strconv.ParseInt(strings.Split(ntfStr(newest[0], "id"), "-")[0], 10, 64)
	if err != nil {
		t.Fatalf("event id %v: %v", newest[0]["id"], err)
	}
	cut := time.UnixMilli(ms + 1).UTC()
	for !time.Now().After(cut) {
		time.Sleep(time.Millisecond)
	}
	forget("bob")
	forget("bob")
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"remember_device_days": 7})

	all, next := e.events(t, "")
	if next != "" || len(all) != 9 {
		t.Fatalf("whole log: %d events (next %q), want 9", len(all), next)
	}
	checkOrder := func(what string, evs []map[string]any) {
		t.Helper()
		for i := 1; i < len(evs); i++ {
			a, _ := time.Parse(time.RFC3339Nano, ntfStr(evs[i-1], "at"))
			b, _ := time.Parse(time.RFC3339Nano, ntfStr(evs[i], "at"))
			if a.Before(b) {
				t.Errorf("%s: not newest first at %d: %v before %v", what, i, evs[i-1], evs[i])
			}
		}
	}
	checkOrder("whole log", all)
	if all[0]["type"] != "policy_changed" {
		t.Errorf("newest event %v, want the policy change", all[0])
	}

	bob, _ := e.events(t, "?user_id=bob")
	if len(bob) != 5 {
		t.Errorf("?user_id=bob: %d events, want 5", len(bob))
	}
	for _, ev := range bob {
		if ev["user_id"] != "bob" || ev["type"] != "devices_forgotten" {
			t.Errorf("?user_id=bob returned %v", ev)
		}
	}
	checkOrder("bob", bob)

	df, _ := e.events(t, "?type=devices_forgotten")
	if len(df) != 8 {
		t.Errorf("?type=devices_forgotten: %d events, want 8", len(df))
	}
	for _, ev := range df {
		if ev["type"] != "devices_forgotten" {
			t.Errorf("?type=devices_forgotten returned %v", ev)
		}
	}
	if pc, _ := e.events(t, "?type=policy_changed"); len(pc) != 1 {
		t.Errorf("?type=policy_changed: %v", pc)
	}
	if none, _ := e.events(t, "?user_id=bob&type=policy_changed"); len(none) != 0 {
		t.Errorf("?user_id=bob&type=policy_changed: %v", none)
	}

	since := url.QueryEscape(cut.Format(time.RFC3339Nano))
	recent, _ := e.events(t, "?user_id=bob&since="+since)
	if len(recent) != 2 || ntfStr(recent[0], "id") != ntfStr(bob[0], "id") || ntfStr(recent[1], "id") != ntfStr(bob[1], "id") {
		t.Errorf("?user_id=bob&since=%s: %v, want bob's 2 newest events", cut.Format(time.RFC3339Nano), recent)
	}
	if recent, _ := e.events(t, "?since="+since); len(recent) != 3 {
		t.Errorf("?since=%s: %d events, want 3 (2 of bob, the policy change)", cut.Format(time.RFC3339Nano), len(recent))
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if later, _ := e.events(t, "?since="+future); len(later) != 0 {
		t.Errorf("?since=<in an hour>: %v", later)
	}

	// Pages of 2 over the whole log and over one filter: together they
	// are the unpaged answer, in the same order, without repeats.
	for _, filter := range []string{"", "&type=devices_forgotten", "&user_id=bob"} {
		var unpaged []map[string]any
		switch filter {
		case "":
			unpaged = all
		case "&type=devices_forgotten":
			unpaged = df
		default:
			unpaged = bob
		}
		var paged []map[string]any
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("paging %q does not end", filter)
			}
			q := "?limit=2" + filter
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			page, next := e.events(t, q)
			if len(page) > 2 || (next != "" && len(page) != 2) {
				t.Errorf("page %d of %q: %d events, next %q", pages, filter, len(page), next)
			}
			paged = append(paged, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		var got, want []string
		for _, ev := range paged {
			got = append(got, ntfStr(ev, "id"))
		}
		for _, ev := range unpaged {
			want = append(want, ntfStr(ev, "id"))
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of 2 (%q): %v, want %v", filter, got, want)
		}
	}

	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=two", "?since=yesterday", "?cursor=nonsense", "?user_id=" + strings.Repeat("x", 129)} {
		r := e.Do(t, "GET", "/v1/admin/events"+q, e.MgrKey, nil)
		if r.Status != 400 || ntfStr(ntfObj(r.Body, "error"), "code") == "" {
			t.Errorf("GET /v1/admin/events%s: %d %s, want 400", q, r.Status, r.Raw)
		}
	}
}

func TestAuditFailedChangeLeavesNoEvent(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.setManagers(t, "boss@example.test")
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)

	// A wrong code at disable: 422, 2FA stays on, no event, no mail.
	seen := len(e.Twilio.Messages())
	st := e.Must(t, 201, "POST", "/v1/users/alice/2fa/disable", e.AppKey, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	id := ntfStr(ntfObj(st, "challenge"), "id")
	code := e.SMSCode(t, ntfPhone1, seen)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r := e.Do(t, "POST", "/v1/challenges/"+id+"/verify", e.AppKey, map[string]any{"code": wrong})
	if r.Status != 422 || ntfStr(ntfObj(r.Body, "error"), "code") != "invalid_code" {
		t.Fatalf("wrong code: %d %s, want 422 invalid_code", r.Status, r.Raw)
	}
	e.auditNone(t, "alice", "2fa_disabled", "after a wrong code")
	e.auditNewest(t, "alice", "sms_enrolled")

	// The policy now requires 2FA: the right code is refused with 403
	// policy_requires_2fa, and so is a new attempt; neither is recorded.
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"mode": "required"})
	r = e.Do(t, "POST", "/v1/challenges/"+id+"/verify", e.AppKey, map[string]any{"code": code})
	if r.Status != 403 || ntfStr(ntfObj(r.Body, "error"), "code") != "policy_requires_2fa" {
		t.Errorf("verify a disable under a required policy: %d %s, want 403 policy_requires_2fa", r.Status, r.Raw)
	}
	r = e.Do(t, "POST", "/v1/users/alice/2fa/disable", e.AppKey, map[string]any{"ip": ntfIP})
	if r.Status != 403 || ntfStr(ntfObj(r.Body, "error"), "code") != "policy_requires_2fa" {
		t.Errorf("start a disable under a required policy: %d %s, want 403 policy_requires_2fa", r.Status, r.Raw)
	}
	e.auditNone(t, "alice", "2fa_disabled", "after 403 policy_requires_2fa")
	e.auditNewest(t, "", "policy_changed")
	if u := e.Must(t, 200, "GET", "/v1/users/alice", e.AppKey, nil); u["enrolled"] != true {
		t.Errorf("alice after the refused disables: %v", u)
	}

	// Other refused changes: an admin reset without a reason, a report
	// link that is not one.
	if r := e.Do(t, "POST", "/v1/admin/users/alice/reset", e.MgrKey, map[string]any{"reason": "  "}); r.Status < 400 || r.Status >= 500 {
		t.Errorf("admin reset without a reason: %d %s", r.Status, r.Raw)
	}
	e.auditNone(t, "alice", "admin_reset", "after a reset without a reason")
	if r := e.report(t, ntfPublicURL+"/v1/report/bm90LWEtdG9rZW4.AAAAAAAAAAAAAAAAAAAAAA"); r.Status != 410 {
		t.Errorf("forged report link: %d %s, want 410", r.Status, r.Raw)
	}
	if evs, _ := e.events(t, "?type=report_received"); len(evs) != 0 {
		t.Errorf("a forged report link was recorded: %v", evs)
	}

	e.queueIdle(t)
	for _, subj := range []string{"Two-factor authentication was turned off for your account", "An administrator reset two-factor authentication on your account"} {
		if n := ntfCount(e.SMTP, "alice@example.test", subj); n != 0 {
			t.Errorf("%d mails %q for changes that failed", n, subj)
		}
	}
}

func TestAuditTenantIsolation(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"remember_device_days": 3})
	aEvents, _ := e.events(t, "")
	if len(aEvents) < 2 {
		t.Fatalf("tenant A's log: %v", aEvents)
	}

	bID, bApp, bMgr := e.Env.Tenant(t, "globex")
	// Tenant B has a user of the same id and its own change.
	e.Must(t, 200, "PUT", "/v1/users/alice", bApp, map[string]any{"email": "alice@globex.test"})
	e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", bApp, nil)

	for _, q := range []string{"", "?user_id=alice", "?type=sms_enrolled", "?type=policy_changed", "?limit=1000",
		"?cursor=" + url.QueryEscape(ntfStr(aEvents[0], "id")+"/0")} {
		r := e.Do(t, "GET", "/v1/admin/events"+q, bMgr, nil)
		if r.Status != 200 && !(strings.Contains(q, "cursor") && r.Status == 400) {
			t.Errorf("tenant B GET /v1/admin/events%s: %d %s", q, r.Status, r.Raw)
			continue
		}
		for _, x := range ntfSlice(r.Body["events"]) {
			ev := x.(map[string]any)
			if ev["tenant"] != bID || ev["type"] == "sms_enrolled" || ev["type"] == "policy_changed" {
				t.Errorf("tenant B's manager sees %v with %s", ev, q)
			}
		}
	}
	bEvents := e.Must(t, 200, "GET", "/v1/admin/events", bMgr, nil)
	if evs := ntfSlice(bEvents["events"]); len(evs) != 1 || evs[0].(map[string]any)["type"] != "devices_forgotten" {
		t.Errorf("tenant B's log: %v, want its one devices_forgotten event", evs)
	}
	// And the other way round.
	for _, ev := range func() []map[string]any { evs, _ := e.events(t, "?limit=1000"); return evs }() {
		if ev["tenant"] != e.Tenant {
			t.Errorf("tenant A's manager sees %v", ev)
		}
	}

	// Only a manager key reads the audit log.
	for _, k := range []struct{ name, key, code string }{
		{"app key", e.AppKey, "forbidden"}, {"tenant B's app key", bApp, "forbidden"},
		{"operator key", apptest.OperatorKey, "forbidden"}, {"no key", "", "unauthenticated"},
		{"unknown key", "mk_not_a_key_0123456789", "unauthenticated"},
	} {
		r := e.Do(t, "GET", "/v1/admin/events", k.key, nil)
		want := 403
		if k.code == "unauthenticated" {
			want = 401
		}
		if r.Status != want || ntfStr(ntfObj(r.Body, "error"), "code") != k.code || r.Body["events"] != nil {
			t.Errorf("GET /v1/admin/events with the %s: %d %s, want %d %s", k.name, r.Status, r.Raw, want, k.code)
		}
	}
}

func TestAuditUserWithoutEmail(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.setManagers(t, "boss@example.test")
	e.waitMail(t, "boss@example.test", "The two-factor policy of acme was changed")
	e.queueIdle(t)
	before := len(e.SMTP.Messages())

	e.putUser(t, "bob", "") // no address on file
	e.enrollSMS(t, "bob", ntfPhone1)
	e.loginRemember(t, "bob", ntfPhone1, "laptop")
	e.stepSMS(t, "/v1/users/bob/backup-codes", ntfPhone1, map[string]any{"ip": ntfIP})
	if r := e.Must(t, 200, "POST", "/v1/users/bob/events/password-changed", e.AppKey, nil); r["forgotten"] != 1.0 {
		t.Errorf("password change: %v", r)
	}
	e.Must(t, 200, "POST", "/v1/admin/users/bob/reset", e.MgrKey, map[string]any{"reason": "lost phone"})

	for _, typ := range []string{"sms_enrolled", "backup_codes_regenerated", "devices_forgotten", "admin_reset"} {
		ev := e.event(t, "bob", typ)
		if d := ntfObj(ev, "details"); d["mail"] != "no_address" {
			t.Errorf("%s event of a user without an address: details %v, want mail=no_address", typ, d)
		}
	}
	// The managers still hear of the reset; nobody else gets a mail, and
	// nothing was attempted for the missing address.
	e.waitMail(t, "boss@example.test", "Two-factor authentication was reset for user bob")
	e.queueIdle(t)
	for _, m := range e.SMTP.Messages()[before:] {
		if !slices.Equal(m.To, []string{"boss@example.test"}) || m.Subject != "Two-factor authentication was reset for user bob" {
			t.Errorf("unexpected mail %v %q", m.To, m.Subject)
		}
	}
	if dl, err := delivery.DeadLetters(context.Background(), e.App.Redis, 64, 100); err != nil || len(dl) != 0 {
		t.Errorf("dead letters: %v %v, want none", dl, err)
	}
	if u := e.Must(t, 200, "GET", "/v1/users/bob", e.AppKey, nil); u["enrolled"] != false {
		t.Errorf("bob after the reset: %v", u)
	}
}
