package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/apptest"
)

// The account manager's actions: look a user up, reset one, disable 2FA
// for everyone or a group, read the audit log — each confined to the
// manager's own tenant. Helpers come from policy_test.go.

// admEvents returns the tenant's audit events for a query string.
func admEvents(t *testing.T, env *apptest.Env, tn polTenant, query string) []map[string]any {
	t.Helper()
	body := env.Must(t, 200, "GET", "/v1/admin/events"+query, tn.Mgr, nil)
	raw, _ := body["events"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, e := range raw {
		out = append(out, e.(map[string]any))
	}
	return out
}

// admNoPhone fails if a body holds the full phone number in any form.
func admNoPhone(t *testing.T, what string, raw []byte, phone string) {
	t.Helper()
	national := strings.TrimPrefix(phone, "+61") // 491570xxx
	for _, s := range []string{phone, strings.TrimPrefix(phone, "+"), national} {
		if strings.Contains(string(raw), s) {
			t.Errorf("%s shows the full phone number (%s): %s", what, s, raw)
		}
	}
}

// TestAdminGetUser: the manager sees a user's 2FA status with the phone
// masked.
func TestAdminGetUser(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	phone := polPhone(20)
	env.Must(t, 200, "PUT", "/v1/users/jack", tn.App, map[string]any{"email": "jack@example.test", "display_name": "Jack"})
	polEnrollSMS(t, env, tn, "jack", phone)
	r := env.Do(t, "GET", "/v1/admin/users/jack", tn.Mgr, nil)
	if r.Status != 200 || r.Body["user_id"] != "jack" || r.Body["enrolled"] != true || r.Body["backup_codes_left"] != 10.0 {
		t.Fatalf("admin GET user: %d %s", r.Status, r.Raw)
	}
	fs, _ := r.Body["factors"].([]any)
	if len(fs) != 1 || !strings.HasSuffix(fmt.Sprint(fs[0].(map[string]any)["destination"]), phone[len(phone)-3:]) {
		t.Errorf("factors: %v", r.Body["factors"])
	}
	admNoPhone(t, "GET /v1/admin/users/jack", r.Raw, phone)
	ev := env.Do(t, "GET", "/v1/admin/events?user_id=jack", tn.Mgr, nil)
	admNoPhone(t, "GET /v1/admin/events", ev.Raw, phone)
	if !strings.Contains(string(ev.Raw), "sms_enrolled") {
		t.Errorf("no sms_enrolled event: %s", ev.Raw)
	}

	polErr(t, env.Do(t, "GET", "/v1/admin/users/nobody", tn.Mgr, nil), 404, "user_not_found", "")
}

// TestAdminReset: the lost-phone case. A reason is required; the reset
// clears factors, backup codes and devices, is audited with the reason
// and mailed to the user and the managers.
func TestAdminReset(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"manager_emails": []string{"it@example.test"}})
	phone := polPhone(21)
	env.Must(t, 200, "PUT", "/v1/users/kate", tn.App, map[string]any{"email": "kate@example.test"})
	codes := polEnrollSMS(t, env, tn, "kate", phone)
	home := polLogin{User: "kate", IP: polIPAU, Device: "laptop"}
	res := polVerifyLogin(t, env, tn, polEval(t, env, tn, home), codes[0], true)
	token, _ := res["device_token"].(string)
	if u := env.Must(t, 200, "GET", "/v1/admin/users/kate", tn.Mgr, nil); u["remembered_devices"] != 1.0 || token == "" {
		t.Fatalf("before the reset: %v (token %q)", u, token)
	}

	for _, body := range []any{map[string]any{}, map[string]any{"reason": ""}, map[string]any{"reason": "   "}, map[string]any{"reason": strings.Repeat("x", 501)}} {
		polErr(t, env.Do(t, "POST", "/v1/admin/users/kate/reset", tn.Mgr, body), 400, "validation_failed", "reason")
	}
	polErr(t, env.Do(t, "POST", "/v1/admin/users/kate/reset", tn.Mgr, ""), 400, "bad_json", "")
	polErr(t, env.Do(t, "POST", "/v1/admin/users/kate/reset", tn.Mgr, map[string]any{"reason": "x", "force": true}), 400, "unknown_field", "force")
	polErr(t, env.Do(t, "POST", "/v1/admin/users/nobody/reset", tn.Mgr, map[string]any{"reason": "lost phone"}), 404, "user_not_found", "")
	if u := env.Must(t, 200, "GET", "/v1/admin/users/kate", tn.Mgr, nil); u["enrolled"] != true {
		t.Fatalf("a refused reset changed the user: %v", u)
	}

	const reason = "lost phone, ticket #4711"
	u := env.Must(t, 200, "POST", "/v1/admin/users/kate/reset", tn.Mgr, map[string]any{"reason": reason})
	if u["enrolled"] != false || len(u["factors"].([]any)) != 0 || u["backup_codes_left"] != 0.0 || u["remembered_devices"] != 0.0 {
		t.Errorf("reset answer: %v", u)
	}
	u = env.Must(t, 200, "GET", "/v1/admin/users/kate", tn.Mgr, nil)
	if u["enrolled"] != false || len(u["factors"].([]any)) != 0 || u["backup_codes_left"] != 0.0 || u["remembered_devices"] != 0.0 {
		t.Errorf("after the reset: %v", u)
	}
	if ds := env.Must(t, 200, "GET", "/v1/users/kate/devices", tn.App, nil)["devices"].([]any); len(ds) != 0 {
		t.Errorf("devices after the reset: %v", ds)
	}
	// She logs in as a user without 2FA; the old token means nothing.
	withToken := home
	withToken.Token = token
	ev := polEval(t, env, tn, withToken)
	if ev["decision"] != "allow" || polObj(ev, "enrollment")["suggested"] != true {
		t.Errorf("login after the reset: %v", ev)
	}
	// The old backup codes are void: a new phone can be enrolled without
	// step-up, and the old codes do not answer its challenge.
	seen := len(env.Twilio.Messages())
	st := env.Must(t, 201, "POST", "/v1/users/kate/sms", tn.App, map[string]any{"phone": polPhone(22)})
	if st["step_up"] == true || polObj(st, "challenge")["purpose"] != "enroll_sms" {
		t.Errorf("enrolment after the reset asks for the old factor: %v", st)
	}
	id := polObj(st, "challenge")["id"].(string)
	polErr(t, env.Do(t, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": codes[1]}), 422, "invalid_code", "")
	env.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", tn.App, map[string]any{"code": env.SMSCode(t, polPhone(22), seen)})

	evs := admEvents(t, env, tn, "?type=admin_reset")
	if len(evs) != 1 || evs[0]["user_id"] != "kate" || evs[0]["actor"] != "manager" || polObj(evs[0], "details")["reason"] != reason {
		t.Errorf("admin_reset events: %v", evs)
	}
	// Newest first: kate's re-enrolment follows the reset.
	all := admEvents(t, env, tn, "?user_id=kate")
	if len(all) < 2 || all[0]["type"] != "sms_enrolled" || all[1]["type"] != "admin_reset" {
		var types []any
		for _, e := range all {
			types = append(types, e["type"])
		}
		t.Errorf("kate's events, newest first: %v", types)
	}
	polMail(t, env, "kate@example.test", "administrator reset")
	polMail(t, env, "it@example.test", "reset for user kate")
}

// TestAdminDisableAll resets every enrolled user, or one group's. It runs
// on a single node and on a cluster, where the tenant's users are spread
// over every master.
func TestAdminDisableAll(t *testing.T) {
	t.Parallel()
	for _, redis := range []string{apptest.Single, apptest.Cluster} {
		t.Run(redis, func(t *testing.T) {
			t.Parallel()
			admDisableAll(t, polStartOn(t, redis))
		})
	}
}

func admDisableAll(t *testing.T, env *apptest.Env) {
	tn := polNewTenant(t, env, "clinic")
	polPut(t, env, tn, map[string]any{"groups": map[string]any{
		"staff":    map[string]any{"mode": "required"},
		"patients": map[string]any{"mode": "optional"},
	}})
	users := map[string]string{"sam": "staff", "sue": "staff", "pat": "patients", "neil": ""}
	i := 30
	for u, g := range users {
		env.Must(t, 200, "PUT", "/v1/users/"+u, tn.App, map[string]any{"group": g, "email": u + "@example.test"})
		if u != "sue" { // sue has no 2FA yet
			polEnrollSMS(t, env, tn, u, polPhone(i))
		}
		i++
	}
	enrolled := func(u string) bool {
		t.Helper()
		return env.Must(t, 200, "GET", "/v1/admin/users/"+u, tn.Mgr, nil)["enrolled"] == true
	}

	polErr(t, env.Do(t, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{}), 400, "validation_failed", "reason")
	polErr(t, env.Do(t, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{"group": "staff"}), 400, "validation_failed", "reason")
	polErr(t, env.Do(t, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{"reason": "x", "group": "nurses"}), 422, "unknown_group", "group")
	for _, u := range []string{"sam", "pat", "neil"} {
		if !enrolled(u) {
			t.Fatalf("%s lost 2FA through a refused disable-all", u)
		}
	}

	r := env.Must(t, 200, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{"reason": "staff move to new app", "group": "staff"})
	if r["reset"] != 1.0 {
		t.Errorf("disable-all staff reset %v users, want 1 (sam)", r["reset"])
	}
	if enrolled("sam") || !enrolled("pat") || !enrolled("neil") {
		t.Errorf("after disable-all staff: sam %v, pat %v, neil %v", enrolled("sam"), enrolled("pat"), enrolled("neil"))
	}
	evs := admEvents(t, env, tn, "?type=admin_reset")
	if len(evs) != 1 || evs[0]["user_id"] != "sam" || polObj(evs[0], "details")["reason"] != "staff move to new app" ||
		polObj(evs[0], "details")["group"] != "staff" {
		t.Errorf("admin_reset events after disable-all staff: %v", evs)
	}

	r = env.Must(t, 200, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{"reason": "breach drill"})
	if r["reset"] != 2.0 {
		t.Errorf("disable-all reset %v users, want 2 (pat, neil)", r["reset"])
	}
	for u := range users {
		if enrolled(u) {
			t.Errorf("%s still enrolled after disable-all", u)
		}
	}
	if evs := admEvents(t, env, tn, "?type=admin_reset"); len(evs) != 3 {
		t.Errorf("%d admin_reset events, want 3", len(evs))
	}
	polMail(t, env, "pat@example.test", "administrator reset")
	// Nobody left to reset.
	if r := env.Must(t, 200, "POST", "/v1/admin/2fa/disable-all", tn.Mgr, map[string]any{"reason": "again"}); r["reset"] != 0.0 {
		t.Errorf("second disable-all reset %v", r["reset"])
	}
}

// TestAdminTenantIsolation: a manager key sees and changes only its own
// tenant.
func TestAdminTenantIsolation(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	a := polNewTenant(t, env, "alpha")
	b := polNewTenant(t, env, "beta")
	polPut(t, env, b, map[string]any{"mode": "required", "grace_logins": 2, "groups": map[string]any{"staff": map[string]any{}}})
	env.Must(t, 200, "PUT", "/v1/users/bob", b.App, map[string]any{"email": "bob@example.test", "group": "staff"})
	polEnrollSMS(t, env, b, "bob", polPhone(40))
	bEvents := len(admEvents(t, env, b, ""))

	// A's manager sees A's policy, not B's, and cannot find B's user.
	if p := env.Must(t, 200, "GET", "/v1/admin/policy", a.Mgr, nil); p["mode"] != "optional" || len(polObj(p, "groups")) != 0 {
		t.Errorf("A's manager reads %v", p)
	}
	polErr(t, env.Do(t, "GET", "/v1/admin/users/bob", a.Mgr, nil), 404, "user_not_found", "")
	polErr(t, env.Do(t, "POST", "/v1/admin/users/bob/reset", a.Mgr, map[string]any{"reason": "takeover"}), 404, "user_not_found", "")
	polErr(t, env.Do(t, "POST", "/v1/admin/2fa/disable-all", a.Mgr, map[string]any{"reason": "x", "group": "staff"}), 422, "unknown_group", "group")
	if r := env.Must(t, 200, "POST", "/v1/admin/2fa/disable-all", a.Mgr, map[string]any{"reason": "takeover"}); r["reset"] != 0.0 {
		t.Errorf("A's disable-all reset %v users", r["reset"])
	}
	for _, q := range []string{"", "?user_id=bob", "?type=sms_enrolled", "?type=policy_changed"} {
		if evs := admEvents(t, env, a, q); len(evs) != 0 {
			t.Errorf("A's manager reads events %s: %v", q, evs)
		}
	}
	// A's changes stay in A.
	polPut(t, env, a, map[string]any{"mode": "off", "groups": map[string]any{}})
	if p := env.Must(t, 200, "GET", "/v1/admin/policy", b.Mgr, nil); p["mode"] != "required" || p["grace_logins"] != 2.0 || len(polObj(p, "groups")) != 1 {
		t.Errorf("B's policy after A's change: %v", p)
	}
	if u := env.Must(t, 200, "GET", "/v1/admin/users/bob", b.Mgr, nil); u["enrolled"] != true {
		t.Errorf("bob after A's actions: %v", u)
	}
	if n := len(admEvents(t, env, b, "")); n != bEvents {
		t.Errorf("B's audit log grew from %d to %d through A's actions", bEvents, n)
	}
	// The same user id in both tenants is two users.
	env.Must(t, 200, "PUT", "/v1/users/bob", a.App, map[string]any{})
	if u := env.Must(t, 200, "GET", "/v1/admin/users/bob", a.Mgr, nil); u["enrolled"] != false || u["mode"] != "off" {
		t.Errorf("A's bob: %v", u)
	}
	env.Must(t, 200, "POST", "/v1/admin/users/bob/reset", a.Mgr, map[string]any{"reason": "A's own bob"})
	if u := env.Must(t, 200, "GET", "/v1/admin/users/bob", b.Mgr, nil); u["enrolled"] != true {
		t.Errorf("B's bob after A reset its own bob: %v", u)
	}
	// B's app key cannot reach A's users either.
	polErr(t, env.Do(t, "GET", "/v1/users/nobody-in-b", b.App, nil), 404, "user_not_found", "")
}

// TestAdminKeyKinds: the admin API takes manager keys only, and manager
// keys work nowhere else.
func TestAdminKeyKinds(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	env.Must(t, 200, "PUT", "/v1/users/u1", tn.App, map[string]any{})
	admin := []struct{ method, path string }{
		{"GET", "/v1/admin/policy"},
		{"PUT", "/v1/admin/policy"},
		{"GET", "/v1/admin/users/u1"},
		{"POST", "/v1/admin/users/u1/reset"},
		{"POST", "/v1/admin/2fa/disable-all"},
		{"GET", "/v1/admin/events"},
	}
	for _, rt := range admin {
		var body any
		if rt.method != "GET" {
			body = map[string]any{"reason": "test"}
			if rt.path == "/v1/admin/policy" {
				body = map[string]any{"mode": "off"}
			}
		}
		polErr(t, env.Do(t, rt.method, rt.path, tn.App, body), 403, "forbidden", "")
		polErr(t, env.Do(t, rt.method, rt.path, apptest.OperatorKey, body), 403, "forbidden", "")
		polErr(t, env.Do(t, rt.method, rt.path, "", body), 401, "unauthenticated", "")
		polErr(t, env.Do(t, rt.method, rt.path, "mgr_not_a_real_key_0123456789abcdef", body), 401, "unauthenticated", "")
	}
	if p := env.Must(t, 200, "GET", "/v1/admin/policy", tn.Mgr, nil); p["mode"] != "optional" {
		t.Errorf("a refused key changed the policy: %v", p)
	}
	if u := env.Must(t, 200, "GET", "/v1/admin/users/u1", tn.Mgr, nil); u["user_id"] != "u1" {
		t.Errorf("manager GET user: %v", u)
	}
	for _, rt := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/logins/evaluate", map[string]any{"user_id": "u1", "ip": polIPAU, "user_agent": polUA}},
		{"POST", "/v1/logins/failed", map[string]any{"user_id": "u1", "ip": polIPAU}},
		{"GET", "/v1/users/u1", nil},
		{"PUT", "/v1/users/u1", map[string]any{"group": ""}},
		{"POST", "/v1/users/u1/sms", map[string]any{"phone": polPhone(50)}},
		{"POST", "/v1/tenants", map[string]any{"name": "evil"}},
		{"GET", "/v1/tenants", nil},
	} {
		polErr(t, env.Do(t, rt.method, rt.path, tn.Mgr, rt.body), 403, "forbidden", "")
	}
}

// TestAdminEventsQuery: the audit log filters by user, type and time,
// newest first, and refuses bad parameters.
func TestAdminEventsQuery(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	start := time.Now().UTC().Add(-time.Second)
	polEnrollSMS(t, env, tn, "ann", polPhone(60))
	polEnrollSMS(t, env, tn, "ben", polPhone(61))
	polPut(t, env, tn, map[string]any{"grace_logins": 2})

	all := admEvents(t, env, tn, "")
	if len(all) < 3 || all[0]["type"] != "policy_changed" {
		t.Fatalf("events: %v", all)
	}
	for i := 1; i < len(all); i++ {
		a, _ := time.Parse(time.RFC3339, all[i-1]["at"].(string))
		b, _ := time.Parse(time.RFC3339, all[i]["at"].(string))
		if a.Before(b) {
			t.Errorf("events not newest first: %v before %v", all[i-1], all[i])
		}
	}
	if evs := admEvents(t, env, tn, "?user_id=ann"); len(evs) != 1 || evs[0]["user_id"] != "ann" || evs[0]["type"] != "sms_enrolled" {
		t.Errorf("user_id=ann: %v", evs)
	}
	if evs := admEvents(t, env, tn, "?type=sms_enrolled"); len(evs) != 2 {
		t.Errorf("type=sms_enrolled: %v", evs)
	}
	if evs := admEvents(t, env, tn, "?limit=1"); len(evs) != 1 {
		t.Errorf("limit=1: %v", evs)
	}
	if evs := admEvents(t, env, tn, "?since="+start.Format(time.RFC3339)); len(evs) != len(all) {
		t.Errorf("since before everything: %d events, want %d", len(evs), len(all))
	}
	if evs := admEvents(t, env, tn, "?since="+time.Now().UTC().Add(time.Hour).Format(time.RFC3339)); len(evs) != 0 {
		t.Errorf("since in the future: %v", evs)
	}
	polErr(t, env.Do(t, "GET", "/v1/admin/events?limit=0", tn.Mgr, nil), 400, "validation_failed", "limit")
	polErr(t, env.Do(t, "GET", "/v1/admin/events?limit=abc", tn.Mgr, nil), 400, "validation_failed", "limit")
	polErr(t, env.Do(t, "GET", "/v1/admin/events?since=yesterday", tn.Mgr, nil), 400, "validation_failed", "since")
}
