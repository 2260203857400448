package api_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/api/openapitest"
	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// TestOperatorTenantsAndKeys walks the operator's calls on every kind of
// storage: tenants are created and listed, key secrets are shown once and
// never listed, a deleted key stops working.
func TestOperatorTenantsAndKeys(t *testing.T) {
	for _, redis := range []string{apptest.Embedded, apptest.Single} {
		t.Run(redis, func(t *testing.T) {
			s := start(t, apptest.Options{Redis: redis})
			op := apptest.OperatorKey

			acme := s.must(t, 201, "POST", "/v1/tenants", op, map[string]any{"name": "acme", "sender_name": "Acme"})
			id := str(acme, "id")
			if !strings.HasPrefix(id, "tn_") || acme["name"] != "acme" || acme["sender_name"] != "Acme" || str(acme, "created_at") == "" {
				t.Fatalf("created tenant: %v", acme)
			}
			globex := s.must(t, 201, "POST", "/v1/tenants", op, map[string]any{"name": "globex"})
			if globex["sender_name"] != "globex" {
				t.Errorf("sender_name %v, want the name by default", globex["sender_name"])
			}
			var listed []string
			for _, x := range s.must(t, 200, "GET", "/v1/tenants", op, nil)["tenants"].([]any) {
				listed = append(listed, str(x.(map[string]any), "id"))
			}
			for _, want := range []string{id, str(globex, "id")} {
				if !slices.Contains(listed, want) {
					t.Errorf("tenant %s not listed in %v", want, listed)
				}
			}

			keys := "/v1/tenants/" + id + "/keys"
			app := s.must(t, 201, "POST", keys, op, map[string]any{"kind": "app", "label": "web"})
			mgr := s.must(t, 201, "POST", keys, op, map[string]any{"kind": "manager", "label": "console"})
			appSecret, mgrSecret := str(app, "secret"), str(mgr, "secret")
			if !strings.HasPrefix(appSecret, "su_app_") || app["kind"] != "app" || app["tenant"] != id || app["label"] != "web" {
				t.Errorf("app key: %v", app)
			}
			if !strings.HasPrefix(mgrSecret, "su_manager_") || mgr["kind"] != "manager" {
				t.Errorf("manager key: %v", mgr)
			}
			if appSecret == mgrSecret || len(appSecret) < 40 {
				t.Errorf("weak or repeated secrets %q %q", appSecret, mgrSecret)
			}

			// Shown once: the listing has the keys but no secret.
			list := s.do(t, "GET", keys, op, nil)
			if list.Status != 200 {
				t.Fatalf("list keys: %d %s", list.Status, list.Raw)
			}
			if strings.Contains(string(list.Raw), appSecret) || strings.Contains(string(list.Raw), mgrSecret) ||
				strings.Contains(string(list.Raw), `"secret"`) {
				t.Errorf("key listing shows a secret: %s", list.Raw)
			}
			if got := keyIDs(list.Body); !slices.Equal(got, sorted(str(app, "id"), str(mgr, "id"))) {
				t.Errorf("listed keys %v, want the app and manager keys", got)
			}
			if got := keyIDs(s.must(t, 200, "GET", "/v1/tenants/"+str(globex, "id")+"/keys", op, nil)); len(got) != 0 {
				t.Errorf("globex lists acme's keys: %v", got)
			}

			// Both keys work, each on its own endpoints.
			wantError(t, s.do(t, "GET", "/v1/users/nobody", appSecret, nil), 404, "user_not_found", "")
			s.must(t, 200, "GET", "/v1/admin/policy", mgrSecret, nil)

			// A key of acme cannot be deleted through globex.
			wantError(t, s.do(t, "DELETE", "/v1/tenants/"+str(globex, "id")+"/keys/"+str(mgr, "id"), op, nil), 404, "key_not_found", "")

			del := s.do(t, "DELETE", keys+"/"+str(app, "id"), op, nil)
			if del.Status != 204 || len(del.Raw) != 0 {
				t.Fatalf("delete key: %d %q", del.Status, del.Raw)
			}
			wantError(t, s.do(t, "GET", "/v1/users/nobody", appSecret, nil), 401, "unauthenticated", "")
			wantError(t, s.do(t, "DELETE", keys+"/"+str(app, "id"), op, nil), 404, "key_not_found", "")
			if got := keyIDs(s.must(t, 200, "GET", keys, op, nil)); !slices.Equal(got, []string{str(mgr, "id")}) {
				t.Errorf("after delete, keys %v", got)
			}
			s.must(t, 200, "GET", "/v1/admin/policy", mgrSecret, nil)
		})
	}
}

func keyIDs(body map[string]any) []string {
	var ids []string
	for _, k := range body["keys"].([]any) {
		ids = append(ids, str(k.(map[string]any), "id"))
	}
	sort.Strings(ids)
	return ids
}

func sorted(s ...string) []string { sort.Strings(s); return s }

// TestOperatorValidation checks the operator calls refuse what they must,
// naming the field.
func TestOperatorValidation(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	op := apptest.OperatorKey
	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code, field  string
	}{
		{"tenant without name", "POST", "/v1/tenants", map[string]any{}, 400, "validation_failed", "name"},
		{"blank name", "POST", "/v1/tenants", map[string]any{"name": "   "}, 400, "validation_failed", "name"},
		{"long name", "POST", "/v1/tenants", map[string]any{"name": strings.Repeat("n", 101)}, 400, "validation_failed", "name"},
		{"long sender", "POST", "/v1/tenants", map[string]any{"name": "n", "sender_name": strings.Repeat("s", 41)}, 400, "validation_failed", "sender_name"},
		{"unknown tenant field", "POST", "/v1/tenants", map[string]any{"name": "n", "plan": "gold"}, 400, "unknown_field", "plan"},
		{"operator key kind", "POST", "/v1/tenants/" + tn.ID + "/keys", map[string]any{"kind": "operator"}, 400, "validation_failed", "kind"},
		{"no key kind", "POST", "/v1/tenants/" + tn.ID + "/keys", map[string]any{"label": "x"}, 400, "validation_failed", "kind"},
		{"long label", "POST", "/v1/tenants/" + tn.ID + "/keys", map[string]any{"kind": "app", "label": strings.Repeat("l", 101)}, 400, "validation_failed", "label"},
		{"key of unknown tenant", "POST", "/v1/tenants/tn_nope/keys", map[string]any{"kind": "app"}, 404, "tenant_not_found", ""},
		{"keys of unknown tenant", "GET", "/v1/tenants/tn_nope/keys", nil, 404, "tenant_not_found", ""},
		{"delete in unknown tenant", "DELETE", "/v1/tenants/tn_nope/keys/key_nope", nil, 404, "tenant_not_found", ""},
		{"delete unknown key", "DELETE", "/v1/tenants/" + tn.ID + "/keys/key_nope", nil, 404, "key_not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, s.do(t, tt.method, tt.path, op, tt.body), tt.status, tt.code, tt.field)
		})
	}
}

// TestAuthentication checks 401 for a missing or unknown key and 403 for a
// key of the wrong kind.
func TestAuthentication(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	op := apptest.OperatorKey
	tests := []struct {
		name         string
		method, path string
		auth         string // the whole Authorization header
		status       int
		code         string
	}{
		{"no header", "GET", "/v1/tenants", "", 401, "unauthenticated"},
		{"basic auth", "GET", "/v1/tenants", "Basic b3A6b3A=", 401, "unauthenticated"},
		{"empty bearer", "GET", "/v1/tenants", "Bearer ", 401, "unauthenticated"},
		{"bare secret", "GET", "/v1/tenants", op, 401, "unauthenticated"},
		{"unknown key", "GET", "/v1/tenants", "Bearer su_app_notakey", 401, "unauthenticated"},
		{"unknown key on app route", "GET", "/v1/users/u1", "Bearer su_app_notakey", 401, "unauthenticated"},
		{"no key on admin route", "GET", "/v1/admin/policy", "", 401, "unauthenticated"},
		{"app key lists tenants", "GET", "/v1/tenants", "Bearer " + tn.App, 403, "forbidden"},
		{"manager key lists tenants", "GET", "/v1/tenants", "Bearer " + tn.Manager, 403, "forbidden"},
		{"manager key creates keys", "POST", "/v1/tenants/" + tn.ID + "/keys", "Bearer " + tn.Manager, 403, "forbidden"},
		{"operator evaluates", "POST", "/v1/logins/evaluate", "Bearer " + op, 403, "forbidden"},
		{"manager evaluates", "POST", "/v1/logins/evaluate", "Bearer " + tn.Manager, 403, "forbidden"},
		{"manager reads a user", "GET", "/v1/users/u1", "Bearer " + tn.Manager, 403, "forbidden"},
		{"app reads the policy", "GET", "/v1/admin/policy", "Bearer " + tn.App, 403, "forbidden"},
		{"operator reads the policy", "GET", "/v1/admin/policy", "Bearer " + op, 403, "forbidden"},
		{"app reads events", "GET", "/v1/admin/events", "Bearer " + tn.App, 403, "forbidden"},
		// RFC 7235: the scheme is case-insensitive.
		{"lower-case scheme", "GET", "/v1/tenants", "bearer " + op, 200, ""},
		{"operator key", "GET", "/v1/tenants", "Bearer " + op, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			r := s.do(t, tt.method, tt.path, "", nil, hdr...)
			if tt.code == "" {
				if r.Status != tt.status {
					t.Errorf("status %d, want %d: %s", r.Status, tt.status, r.Raw)
				}
				return
			}
			wantError(t, r, tt.status, tt.code, "")
		})
	}
}

// TestEveryOperationChecksItsKey sends every documented operation without
// a key and with each key it does not take: 401 and 403 every time.
func TestEveryOperationChecksItsKey(t *testing.T) {
	// Every route is tried with bad keys from one address: more than the
	// auth failure limit allows a minute.
	s := start(t, apptest.Options{Configure: func(c *config.Config) { c.Limits.AuthFailuresPerIPMinute = 10000 }})
	tn := s.tenant(t, "acme")
	keys := map[string]string{"appKey": tn.App, "managerKey": tn.Manager, "operatorKey": apptest.OperatorKey}
	doc := openapitest.Default(t)
	for p, item := range doc.T.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Security == nil || len(*op.Security) == 0 {
				continue
			}
			var takes string
			for k := range (*op.Security)[0] {
				takes = k
			}
			filled := strings.NewReplacer("{tenant}", tn.ID, "{key}", "key_x", "{id}", "ch_x", "{user}", "u1", "{device}", "dv_x").Replace(p)
			var body any
			if op.RequestBody != nil {
				body = map[string]any{}
			}
			t.Run(method+" "+p, func(t *testing.T) {
				wantError(t, s.do(t, method, filled, "", body), 401, "unauthenticated", "")
				for kind, key := range keys {
					if kind != takes {
						wantError(t, s.do(t, method, filled, key, body), 403, "forbidden", "")
					}
				}
			})
		}
	}
}

// TestTenantIsolation checks a tenant's keys never reach another tenant's
// users, challenges or events.
func TestTenantIsolation(t *testing.T) {
	s := start(t, apptest.Options{})
	a, b := s.tenant(t, "alpha"), s.tenant(t, "beta")
	s.must(t, 200, "PUT", "/v1/users/u1", a.App, map[string]any{"email": "u1@example.test"})
	s.enrollSMS(t, a.App, "u1", phone1)
	ch := s.loginChallenge(t, a.App, "u1")

	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
	}{
		{"get challenge", "GET", "/v1/challenges/" + ch, nil, 404, "challenge_not_found"},
		{"verify challenge", "POST", "/v1/challenges/" + ch + "/verify", map[string]any{"code": "123456"}, 404, "challenge_not_found"},
		{"resend challenge", "POST", "/v1/challenges/" + ch + "/resend", map[string]any{}, 404, "challenge_not_found"},
		{"switch challenge", "POST", "/v1/challenges/" + ch + "/switch", map[string]any{"channel": "sms"}, 404, "challenge_not_found"},
		{"get user", "GET", "/v1/users/u1", nil, 404, "user_not_found"},
		{"list devices", "GET", "/v1/users/u1/devices", nil, 404, "user_not_found"},
		{"forget devices", "DELETE", "/v1/users/u1/devices", nil, 404, "user_not_found"},
		{"password changed", "POST", "/v1/users/u1/events/password-changed", nil, 404, "user_not_found"},
		{"disable", "POST", "/v1/users/u1/2fa/disable", nil, 422, "no_factor"},
		{"backup codes", "POST", "/v1/users/u1/backup-codes", nil, 422, "no_factor"},
		{"phone change", "POST", "/v1/users/u1/phone-change", map[string]any{"new_phone": phone2}, 422, "no_sms_factor"},
		{"erase", "DELETE", "/v1/users/u1", nil, 404, "user_not_found"},
	}
	for _, tt := range tests {
		t.Run("app key of B: "+tt.name, func(t *testing.T) {
			wantError(t, s.do(t, tt.method, tt.path, b.App, tt.body), tt.status, tt.code, "")
		})
	}
	t.Run("manager key of B", func(t *testing.T) {
		wantError(t, s.do(t, "GET", "/v1/admin/users/u1", b.Manager, nil), 404, "user_not_found", "")
		wantError(t, s.do(t, "POST", "/v1/admin/users/u1/reset", b.Manager, map[string]any{"reason": "lost phone"}), 404, "user_not_found", "")
		if n := s.must(t, 200, "POST", "/v1/admin/2fa/disable-all", b.Manager, map[string]any{"reason": "test"})["reset"]; n != 0.0 {
			t.Errorf("B's disable-all reset %v users", n)
		}
		for _, q := range []string{"", "?user_id=u1", "?type=sms_enrolled"} {
			for _, ev := range s.must(t, 200, "GET", "/v1/admin/events"+q, b.Manager, nil)["events"].([]any) {
				e := ev.(map[string]any)
				if e["tenant"] != b.ID || e["user_id"] == "u1" {
					t.Errorf("B's manager reads %v", e)
				}
			}
		}
	})

	// A's state is untouched: the challenge kept its attempts, the user is
	// still enrolled, and A's manager sees A's events.
	if c := s.must(t, 200, "GET", "/v1/challenges/"+ch, a.App, nil); c["status"] != "pending" || c["attempts_left"] != 5.0 {
		t.Errorf("A's challenge after B's attempts: %v", c)
	}
	s.must(t, 200, "PUT", "/v1/users/u1", b.App, map[string]any{"email": "other@example.test"})
	if u := s.must(t, 200, "GET", "/v1/users/u1", a.App, nil); u["enrolled"] != true || str(obj(u, "profile"), "email") != "u1@example.test" {
		t.Errorf("A's user after B wrote its own u1: %v", u)
	}
	if u := s.must(t, 200, "GET", "/v1/users/u1", b.App, nil); u["enrolled"] != false {
		t.Errorf("B's u1 sees A's factors: %v", u)
	}
	evs := s.must(t, 200, "GET", "/v1/admin/events?user_id=u1", a.Manager, nil)["events"].([]any)
	if len(evs) == 0 {
		t.Fatal("A's manager sees no event of u1")
	}
	for _, ev := range evs {
		if e := ev.(map[string]any); e["tenant"] != a.ID {
			t.Errorf("A's manager reads %v", e)
		}
	}
}

// TestSharedRedis runs two stepupd on one Redis: a challenge made on one is
// verified on the other, and a key deleted through one is refused by the
// other at once.
func TestSharedRedis(t *testing.T) {
	one := start(t, apptest.Options{Redis: apptest.Single})
	two := start(t, apptest.Options{Redis: apptest.Single, RedisAddrs: one.Addrs, Twilio: one.Twilio, SMTP: one.SMTP})
	tn := one.tenant(t, "acme")
	for _, s := range []server{one, two} {
		wantError(t, s.do(t, "GET", "/v1/users/nobody", tn.App, nil), 404, "user_not_found", "")
	}

	one.enrollSMS(t, tn.App, "u1", phone1)
	seen := len(one.Twilio.Messages())
	ch := one.loginChallenge(t, tn.App, "u1")
	code := one.SMSCode(t, phone1, seen)
	if res := two.must(t, 200, "POST", "/v1/challenges/"+ch+"/verify", tn.App, map[string]any{"code": code}); res["purpose"] != "login" {
		t.Errorf("verify on the second process: %v", res)
	}
	wantError(t, one.do(t, "POST", "/v1/challenges/"+ch+"/verify", tn.App, map[string]any{"code": code}), 409, "challenge_used", "")

	var appID string
	for _, k := range two.must(t, 200, "GET", "/v1/tenants/"+tn.ID+"/keys", apptest.OperatorKey, nil)["keys"].([]any) {
		if k := k.(map[string]any); k["kind"] == "app" {
			appID = str(k, "id")
		}
	}
	one.must(t, 204, "DELETE", "/v1/tenants/"+tn.ID+"/keys/"+appID, apptest.OperatorKey, nil)
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := two.do(t, "GET", "/v1/users/u1", tn.App, nil)
		if r.Status == 401 {
			wantError(t, r, 401, "unauthenticated", "")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second process still accepts the deleted key after 2s: %d %s", r.Status, r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	two.must(t, 200, "GET", "/v1/admin/policy", tn.Manager, nil)
}

// TestErrorCodes checks every code of the error list, with its status and
// the field it names.
func TestErrorCodes(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	s.must(t, 200, "PUT", "/v1/users/known", tn.App, map[string]any{"display_name": "Known"})
	login := func(extra map[string]any) map[string]any {
		b := map[string]any{"user_id": "u1", "ip": testIP}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	big := strings.Repeat("a", 70<<10)
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	tests := []struct {
		name         string
		method, path string
		key          string
		body         any
		header       []string
		status       int
		code, field  string
	}{
		{"not json", "POST", "/v1/logins/evaluate", tn.App, `{"user_id":`, nil, 400, "bad_json", ""},
		{"empty body", "POST", "/v1/logins/evaluate", tn.App, ``, nil, 400, "bad_json", ""},
		{"trailing data", "POST", "/v1/logins/evaluate", tn.App, `{"user_id":"u1","ip":"203.0.113.9"} {}`, nil, 400, "bad_json", ""},
		{"array body", "POST", "/v1/logins/evaluate", tn.App, `[]`, nil, 400, "bad_json", ""},
		{"not json policy", "PUT", "/v1/admin/policy", tn.Manager, `{mode:off}`, nil, 400, "bad_json", ""},
		{"unknown field", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"colour": "red"}), nil, 400, "unknown_field", "colour"},
		{"unknown field in resend", "POST", "/v1/challenges/ch_x/resend", tn.App, map[string]any{"force": true}, nil, 400, "unknown_field", "force"},
		{"unknown field in lifecycle", "POST", "/v1/users/known/2fa/disable", tn.App, map[string]any{"why": "x"}, nil, 400, "unknown_field", "why"},
		{"unknown policy field", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"colour": "red"}, nil, 400, "unknown_field", "colour"},
		{"internal policy field", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"required_since": "x"}, nil, 400, "unknown_field", "required_since"},
		{"body too large", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"user_agent": big}), nil, 413, "body_too_large", ""},
		{"policy too large", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"manager_emails": []string{big}}, nil, 413, "body_too_large", ""},
		{"tenant too large", "POST", "/v1/tenants", apptest.OperatorKey, map[string]any{"name": big}, nil, 413, "body_too_large", ""},
		{"no such endpoint", "GET", "/v1/nope", tn.App, nil, nil, 404, "not_found", ""},
		{"no such endpoint without key", "GET", "/nope", "", nil, nil, 404, "not_found", ""},
		{"no such user endpoint", "GET", "/v1/users/known/nope", tn.App, nil, nil, 404, "not_found", ""},
		{"wrong method", "DELETE", "/v1/logins/evaluate", tn.App, nil, nil, 405, "method_not_allowed", ""},
		{"get on a post", "GET", "/v1/logins/evaluate", tn.App, nil, nil, 405, "method_not_allowed", ""},
		{"put on health", "PUT", "/healthz", "", nil, nil, 405, "method_not_allowed", ""},
		{"patch a user", "PATCH", "/v1/users/known", tn.App, map[string]any{}, nil, 405, "method_not_allowed", ""},
		{"missing user id", "POST", "/v1/logins/evaluate", tn.App, map[string]any{"ip": testIP}, nil, 400, "validation_failed", "user_id"},
		{"user id of wrong type", "POST", "/v1/logins/evaluate", tn.App, map[string]any{"user_id": 42, "ip": testIP}, nil, 400, "validation_failed", "user_id"},
		{"long user agent", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"user_agent": strings.Repeat("a", 1025)}), nil, 400, "validation_failed", "user_agent"},
		{"long device id", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"device_id": strings.Repeat("d", 257)}), nil, 400, "validation_failed", "device_id"},
		{"long user id in path", "GET", "/v1/users/" + strings.Repeat("u", 129), tn.App, nil, nil, 400, "validation_failed", "user_id"},
		{"empty code", "POST", "/v1/challenges/ch_x/verify", tn.App, map[string]any{"code": ""}, nil, 400, "validation_failed", "code"},
		{"remember of wrong type", "POST", "/v1/challenges/ch_x/verify", tn.App, map[string]any{"code": "1", "remember_device": "yes"}, nil, 400, "validation_failed", "remember_device"},
		{"unknown channel", "POST", "/v1/challenges/ch_x/switch", tn.App, map[string]any{"channel": "fax"}, nil, 400, "validation_failed", "channel"},
		{"bad e-mail", "PUT", "/v1/users/known", tn.App, map[string]any{"email": "not-an-address"}, nil, 400, "validation_failed", "email"},
		{"bad locale", "PUT", "/v1/users/known", tn.App, map[string]any{"locale": "not a locale"}, nil, 400, "validation_failed", "locale"},
		{"bad time zone", "PUT", "/v1/users/known", tn.App, map[string]any{"time_zone": "Mars/Olympus"}, nil, 400, "validation_failed", "time_zone"},
		{"bad mode", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"mode": "sometimes"}, nil, 400, "validation_failed", "mode"},
		{"thresholds crossed", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"thresholds": map[string]any{"challenge": 90, "deny": 80}}, nil, 400, "validation_failed", "thresholds.challenge"},
		{"bad group policy", "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"groups": map[string]any{"staff": map[string]any{"mode": "never"}}}, nil, 400, "validation_failed", "groups.staff.mode"},
		{"reset without reason", "POST", "/v1/admin/users/known/reset", tn.Manager, map[string]any{}, nil, 400, "validation_failed", "reason"},
		{"disable-all without reason", "POST", "/v1/admin/2fa/disable-all", tn.Manager, map[string]any{"reason": " "}, nil, 400, "validation_failed", "reason"},
		{"reset reason of two lines", "POST", "/v1/admin/users/known/reset", tn.Manager, map[string]any{"reason": "lost phone\n\nSecure your account: https://evil.example"}, nil, 400, "validation_failed", "reason"},
		{"disable-all reason with a control character", "POST", "/v1/admin/2fa/disable-all", tn.Manager, map[string]any{"reason": "incident\x1b[2J"}, nil, 400, "validation_failed", "reason"},
		{"events limit", "GET", "/v1/admin/events?limit=0", tn.Manager, nil, nil, 400, "validation_failed", "limit"},
		{"events since", "GET", "/v1/admin/events?since=yesterday", tn.Manager, nil, nil, 400, "validation_failed", "since"},
		{"events cursor", "GET", "/v1/admin/events?cursor=nope", tn.Manager, nil, nil, 400, "validation_failed", "cursor"},
		{"empty history", "POST", "/v1/users/known/history", tn.App, map[string]any{"logins": []any{}}, nil, 400, "validation_failed", "logins"},
		{"history without time", "POST", "/v1/users/known/history", tn.App, map[string]any{"logins": []any{map[string]any{"ip": testIP}}}, nil, 400, "validation_failed", "logins[0].at"},
		{"bad ip", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"ip": "999.1.1.1"}), nil, 400, "invalid_ip", "ip"},
		{"ip with zone", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"ip": "fe80::1%eth0"}), nil, 400, "invalid_ip", "ip"},
		{"ip with port", "POST", "/v1/logins/evaluate", tn.App, login(map[string]any{"ip": "203.0.113.9:443"}), nil, 400, "invalid_ip", "ip"},
		{"failed login bad ip", "POST", "/v1/logins/failed", tn.App, map[string]any{"user_id": "u1", "ip": ""}, nil, 400, "invalid_ip", "ip"},
		{"history bad ip", "POST", "/v1/users/known/history", tn.App, map[string]any{"logins": []any{map[string]any{"ip": "x", "at": time.Now().UTC().Format(time.RFC3339)}}}, nil, 400, "validation_failed", "logins[0].ip"},
		{"unknown user", "GET", "/v1/users/nobody", tn.App, nil, nil, 404, "user_not_found", ""},
		{"unknown user for admin", "GET", "/v1/admin/users/nobody", tn.Manager, nil, nil, 404, "user_not_found", ""},
		{"unknown challenge", "GET", "/v1/challenges/ch_nope", tn.App, nil, nil, 404, "challenge_not_found", ""},
		{"verify unknown challenge", "POST", "/v1/challenges/ch_nope/verify", tn.App, map[string]any{"code": "123456"}, nil, 404, "challenge_not_found", ""},
		// A signed shard in a crafted id must not reach the key builder.
		{"challenge id with a negative shard", "GET", "/v1/challenges/ch_-1abcdefghijklmnopqrstuvwx", tn.App, nil, nil, 404, "challenge_not_found", ""},
		{"verify id with a negative shard", "POST", "/v1/challenges/ch_-1abcdefghijklmnopqrstuvwx/verify", tn.App, map[string]any{"code": "123456"}, nil, 404, "challenge_not_found", ""},
		{"unknown device", "DELETE", "/v1/users/known/devices/dv_nope", tn.App, nil, nil, 404, "device_not_found", ""},
		{"invalid phone", "POST", "/v1/users/known/sms", tn.App, map[string]any{"phone": "12"}, nil, 422, "phone_invalid", ""},
		{"drama phone", "POST", "/v1/users/known/sms", tn.App, map[string]any{"phone": "+447700900123"}, nil, 422, "phone_invalid", ""},
		{"fixed line", "POST", "/v1/users/known/sms", tn.App, map[string]any{"phone": "+61298765432"}, nil, 422, "phone_not_mobile", ""},
		{"no e-mail", "POST", "/v1/users/known/email-factor", tn.App, nil, nil, 422, "no_email", ""},
		{"no factor", "POST", "/v1/users/known/backup-codes", tn.App, nil, nil, 422, "no_factor", ""},
		{"no sms factor", "POST", "/v1/users/known/phone-change", tn.App, map[string]any{"new_phone": phone2}, nil, 422, "no_sms_factor", ""},
		{"unknown group", "PUT", "/v1/users/known", tn.App, map[string]any{"group": "staff"}, nil, 422, "unknown_group", "group"},
		{"unknown group for all", "POST", "/v1/admin/2fa/disable-all", tn.Manager, map[string]any{"reason": "x", "group": "staff"}, nil, 422, "unknown_group", "group"},
		{"bad report link", "POST", "/v1/report/garbage", "", nil, []string{"Accept", "application/json"}, 410, "report_link_invalid", ""},
		{"forged report link", "POST", "/v1/report/AAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "", nil, []string{"Accept", "application/json"}, 410, "report_link_invalid", ""},
		{"unsigned webhook", "POST", "/v1/webhooks/twilio/status", "", "MessageSid=SM1&MessageStatus=delivered", form, 403, "bad_signature", ""},
		{"forged webhook", "POST", "/v1/webhooks/twilio/status", "", "MessageSid=SM1&MessageStatus=delivered", append(form, "X-Twilio-Signature", "Zm9yZ2Vk"), 403, "bad_signature", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(t, tt.method, tt.path, tt.key, tt.body, tt.header...)
			wantError(t, r, tt.status, tt.code, tt.field)
			if id := r.Header.Get("X-Request-Id"); id == "" {
				t.Errorf("no X-Request-Id")
			}
		})
	}
}

// TestHealth checks the operations endpoints and the request id.
func TestHealth(t *testing.T) {
	s := start(t, apptest.Options{})
	if b := s.must(t, 200, "GET", "/healthz", "", nil); b["status"] != "ok" {
		t.Errorf("healthz: %v", b)
	}
	ready := s.must(t, 200, "GET", "/readyz", "", nil)
	if ready["status"] != "ready" || ready["redis"] != "ok" || ready["sms_driver"] != "twilio" || ready["mail_driver"] != "smtp" {
		t.Errorf("readyz: %v", ready)
	}
	m := s.do(t, "GET", "/metrics", "", nil)
	if m.Status != 200 || !strings.HasPrefix(m.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", m.Status, m.Header.Get("Content-Type"))
	}
	for _, want := range []string{`stepup_http_requests_total{method="GET",route="/readyz",status="200"} 1`,
		"stepup_http_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(m.Raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	r := s.do(t, "GET", "/healthz", "", nil, "X-Request-Id", "req-1234")
	if got := r.Header.Get("X-Request-Id"); got != "req-1234" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}
	r = s.do(t, "GET", "/healthz", "", nil, "X-Request-Id", "bad id\"")
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \"") {
		t.Errorf("X-Request-Id %q, want a fresh one", got)
	}

	// Without Redis, not ready.
	down := start(t, apptest.Options{NoWorkers: true})
	down.App.Close()
	r = down.do(t, "GET", "/readyz", "", nil)
	if r.Status != 503 || r.Body["status"] != "not_ready" || r.Body["redis"] != "unreachable" {
		t.Errorf("readyz without Redis: %d %s", r.Status, r.Raw)
	}
	if b := down.must(t, 200, "GET", "/healthz", "", nil); b["status"] != "ok" {
		t.Errorf("healthz without Redis: %v", b)
	}
}

// TestTwilioWebhook checks a signed delivery report reaches the challenge.
func TestTwilioWebhook(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	seen := len(s.Twilio.Messages())
	st := s.must(t, 201, "POST", "/v1/users/u1/sms", tn.App, map[string]any{"phone": phone1})
	ch := str(obj(st, "challenge"), "id")
	s.SMSCode(t, phone1, seen)
	var sid string
	for _, m := range s.Twilio.Messages() {
		if m.To == phone1 {
			sid = m.SID
		}
	}
	// The delivery worker records the send; wait for it so the report is
	// not overwritten.
	deadline := time.Now().Add(5 * time.Second)
	for str(s.must(t, 200, "GET", "/v1/challenges/"+ch, tn.App, nil), "delivery_status") == "queued" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	params := url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}, "To": {phone1}}
	sig := twilioSignature(s.Twilio.AuthToken(), "https://stepup.example.test/v1/webhooks/twilio/status", params)
	r := s.do(t, "POST", "/v1/webhooks/twilio/status", "", params.Encode(),
		"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
	if r.Status != 204 {
		t.Fatalf("signed report: %d %s", r.Status, r.Raw)
	}
	if got := s.must(t, 200, "GET", "/v1/challenges/"+ch, tn.App, nil)["delivery_status"]; got != "delivered" {
		t.Errorf("delivery_status %v after the report, want delivered", got)
	}
}

// twilioSignature is Twilio's X-Twilio-Signature: HMAC-SHA1 over the URL
// and the sorted form parameters.
func twilioSignature(token, u string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range keys {
		b.WriteString(k + params.Get(k))
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
