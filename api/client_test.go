package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/api/openapitest"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// server is a running stepupd spoken to over HTTP through the validating
// transport of openapitest: every exchange a test makes is also checked
// against api/openapi.yaml.
type server struct {
	*apptest.Env
}

func start(t *testing.T, o apptest.Options) server {
	t.Helper()
	return server{apptest.New(t, o)}
}

// reply is a decoded answer.
type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// do sends a request with a bearer key (none when key is ""); body may be
// nil, a string or []byte (sent as is) or any value (marshalled). header
// lists extra header names and values.
func (s server) do(t testing.TB, method, path, key string, body any, header ...string) reply {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{
		Transport:     openapitest.RoundTripper(t, nil),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := reply{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return out
}

// must is do failing the test unless the status is want.
func (s server) must(t testing.TB, want int, method, path, key string, body any) map[string]any {
	t.Helper()
	r := s.do(t, method, path, key, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r.Body
}

// wantError checks an error answer: its status, code and (when field is
// not "") the field it names.
func wantError(t testing.TB, r reply, status int, code, field string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d: %s", r.Status, status, r.Raw)
		return
	}
	e, _ := r.Body["error"].(map[string]any)
	if e == nil {
		t.Errorf("no error object: %s", r.Raw)
		return
	}
	if e["code"] != code {
		t.Errorf("code %v, want %s: %s", e["code"], code, r.Raw)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", r.Raw)
	}
	if field != "" && e["field"] != field {
		t.Errorf("field %v, want %q: %s", e["field"], field, r.Raw)
	}
}

// errField returns a field of an error answer.
func errField(r reply, name string) any {
	e, _ := r.Body["error"].(map[string]any)
	return e[name]
}

// obj and str walk a decoded answer: obj(b, "challenge")["id"].
func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

// tenant is one tenant with its keys.
type tenant struct {
	ID, App, Manager string
}

func (s server) tenant(t testing.TB, name string) tenant {
	t.Helper()
	var tn tenant
	tn.ID, tn.App, tn.Manager = s.Tenant(t, name)
	return tn
}

// Test phone numbers: Australia's fictional mobile range.
const (
	phone1 = "+61491570156"
	phone2 = "+61491570157"
)

const (
	testIP = "203.0.113.9"
	testUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)

// enrollSMS enrols user's phone and returns the first backup codes.
func (s server) enrollSMS(t testing.TB, app, user, phone string) []string {
	t.Helper()
	seen := len(s.Twilio.Messages())
	st := s.must(t, 201, "POST", "/v1/users/"+user+"/sms", app, map[string]any{"phone": phone})
	id := str(obj(st, "challenge"), "id")
	code := s.SMSCode(t, phone, seen)
	res := s.must(t, 200, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": code})
	if res["verified"] != true || res["purpose"] != "enroll_sms" {
		t.Fatalf("enrol verify: %v", res)
	}
	var codes []string
	for _, c := range obj(res, "result")["backup_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return codes
}

// loginChallenge evaluates a login of an enrolled user without history
// (challenged at cold start) and returns the challenge id.
func (s server) loginChallenge(t testing.TB, app, user string) string {
	t.Helper()
	ev := s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{
		"user_id": user, "ip": testIP, "user_agent": testUA, "device_id": "dev-" + user})
	if ev["decision"] != "challenge" {
		t.Fatalf("decision %v, want challenge: %v", ev["decision"], ev)
	}
	return str(obj(ev, "challenge"), "id")
}
