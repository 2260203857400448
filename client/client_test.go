package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/client"
	"github.com/stepup-auth/stepup/internal/apptest"
)

const (
	phone    = "+61491570156"
	newPhone = "+61491570157"
	loginIP  = "203.0.113.7"
	chrome   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

// setup starts a stepupd and returns clients for a fresh tenant.
func setup(t *testing.T) (env *apptest.Env, tenant string, app, mgr, op *client.Client) {
	t.Helper()
	env = apptest.New(t, apptest.Options{})
	t.Cleanup(func() { logInternalErrors(t, env) })
	tenant, appKey, mgrKey := env.Tenant(t, "acme")
	return env, tenant, client.New(env.URL, appKey), client.New(env.URL, mgrKey), client.New(env.URL, apptest.OperatorKey)
}

// logInternalErrors shows the server's log of internal errors when a test
// failed: the API shows only a request id.
func logInternalErrors(t *testing.T, env *apptest.Env) {
	if !t.Failed() {
		return
	}
	for _, l := range strings.Split(env.Logs.String(), "\n") {
		if strings.Contains(l, `"internal error"`) {
			t.Log("server:", l)
		}
	}
}

// sms runs send and returns the code of the next SMS to `to`.
func sms(t *testing.T, env *apptest.Env, to string, send func()) string {
	t.Helper()
	seen := len(env.Twilio.Messages())
	send()
	return env.SMSCode(t, to, seen)
}

// apiError asserts that err is an *APIError with status and code.
func apiError(t *testing.T, err error, status int, code string) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *client.APIError %d %s", err, err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("err = %d %q (%v), want %d %q", ae.Status, ae.Code, ae, status, code)
	}
	if client.ErrorCode(err) != code {
		t.Fatalf("ErrorCode = %q, want %q", client.ErrorCode(err), code)
	}
	return ae
}

// enrolSMS registers user and enrols phone as their SMS factor.
func enrolSMS(t *testing.T, ctx context.Context, env *apptest.Env, app *client.Client, user, to string) {
	t.Helper()
	if _, err := app.PutUser(ctx, user, client.UserUpdate{Email: client.Ptr(user + "@example.test")}); err != nil {
		t.Fatal(err)
	}
	var st client.Started
	code := sms(t, env, to, func() {
		var err error
		if st, err = app.StartSMS(ctx, user, to, client.Actor{IP: loginIP, UserAgent: chrome}); err != nil {
			t.Fatal(err)
		}
	})
	if st.Challenge.Purpose != "enroll_sms" || st.Challenge.Channel != client.ChannelSMS || st.StepUp {
		t.Fatalf("StartSMS = %+v", st)
	}
	res, err := app.Verify(ctx, st.Challenge.ID, client.VerifyRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Purpose != "enroll_sms" {
		t.Fatalf("Verify = %+v", res)
	}
}

func TestOperator(t *testing.T) {
	ctx := t.Context()
	env, tenant, _, _, op := setup(t)

	tn, err := op.CreateTenant(ctx, "globex", "Globex Corp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tn.ID, "tn_") || tn.Name != "globex" || tn.SenderName != "Globex Corp" || tn.CreatedAt.IsZero() {
		t.Fatalf("CreateTenant = %+v", tn)
	}
	ts, err := op.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, x := range ts {
		ids = append(ids, x.ID)
	}
	if !slices.Contains(ids, tn.ID) || !slices.Contains(ids, tenant) {
		t.Fatalf("Tenants = %v, want %s and %s", ids, tn.ID, tenant)
	}

	k, err := op.CreateKey(ctx, tn.ID, client.KeyManager, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if k.Secret == "" || k.Kind != client.KeyManager || k.Label != "ops" || k.Tenant != tn.ID {
		t.Fatalf("CreateKey = %+v", k)
	}
	keys, err := op.Keys(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != k.ID || keys[0].Label != "ops" {
		t.Fatalf("Keys = %+v", keys)
	}
	mgr := client.New(env.URL+"/", k.Secret) // a trailing slash is fine
	if _, err := mgr.Policy(ctx); err != nil {
		t.Fatalf("the new manager key: %v", err)
	}
	if err := op.RevokeKey(ctx, tn.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err = mgr.Policy(ctx)
	apiError(t, err, 401, "unauthenticated")
	apiError(t, op.RevokeKey(ctx, tn.ID, k.ID), 404, "key_not_found")
	_, err = op.Keys(ctx, "tn_nope")
	apiError(t, err, 404, "tenant_not_found")
	_, err = op.CreateKey(ctx, tn.ID, "operator", "")
	ae := apiError(t, err, 400, "validation_failed")
	if ae.Field() != "kind" {
		t.Errorf("Field = %q, want kind", ae.Field())
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	env, _, app, mgr, _ := setup(t)

	_, err := client.New(env.URL, "su_manager_nope").Policy(ctx)
	ae := apiError(t, err, 401, "unauthenticated")
	if ae.Message != "missing or unknown API key" {
		t.Errorf("Message = %q", ae.Message)
	}
	if got, want := err.Error(), "unauthenticated: missing or unknown API key (HTTP 401)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = client.New(env.URL, "").Tenants(ctx)
	apiError(t, err, 401, "unauthenticated")

	_, err = app.Policy(ctx)
	if got, want := apiError(t, err, 403, "forbidden").Error(), "forbidden: this key may not do that (HTTP 403)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	_, err = mgr.UpdatePolicy(ctx, client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{Mode: client.Ptr("sometimes")}})
	ae = apiError(t, err, 400, "validation_failed")
	if ae.Field() != "mode" || !strings.Contains(ae.Message, "mode") {
		t.Errorf("APIError = %+v", ae)
	}
	_, err = mgr.UpdatePolicyJSON(ctx, json.RawMessage(`{"colour":"blue"}`))
	apiError(t, err, 400, "unknown_field")

	_, err = mgr.AdminUser(ctx, "nobody")
	apiError(t, err, 404, "user_not_found")

	// Retry-After: a resend within the cooldown.
	enrolSMS(t, ctx, env, app, "alice", phone)
	st, err := app.StartDisable(ctx, "alice", client.Actor{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.Resend(ctx, st.Challenge.ID)
	ae = apiError(t, err, 429, "rate_limited")
	if ae.RetryAfter <= 0 || ae.RetryAfter > 10*time.Minute {
		t.Errorf("RetryAfter = %v", ae.RetryAfter)
	}
	// A wrong code says how many attempts are left.
	_, err = app.Verify(ctx, st.Challenge.ID, client.VerifyRequest{Code: "000000"})
	var we *client.APIError
	if !errors.As(err, &we) || we.Status/100 != 4 {
		t.Fatalf("wrong code: %v", err)
	}
	if _, ok := we.Fields["attempts_left"]; !ok {
		t.Errorf("wrong code: Fields = %v, want attempts_left", we.Fields)
	}
}

// TestErrorNotFromStepup covers an answer a proxy made up.
func TestErrorNotFromStepup(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("upstream connect error"))
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, "k").Tenants(t.Context())
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v", err)
	}
	if ae.Status != 502 || ae.Code != "" || ae.RetryAfter != 7*time.Second || ae.Error() != "Bad Gateway: upstream connect error (HTTP 502)" {
		t.Fatalf("APIError = %+v (%v)", ae, ae)
	}

	_, err = client.New("not a url", "k").Tenants(t.Context())
	if err == nil || !strings.Contains(err.Error(), "bad base URL") {
		t.Fatalf("bad base URL: err = %v", err)
	}
	// WithHTTPClient's client is the one used.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("no network in this test")
	})}
	err = client.New(srv.URL, "k", client.WithHTTPClient(hc)).Health(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no network in this test") {
		t.Fatalf("WithHTTPClient: err = %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPolicy(t *testing.T) {
	ctx := t.Context()
	_, _, _, mgr, _ := setup(t)

	v, err := mgr.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != client.ModeOptional || v.GraceLogins != 5 || len(v.AllowedChannels) != 4 || v.Thresholds.Deny <= v.Thresholds.Challenge {
		t.Fatalf("default policy = %+v", v)
	}

	// Typed merge: named fields change, the rest stay; one threshold alone.
	v, err = mgr.UpdatePolicy(ctx, client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{
		Mode:            client.Ptr(client.ModeRequired),
		GraceLogins:     client.Ptr(0), // a zero is sent, not dropped
		Thresholds:      &client.ThresholdsUpdate{Deny: client.Ptr(95)},
		AllowedChannels: []client.Channel{client.ChannelTOTP, client.ChannelSMS},
		SMSCountries:    []string{"AU", "GB"},
		ManagerEmails:   []string{"it@acme.example"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != "required" || v.GraceLogins != 0 || v.Thresholds.Deny != 95 || v.Challenge != "risk_based" ||
		!slices.Equal(v.AllowedChannels, []client.Channel{"totp", "sms"}) || !slices.Equal(v.SMSCountries, []string{"AU", "GB"}) ||
		v.RememberDeviceDays != 30 {
		t.Fatalf("after update = %+v", v)
	}

	// Groups replace all groups; an empty list clears a list field.
	v, err = mgr.UpdatePolicy(ctx, client.PolicyUpdate{
		PolicyOverrides: client.PolicyOverrides{SMSCountries: []string{}},
		Groups: map[string]client.PolicyOverrides{
			"staff":    {Mode: client.Ptr(client.ModeRequired), AllowedChannels: []client.Channel{client.ChannelTOTP}},
			"patients": {Mode: client.Ptr(client.ModeOptional)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.SMSCountries) != 0 || len(v.Groups) != 2 || *v.Groups["staff"].Mode != "required" ||
		v.EffectiveGroups["patients"].Mode != "optional" || v.EffectiveGroups["patients"].Thresholds.Deny != 95 {
		t.Fatalf("after groups = %+v", v)
	}

	// Raw merge body; a GET answer sent back whole is accepted.
	v, err = mgr.UpdatePolicyJSON(ctx, json.RawMessage(`{"groups":{"staff":{"grace_logins":1}},"challenge":"every_login"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Groups) != 1 || v.Challenge != "every_login" || v.EffectiveGroups["staff"].GraceLogins != 1 {
		t.Fatalf("after raw = %+v", v)
	}
	var raw json.RawMessage
	if err := mgr.Do(ctx, "GET", "/v1/admin/policy", nil, &raw); err != nil {
		t.Fatal(err)
	}
	again, err := mgr.UpdatePolicyJSON(ctx, raw)
	if err != nil {
		t.Fatalf("sending GET's answer back: %v", err)
	}
	if again.Mode != v.Mode || again.Challenge != v.Challenge {
		t.Fatalf("round trip changed the policy: %+v", again)
	}
}

// TestAppLifecycle walks the app key's calls: a login, every lifecycle
// start, devices, session events and history.
func TestAppLifecycle(t *testing.T) {
	ctx := t.Context()
	env, _, app, mgr, _ := setup(t)

	// Import history for a new user, then evaluate.
	n, err := app.ImportHistory(ctx, "carol", []client.PastLogin{
		{IP: loginIP, UserAgent: chrome, DeviceID: "dev-1", At: time.Now().Add(-48 * time.Hour)},
		{IP: loginIP, UserAgent: chrome, DeviceID: "dev-1", At: time.Now().Add(-24 * time.Hour)},
	})
	if err != nil || n != 2 {
		t.Fatalf("ImportHistory = %d, %v", n, err)
	}
	if err := app.FailedLogin(ctx, client.FailedLoginRequest{UserID: "carol", IP: loginIP, UserAgent: chrome}); err != nil {
		t.Fatal(err)
	}
	ev, err := app.Evaluate(ctx, client.EvaluateRequest{UserID: "carol", IP: loginIP, UserAgent: chrome, DeviceID: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ev.LoginID, "lg_") || ev.Decision != client.DecisionAllow || !ev.Enrollment.Suggested || ev.Risk.Level == "" {
		t.Fatalf("Evaluate = %+v", ev)
	}
	_, err = app.Evaluate(ctx, client.EvaluateRequest{UserID: "carol", IP: "not-an-ip"})
	apiError(t, err, 400, "invalid_ip")

	// Enrol SMS; a login is then challenged (every_login) and remembered.
	enrolSMS(t, ctx, env, app, "dave", phone)
	if _, err := mgr.UpdatePolicy(ctx, client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{Challenge: client.Ptr(client.ChallengeEveryLogin)}}); err != nil {
		t.Fatal(err)
	}
	var login client.Evaluation
	code := sms(t, env, phone, func() {
		if login, err = app.Evaluate(ctx, client.EvaluateRequest{UserID: "dave", IP: loginIP, UserAgent: chrome, DeviceID: "dev-2"}); err != nil {
			t.Fatal(err)
		}
	})
	if login.Decision != client.DecisionChallenge || login.Challenge == nil || login.Challenge.Purpose != "login" ||
		!slices.Contains(login.Challenge.AvailableChannels, client.ChannelSMS) {
		t.Fatalf("Evaluate = %+v", login)
	}
	ch, err := app.Challenge(ctx, login.Challenge.ID)
	if err != nil || ch.Status != "pending" || ch.AttemptsLeft < 1 || ch.Destination == "" {
		t.Fatalf("Challenge = %+v, %v", ch, err)
	}
	sw, err := app.SwitchChannel(ctx, login.Challenge.ID, client.ChannelSMS)
	if err != nil || sw.ID != login.Challenge.ID {
		t.Fatalf("SwitchChannel to the same channel = %+v, %v", sw, err)
	}
	_, err = app.SwitchChannel(ctx, login.Challenge.ID, client.ChannelTOTP)
	if client.ErrorCode(err) == "" {
		t.Fatalf("SwitchChannel to a factor dave lacks: err = %v", err)
	}
	res, err := app.Verify(ctx, login.Challenge.ID, client.VerifyRequest{Code: code, RememberDevice: true, IP: loginIP, UserAgent: chrome})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Purpose != "login" || res.Result.LoginID != login.LoginID || res.Result.DeviceToken == "" {
		t.Fatalf("Verify = %+v", res)
	}
	again, err := app.Evaluate(ctx, client.EvaluateRequest{UserID: "dave", IP: loginIP, UserAgent: chrome, DeviceID: "dev-2", DeviceToken: res.Result.DeviceToken})
	if err != nil || again.Decision != client.DecisionAllow {
		t.Fatalf("Evaluate with the device token = %+v, %v", again, err)
	}
	devs, err := app.Devices(ctx, "dave")
	if err != nil || len(devs) != 1 || devs[0].ID == "" {
		t.Fatalf("Devices = %+v, %v", devs, err)
	}
	if n, err := app.ForgetDevice(ctx, "dave", devs[0].ID); err != nil || n != 1 {
		t.Fatalf("ForgetDevice = %d, %v", n, err)
	}
	if n, err := app.ForgetDevices(ctx, "dave"); err != nil || n != 0 {
		t.Fatalf("ForgetDevices = %d, %v", n, err)
	}
	if n, err := app.PasswordChanged(ctx, "dave", client.Actor{IP: loginIP}); err != nil || n != 0 {
		t.Fatalf("PasswordChanged = %d, %v", n, err)
	}
	if n, err := app.SignedOutEverywhere(ctx, "dave", client.Actor{}); err != nil || n != 0 {
		t.Fatalf("SignedOutEverywhere = %d, %v", n, err)
	}

	// Backup codes: proven with the SMS factor.
	var st client.Started
	code = sms(t, env, phone, func() {
		if st, err = app.StartBackupCodes(ctx, "dave", client.Actor{}); err != nil {
			t.Fatal(err)
		}
	})
	res, err = app.Verify(ctx, st.Challenge.ID, client.VerifyRequest{Code: code})
	if err != nil || len(res.Result.BackupCodes) == 0 {
		t.Fatalf("backup codes: %+v, %v", res, err)
	}

	// TOTP: a step-up on SMS, then the secret, then a TOTP code.
	code = sms(t, env, phone, func() {
		if st, err = app.StartTOTP(ctx, "dave", client.Actor{}); err != nil {
			t.Fatal(err)
		}
	})
	if !st.StepUp || st.Secret != "" {
		t.Fatalf("StartTOTP with a factor = %+v, want a step-up without the secret", st)
	}
	res, err = app.Verify(ctx, st.Challenge.ID, client.VerifyRequest{Code: code})
	if err != nil || res.Result.NextChallenge == nil || res.Result.Secret == "" || !strings.HasPrefix(res.Result.OTPAuthURI, "otpauth://") || res.Result.QRPNG == "" {
		t.Fatalf("step-up for TOTP = %+v, %v", res, err)
	}
	totpCode, err := totp.GenerateCode(res.Result.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res, err = app.Verify(ctx, res.Result.NextChallenge.ID, client.VerifyRequest{Code: totpCode}); err != nil || res.Purpose != "enroll_totp" {
		t.Fatalf("enrol TOTP = %+v, %v", res, err)
	}

	// E-mail factor: a step-up (now on TOTP, first in the policy's order).
	st, err = app.StartEmailFactor(ctx, "dave", client.Actor{})
	if err != nil || !st.StepUp {
		t.Fatalf("StartEmailFactor = %+v, %v", st, err)
	}

	// Phone change: the old factor first (TOTP now), then the new number.
	st, err = app.StartPhoneChange(ctx, "dave", newPhone, client.Actor{})
	if err != nil || st.Challenge.ID == "" {
		t.Fatalf("StartPhoneChange = %+v, %v", st, err)
	}
	u, err := app.GetUser(ctx, "dave")
	if err != nil || !u.PhoneChangePending || !u.Enrolled || len(u.Factors) != 2 {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}

	st, err = app.StartDisable(ctx, "dave", client.Actor{})
	if err != nil || st.Challenge.Purpose != "disable" {
		t.Fatalf("StartDisable = %+v, %v", st, err)
	}
}

func TestDeleteUser(t *testing.T) {
	ctx := t.Context()
	env, _, app, _, _ := setup(t)
	enrolSMS(t, ctx, env, app, "gus", phone)
	if err := app.DeleteUser(ctx, "gus"); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	_, err := app.GetUser(ctx, "gus")
	apiError(t, err, 404, "user_not_found")
	apiError(t, app.DeleteUser(ctx, "gus"), 404, "user_not_found")
}

func TestEvents(t *testing.T) {
	ctx := t.Context()
	env, tenant, app, mgr, _ := setup(t)
	start := time.Now().Add(-time.Minute)

	for _, n := range []int{1, 2, 3} {
		if _, err := mgr.UpdatePolicy(ctx, client.PolicyUpdate{PolicyOverrides: client.PolicyOverrides{GraceLogins: client.Ptr(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	enrolSMS(t, ctx, env, app, "erin", phone)
	if _, err := mgr.ResetUser(ctx, "erin", "lost phone"); err != nil {
		t.Fatal(err)
	}
	_, err := mgr.ResetUser(ctx, "erin", " ")
	apiError(t, err, 400, "validation_failed")
	r, err := mgr.DisableAll(ctx, "nobody left", "")
	if err != nil || r.Reset != 0 {
		t.Fatalf("DisableAll = %+v, %v", r, err)
	}
	_, err = mgr.DisableAll(ctx, "x", "no-such-group")
	apiError(t, err, 422, "unknown_group")

	p, err := mgr.Events(ctx, client.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range p.Events {
		types = append(types, ev.Type)
		if ev.Tenant != tenant || ev.At.IsZero() || ev.ID == "" {
			t.Errorf("event = %+v", ev)
		}
	}
	want := []string{"admin_reset", "sms_enrolled", "policy_changed", "policy_changed", "policy_changed"}
	if !slices.Equal(types, want) {
		t.Fatalf("types = %v, want %v (newest first)", types, want)
	}
	reset := p.Events[0]
	if reset.UserID != "erin" || reset.Actor != "manager" || reset.Details["reason"] != "lost phone" {
		t.Errorf("admin_reset = %+v", reset)
	}

	// Filters.
	p, err = mgr.Events(ctx, client.EventQuery{UserID: "erin", Type: "sms_enrolled", Since: start})
	if err != nil || len(p.Events) != 1 || p.Events[0].Type != "sms_enrolled" {
		t.Fatalf("filtered = %+v, %v", p, err)
	}
	p, err = mgr.Events(ctx, client.EventQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(p.Events) != 0 || p.Events == nil {
		t.Fatalf("future since = %+v, %v", p, err)
	}

	// Cursor paging, by hand and with AllEvents.
	p, err = mgr.Events(ctx, client.EventQuery{Limit: 2})
	if err != nil || len(p.Events) != 2 || p.NextCursor == "" {
		t.Fatalf("page 1 = %+v, %v", p, err)
	}
	p2, err := mgr.Events(ctx, client.EventQuery{Limit: 2, Cursor: p.NextCursor})
	if err != nil || len(p2.Events) != 2 || p2.Events[0].Type != "policy_changed" {
		t.Fatalf("page 2 = %+v, %v", p2, err)
	}
	var all []string
	for ev, err := range mgr.AllEvents(ctx, client.EventQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ev.Type)
	}
	if !slices.Equal(all, want) {
		t.Fatalf("AllEvents = %v, want %v", all, want)
	}
	for _, err := range client.New(env.URL, "bad").AllEvents(ctx, client.EventQuery{}) {
		apiError(t, err, 401, "unauthenticated")
	}
	_, err = mgr.Events(ctx, client.EventQuery{Limit: 5000})
	apiError(t, err, 400, "validation_failed")
}

// TestEventsCursorWithFilter: a filtered page that comes out exactly full
// must still carry a cursor when older matching events exist.
func TestEventsCursorWithFilter(t *testing.T) {
	ctx := t.Context()
	env, _, app, mgr, _ := setup(t)
	enrolSMS(t, ctx, env, app, "hal", phone) // sms_enrolled (older)
	if _, err := mgr.ResetUser(ctx, "hal", "lost phone"); err != nil {
		t.Fatal(err)
	}
	enrolSMS(t, ctx, env, app, "hal", phone) // sms_enrolled (newer)

	var got []string
	for ev, err := range mgr.AllEvents(ctx, client.EventQuery{UserID: "hal", Type: "sms_enrolled", Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.ID)
	}
	if len(got) != 2 {
		t.Errorf("paging sms_enrolled of hal one by one found %d events, want 2", len(got))
	}
	p, err := mgr.Events(ctx, client.EventQuery{UserID: "hal", Type: "sms_enrolled"})
	if err != nil || len(p.Events) != 2 {
		t.Fatalf("unpaged: %+v, %v", p, err)
	}
}

// TestDotSegments: an id of "." or ".." is a path segment the server
// would resolve (and answer with a redirect the HTTP client follows as a
// GET): ForgetDevice(alice, "..") got alice's account back and reported
// success, forgetting nothing. Such ids must reach the server as ids.
func TestDotSegments(t *testing.T) {
	ctx := t.Context()
	env, tenant, app, _, op := setup(t)
	enrolSMS(t, ctx, env, app, "alice", phone)
	for _, id := range []string{".", ".."} {
		_, err := app.ForgetDevice(ctx, "alice", id)
		apiError(t, err, 404, "device_not_found")
		apiError(t, op.RevokeKey(ctx, tenant, id), 404, "key_not_found")
	}
}

// TestRedirectIsAnError: a base URL that answers with a redirect (http://
// in front of an https-only ingress, say) must fail every call. Followed,
// a 301 or 302 turned DeleteUser's DELETE into a GET of the user, which
// succeeded: the user was not erased and the host app was told it was.
func TestRedirectIsAnError(t *testing.T) {
	ctx := t.Context()
	env := apptest.New(t, apptest.Options{})
	_, appKey, _ := env.Tenant(t, "acme")
	app := client.New(env.URL, appKey)
	enrolSMS(t, ctx, env, app, "alice", phone)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, env.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer front.Close()
	moved := client.New(front.URL, appKey)
	ae := apiError(t, moved.DeleteUser(ctx, "alice"), 301, "")
	if !strings.Contains(ae.Error(), env.URL) {
		t.Errorf("error %q does not say where the server moved", ae)
	}
	if _, err := app.GetUser(ctx, "alice"); err != nil {
		t.Errorf("alice after a redirected DeleteUser: %v", err)
	}
	if _, err := moved.ForgetDevices(ctx, "alice"); err == nil {
		t.Error("ForgetDevices through a redirect succeeded")
	}
}
