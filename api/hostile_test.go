package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stepup-auth/stepup/api/openapitest"
	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// TestHostileInput sends every operation of api/openapi.yaml what an
// attacker would: odd path parameters (too long, NUL, encoded slashes,
// another tenant's ids, secrets), malformed queries, broken and
// mistyped bodies, oversize bodies and headers, missing and doubled keys.
// Every answer must be a documented 4xx with the JSON error body, never a
// 5xx, a 2xx for what the document calls invalid, or a key echoed; the
// server must keep answering, and the state of both tenants must be what
// it was.
func TestHostileInput(t *testing.T) {
	s := start(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) {
		// Every route is tried with bad keys from one address.
		c.Limits.AuthFailuresPerIPMinute = 1_000_000
	}})
	a, b := s.tenant(t, "alpha"), s.tenant(t, "beta")
	h := hostile{t: t, s: s, doc: openapitest.Default(t), a: a}

	// Tenant A: u1 enrolled, a pending login challenge. Tenant B: the
	// victim, with its own challenge and login, whose ids A's keys try.
	s.must(t, 200, "PUT", "/v1/users/u1", a.App, map[string]any{"email": "u1@example.test"})
	s.enrollSMS(t, a.App, "u1", phone1)
	evA := s.must(t, 200, "POST", "/v1/logins/evaluate", a.App, map[string]any{"user_id": "u1", "ip": testIP, "user_agent": testUA})
	s.must(t, 200, "PUT", "/v1/users/victim", b.App, map[string]any{"email": "victim@example.test"})
	s.enrollSMS(t, b.App, "victim", phone2)
	evB := s.must(t, 200, "POST", "/v1/logins/evaluate", b.App, map[string]any{"user_id": "victim", "ip": testIP, "user_agent": testUA})
	chA, chB := str(obj(evA, "challenge"), "id"), str(obj(evB, "challenge"), "id")
	loginA, loginB := str(evA, "login_id"), str(evB, "login_id")
	if chA == "" || chB == "" || loginA == "" || loginB == "" {
		t.Fatalf("fixtures: %v %v", evA, evB)
	}
	keyB := keyIDs(s.must(t, 200, "GET", "/v1/tenants/"+b.ID+"/keys", apptest.OperatorKey, nil))[0]

	h.secrets = []string{a.App, a.Manager, b.App, b.Manager, apptest.OperatorKey, garbageKey}
	snapshot := func() string {
		var out []string
		for _, r := range []struct{ path, key string }{
			{"/v1/users/u1", a.App}, {"/v1/challenges/" + chA, a.App}, {"/v1/admin/policy", a.Manager},
			{"/v1/users/victim", b.App}, {"/v1/challenges/" + chB, b.App}, {"/v1/admin/policy", b.Manager},
			{"/v1/users/victim/devices", b.App}, {"/v1/tenants/" + b.ID + "/keys", apptest.OperatorKey},
		} {
			// The delivery worker moves on by itself.
			raw := deliveryStatus.ReplaceAll(s.do(t, "GET", r.path, r.key, nil).Raw, nil)
			out = append(out, r.path+" "+string(raw))
		}
		return strings.Join(out, "\n")
	}
	before := snapshot()

	// The values a well-formed request of tenant A fills the path with;
	// none names something a request could destroy.
	valid := map[string]string{"tenant": a.ID, "key": "key_nope", "login_id": loginA, "id": chA,
		"user": "u1", "device": "dv_nope", "passkey": "pk_nope", "token": "nope"}
	// The values of a well-formed request that may succeed.
	spare := map[string]string{}
	for k, v := range valid {
		spare[k] = v
	}
	spare["user"], spare["id"], spare["login_id"] = "u-spare", "ch_nope", "lg_nope"
	// Hostile values for every path parameter: each names nothing of
	// tenant A, so no request may succeed.
	common := []string{"%00", "a%00b", "%FF", "%C0%AF", "%09", "%2F", "a%2Fb", "..", "%2E%2E", "..%2F..%2Fhealthz",
		strings.Repeat("a", 1000), "%E2%80%AE", "ü名前😀", "%25", "%7B%7D", "null"}
	byParam := map[string][]string{
		"tenant":   {b.ID + "x", "key_" + b.ID, a.App, "tn_-1"},
		"key":      {keyB, a.App, a.Manager, "tn_" + a.ID, "key_-1"},
		"login_id": {loginB, chA, "lg_", "lg_-1abcdefghijklmnopqrstuvwx"},
		"id":       {chB, loginA, "ch_", "ch_99999999999999999999abcdefghij"},
		"user":     {strings.Repeat("u", 129), "u1%0A", "u1%0D%0AX-Evil:%201"},
		"device":   {"dv_" + strings.Repeat("d", 1000), a.App},
		"passkey":  {"pk_" + strings.Repeat("p", 1000), a.App},
		"token":    {strings.Repeat("A", 1000) + "." + strings.Repeat("B", 1000), "a.b.c", "."},
	}
	// A user id may hold any printable character: these are valid ids of
	// users A does not have, so a 2xx is fine (PUT creates one).
	validUser := map[string]bool{"..": true, "%2E%2E": true, "%2F": true, "a%2Fb": true, "..%2F..%2Fhealthz": true,
		"%E2%80%AE": true, "ü名前😀": true, "%25": true, "%7B%7D": true, "null": true, "victim": true}
	byParam["user"] = append(byParam["user"], "victim")

	// Bodies no operation accepts (but null and empty, where the body is
	// optional), built once.
	bodies := []struct {
		name    string
		body    []byte
		emptyOK bool
	}{
		{"invalid json", []byte(`{"a":`), false},
		{"null", []byte(`null`), true},
		{"empty", []byte(``), true},
		{"array", []byte(`[]`), false},
		{"string", []byte(`"x"`), false},
		{"number", []byte(`42`), false},
		{"true", []byte(`true`), false},
		{"unknown field", []byte(`{"zz_unknown":1}`), false},
		{"trailing", []byte(`{} {}`), false},
		{"trailing garbage", []byte(`{}x`), false},
		{"bom", []byte("\ufeff{}"), false},
		{"invalid utf-8", []byte("{\"zz\xff\":1}"), false},
		{"nested objects", []byte(`{"a":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20001)), false},
		{"nested arrays", []byte(`{"a":` + strings.Repeat(`[`, 30000) + strings.Repeat(`]`, 30000) + `}`), false},
		{"10 MB", []byte(`{"a":"` + strings.Repeat("x", 10<<20) + `"}`), false},
		{"10 MB of spaces", []byte(strings.Repeat(" ", 10<<20) + `{}`), false},
	}

	paths := sortedPaths(h.doc)
	for _, p := range paths {
		item := h.doc.T.Paths.Value(p)
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, method := range methods {
			op := ops[method]
			name := method + " " + p
			keyKind := opKey(op)
			key := map[string]string{"appKey": a.App, "managerKey": a.Manager, "operatorKey": apptest.OperatorKey}[keyKind]
			body := h.baseBody(method, p)
			fill := func(vals map[string]string) string {
				out := p
				for k, v := range vals {
					out = strings.ReplaceAll(out, "{"+k+"}", v)
				}
				return out
			}
			path := fill(valid)
			t.Run(name, func(t *testing.T) {
				h := h
				h.t = t
				h.op, h.opName = op, name

				// Keys: none, garbage, empty, huge, doubled, of the wrong kinds.
				if keyKind != "" {
					auth := []struct {
						name   string
						header []string
					}{
						{"no key", nil},
						{"garbage key", []string{"Bearer " + garbageKey}},
						{"empty bearer", []string{"Bearer "}},
						{"huge key", []string{"Bearer " + strings.Repeat("k", 64<<10)}},
						{"basic", []string{"Basic " + key}},
						{"key twice, good first", []string{"Bearer " + key, "Bearer " + garbageKey}},
						{"key twice, good last", []string{"Bearer " + garbageKey, "Bearer " + key}},
						{"same key twice", []string{"Bearer " + key, "Bearer " + key}},
					}
					for kind, other := range map[string]string{"appKey": a.App, "managerKey": a.Manager, "operatorKey": apptest.OperatorKey} {
						if kind != keyKind {
							auth = append(auth, struct {
								name   string
								header []string
							}{"key of kind " + kind, []string{"Bearer " + other}})
						}
					}
					for _, c := range auth {
						r := h.send(c.name, method, path, c.header, body, "application/json")
						h.wantRefused(c.name, r, 401, 403)
					}
				}

				// Path parameters, one at a time.
				for _, param := range pathParams(p) {
					for _, v := range append(slices.Clone(common), byParam[param]...) {
						vals := map[string]string{}
						for k, x := range valid {
							vals[k] = x
						}
						vals[param] = v
						r := h.send("path "+param+"="+clipName(v), method, fill(vals), bearer(key), body, "application/json")
						if dotSegment(v) && h.redirected(r) {
							continue // net/http's ServeMux cleans the path first
						}
						if param == "user" && validUser[v] || p == "/v1/report/{token}" && method == http.MethodGet {
							h.wantNoFault("path "+param+"="+clipName(v), r)
							continue
						}
						h.wantRefused("path "+param+"="+clipName(v), r)
					}
				}

				// Query parameters.
				if hasQuery(op) {
					for _, q := range []string{"limit=-1", "limit=0", "limit=1001", "limit=1e12", "limit=abc", "limit=99999999999999999999",
						"limit=%00", "limit=abc&limit=1", "since=yesterday", "since=2026-13-45T99:99:99Z",
						"since=%00", "since=1&since=2", "cursor=garbage", "cursor=" + strings.Repeat("c", 5000), "cursor=%FF%FE",
						"cursor=-1", "cursor=99999999999999999999-0", "user_id=" + strings.Repeat("u", 129), "user_id=%00",
						"user_id=u%0A1"} {
						r := h.send("query "+clipName(q), method, path+"?"+q, bearer(key), body, "application/json")
						h.wantRefused("query "+clipName(q), r)
					}
					// Not invalid: the first of repeated parameters counts, and
					// an unknown event type matches nothing.
					for _, q := range []string{"limit=1&limit=abc", "type=%00", "type=" + strings.Repeat("t", 5000)} {
						h.wantNoFault("query "+clipName(q), h.send("query "+clipName(q), method, path+"?"+q, bearer(key), body, "application/json"))
					}
				}

				// Bodies.
				if op.RequestBody != nil && op.RequestBody.Value.Content.Get("application/x-www-form-urlencoded") != nil {
					for _, c := range []struct{ name, body string }{
						{"bad escape", "MessageSid=%zz&MessageStatus=delivered"},
						{"10 MB", "MessageSid=" + strings.Repeat("x", 10<<20)},
						{"json", `{"MessageSid":"SM1"}`},
					} {
						r := h.send("form "+c.name, method, path, bearer(key), c.body, "application/x-www-form-urlencoded")
						h.wantRefused("form "+c.name, r)
					}
				}
				if op.RequestBody == nil || op.RequestBody.Value.Content.Get("application/json") == nil {
					return
				}
				optional := !op.RequestBody.Value.Required
				for _, c := range bodies {
					if optional && c.emptyOK {
						// No body is a good one here.
						h.wantNoFault("body "+c.name, h.send("body "+c.name, method, fill(spare), bearer(key), c.body, "application/json"))
						continue
					}
					h.wantRefused("body "+c.name, h.send("body "+c.name, method, path, bearer(key), c.body, "application/json"))
				}
				// A well-formed body under another media type is read as
				// JSON all the same (the document says so in words; its
				// operations name application/json only): the answer is the
				// JSON one's.
				want := h.send("content type json", method, fill(spare), bearer(key), body, "application/json")
				h.wantNoFault("content type json", want)
				for _, ctype := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
					what := "content type " + ctype
					r := h.send(what, method, fill(spare), bearer(key), body, ctype)
					r.docErr = nil
					h.wantNoFault(what, r)
					if r.status != want.status && r.status != http.StatusTooManyRequests && want.status != http.StatusTooManyRequests {
						h.t.Errorf("%s: %d, as application/json %d: %s", what, r.status, want.status, clip(r.raw))
					}
				}
				// Each field: wrong types, overflowing numbers, huge and
				// broken strings; the other fields stay well-formed.
				for _, field := range bodyFields(op) {
					for _, c := range hostileValues(field.schema) {
						raw := h.withField(body, field.name, c.raw)
						what := "field " + field.name + " " + c.name
						h.wantRefused(what, h.send(what, method, path, bearer(key), raw, "application/json"))
					}
					for _, c := range anyValues() {
						if !field.schema.Type.IsEmpty() {
							break
						}
						raw := h.withField(body, field.name, c.raw)
						what := "field " + field.name + " " + c.name
						h.wantNoFault(what, h.send(what, method, path, bearer(key), raw, "application/json"))
					}
					// The same field twice: the JSON names it once.
					if base, ok := body[field.name]; ok {
						what := "field " + field.name + " twice"
						dup := strings.TrimSuffix(h.encode(body), "}") + `,"` + field.name + `":` + string(base) + `}`
						// It may well be accepted (the last one counts): aim it at
						// nothing the snapshot holds.
						h.wantNoFault(what, h.send(what, method, fill(spare), bearer(key), dup, "application/json"))
					}
				}
			})
			// The server survived the operation's abuse.
			if r := s.do(t, "GET", "/healthz", "", nil); r.Status != 200 {
				t.Fatalf("after %s, /healthz answers %d %s", name, r.Status, r.Raw)
			}
		}
	}

	if after := snapshot(); after != before {
		t.Errorf("hostile requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	logs := s.Logs.String()
	for _, sec := range h.secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("the logs hold the key %s…", sec[:8])
		}
	}
}

var deliveryStatus = regexp.MustCompile(`,"delivery_status":"[a-z_]*"`)

// dotSegment is a path value net/http's ServeMux cleans away (redirecting
// to the cleaned path) before the API sees it.
func dotSegment(v string) bool { return v == "." || v == ".." }

// redirected reports a redirect to a path of this server (never another
// host).
func (h hostile) redirected(r answer) bool {
	h.t.Helper()
	if r.status != http.StatusMovedPermanently && r.status != http.StatusTemporaryRedirect && r.status != http.StatusPermanentRedirect {
		return false
	}
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		h.t.Errorf("redirect to %q", loc)
	}
	return true
}

const garbageKey = "su_app_garbage0123456789abcdef0123456789abcdef"

// hostile sends one operation's hostile requests and judges the answers.
type hostile struct {
	t       *testing.T
	s       server
	doc     *openapitest.Doc
	a       tenant
	secrets []string
	op      *openapi3.Operation
	opName  string
}

// answer is one exchange, with what the document thinks of it.
type answer struct {
	status int
	header http.Header
	raw    []byte
	docErr error
	err    error
}

func bearer(key string) []string {
	if key == "" {
		return nil
	}
	return []string{"Bearer " + key}
}

// send sends a raw request: auth holds the Authorization header's values
// (one header line each), body is sent as is with ctype ("" for none).
func (h hostile) send(what, method, path string, auth []string, body any, ctype string) answer {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	case map[string]json.RawMessage:
		if b != nil {
			raw = []byte(h.encode(b))
		}
	}
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(strings.ToUpper(method), h.s.URL+path, rd)
	if err != nil {
		return answer{err: err}
	}
	for _, v := range auth {
		req.Header.Add("Authorization", v)
	}
	if raw != nil && ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		h.t.Errorf("%s: %s %s: no answer: %v", what, method, clipName(path), err)
		return answer{err: err}
	}
	defer res.Body.Close()
	resBody, _ := io.ReadAll(res.Body)
	// Judge the exchange against the document; a request the router
	// cannot place (an encoded slash that makes another path) is left to
	// the status checks.
	// The document's own decoding of a body far over the limit would cost
	// more than the whole sweep; a refused request is not judged by its
	// body anyway, only the answer is.
	docBody := raw
	if len(raw) > 1<<20 && res.StatusCode >= 400 {
		docBody = nil
	}
	docErr := h.doc.Check(req, docBody, res, resBody)
	return answer{status: res.StatusCode, header: res.Header, raw: resBody, docErr: docErr}
}

// wantNoFault checks an answer that may be a success: never a 5xx, an
// error body when an error, no key echoed, and what the document allows.
func (h hostile) wantNoFault(what string, r answer) {
	h.t.Helper()
	if r.err != nil {
		return
	}
	if r.status >= 500 {
		h.t.Errorf("%s: %d %s", what, r.status, clip(r.raw))
	}
	if r.status >= 400 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			h.t.Errorf("%s: %d without the JSON error body: %s", what, r.status, clip(r.raw))
		}
	}
	for _, sec := range h.secrets {
		if bytes.Contains(r.raw, []byte(sec)) || strings.Contains(fmt.Sprint(r.header), sec) {
			h.t.Errorf("%s: the answer echoes the key %s…", what, sec[:8])
		}
	}
	if r.docErr != nil {
		h.t.Errorf("%s: openapi: %v", what, r.docErr)
	}
}

// wantRefused is wantNoFault for a request that must be refused, with one
// of statuses when given.
func (h hostile) wantRefused(what string, r answer, statuses ...int) {
	h.t.Helper()
	h.wantNoFault(what, r)
	if r.err != nil || r.status >= 500 {
		return
	}
	if r.status < 400 || len(statuses) > 0 && !slices.Contains(statuses, r.status) {
		h.t.Errorf("%s: %d, want it refused %v: %s", what, r.status, statuses, clip(r.raw))
	}
}

// baseBody is a well-formed body of an operation, for the hostile field
// values to replace one field of (an empty object for an operation not
// listed here).
func (h hostile) baseBody(method, path string) map[string]json.RawMessage {
	bodies := map[string]map[string]any{
		"post /v1/tenants":                                   {"name": "hostile"},
		"post /v1/tenants/{tenant}/keys":                     {"kind": "app", "label": "hostile"},
		"post /v1/logins/evaluate":                           {"user_id": "u1", "ip": testIP, "user_agent": testUA},
		"post /v1/logins/failed":                             {"user_id": "u1", "ip": testIP},
		"post /v1/logins/{login_id}/feedback":                {"verdict": "legit"},
		"post /v1/challenges/{id}/verify":                    {"code": "000000"},
		"post /v1/challenges/{id}/switch":                    {"channel": "sms"},
		"put /v1/users/{user}":                               {"display_name": "U One"},
		"post /v1/users/{user}/sms":                          {"phone": phone1},
		"post /v1/users/{user}/phone-change":                 {"new_phone": phone2},
		"post /v1/users/{user}/history":                      {"logins": []any{map[string]any{"ip": testIP, "at": "2026-01-02T15:04:05Z"}}},
		"post /v1/prompts":                                   {"user_id": "u1", "action": "manage", "return_url": "https://app.example.test/back"},
		"post /v1/prompts/exchange":                          {"code": "nope"},
		"put /v1/admin/policy":                               {"mode": "on"},
		"post /v1/admin/users/{user}/reset":                  {"reason": "hostile"},
		"post /v1/admin/2fa/disable-all":                     {"reason": "hostile", "group": "nope"},
		"post /v1/users/{user}/2fa/disable":                  {"ip": testIP},
		"post /v1/users/{user}/backup-codes":                 {"ip": testIP},
		"post /v1/users/{user}/totp":                         {"ip": testIP},
		"post /v1/users/{user}/email-factor":                 {"ip": testIP},
		"post /v1/users/{user}/events/password-changed":      {"ip": testIP},
		"post /v1/users/{user}/events/signed-out-everywhere": {"ip": testIP},
	}
	out := map[string]json.RawMessage{}
	for k, v := range bodies[strings.ToLower(method)+" "+path] {
		j, err := json.Marshal(v)
		if err != nil {
			h.t.Fatal(err)
		}
		out[k] = j
	}
	return out
}

// encode writes a body's fields in a stable order, raw values as they are
// (json.Marshal would refuse the broken ones).
func (h hostile) encode(body map[string]json.RawMessage) string {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"` + k + `":`)
		sb.Write(body[k])
	}
	sb.WriteByte('}')
	return sb.String()
}

// withField is body with field set to raw.
func (h hostile) withField(body map[string]json.RawMessage, field, raw string) string {
	b := map[string]json.RawMessage{}
	for k, v := range body {
		b[k] = v
	}
	b[field] = json.RawMessage(raw)
	return h.encode(b)
}

type hostileValue struct{ name, raw string }

// A string under the body limit but over any field's, and nested arrays
// (the bodies test encoding/json's depth limit; these, each field).
var (
	huge = `"` + strings.Repeat("x", 60<<10) + `"`
	deep = strings.Repeat(`[`, 1000) + strings.Repeat(`]`, 1000)
)

// hostileValues are the values no field of schema's type accepts.
func hostileValues(s *openapi3.Schema) []hostileValue {
	switch {
	case s.Type.Is("string"):
		vs := []hostileValue{{"number", `42`}, {"true", `true`}, {"array", `[]`}, {"object", `{}`},
			{"huge", huge}, {"deep", deep}, {"invalid utf-8", "\"\xff\xfe\""}, {"lone surrogate", `"\ud800"`}}
		if s.MaxLength != nil {
			vs = append(vs, hostileValue{"over maxLength", `"` + strings.Repeat("y", int(*s.MaxLength)+1) + `"`})
		}
		if len(s.Enum) > 0 {
			vs = append(vs, hostileValue{"not in enum", `"zz-not-in-enum"`}, hostileValue{"NUL", `"\u0000"`})
		}
		return vs
	case s.Type.Is("integer"), s.Type.Is("number"):
		return []hostileValue{{"string", `"1"`}, {"NaN", `"NaN"`}, {"Infinity", `"Infinity"`}, {"1e400", `1e400`},
			{"over int64", `99999999999999999999`}, {"under int64", `-9223372036854775809`}, {"array", `[]`}, {"deep", deep}}
	case s.Type.Is("boolean"):
		return []hostileValue{{"string", `"yes"`}, {"number", `1`}, {"array", `[]`}}
	case s.Type.Is("array"):
		return []hostileValue{{"string", `"x"`}, {"object", `{}`}, {"number", `42`}, {"huge item", `[` + huge + `]`},
			{"many items", `[` + strings.TrimSuffix(strings.Repeat(`1,`, 3000), ",") + `]`}, {"deep", deep}}
	case s.Type.Is("object"):
		return []hostileValue{{"string", `"x"`}, {"array", `[]`}, {"number", `42`}, {"deep", deep}}
	}
	return nil
}

// anyValues are values for a field that takes any value (and ignores it).
func anyValues() []hostileValue {
	return []hostileValue{{"deep", deep}, {"huge", huge}}
}

type bodyField struct {
	name   string
	schema *openapi3.Schema
}

// bodyFields lists the JSON body's fields from the document (allOf
// merged), sorted.
func bodyFields(op *openapi3.Operation) []bodyField {
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	props := map[string]*openapi3.Schema{}
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		for name, p := range s.Properties {
			if p.Value != nil {
				props[name] = p.Value
			}
		}
		for _, sub := range s.AllOf {
			if sub.Value != nil {
				walk(sub.Value)
			}
		}
	}
	walk(mt.Schema.Value)
	var out []bodyField
	for name, s := range props {
		out = append(out, bodyField{name, s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func opKey(op *openapi3.Operation) string {
	if op.Security == nil {
		return ""
	}
	for _, req := range *op.Security {
		for k := range req {
			return k
		}
	}
	return ""
}

func hasQuery(op *openapi3.Operation) bool {
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == "query" {
			return true
		}
	}
	return false
}

func pathParams(p string) []string {
	var out []string
	for _, m := range ginParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(p), -1) {
		out = append(out, m[1])
	}
	return out
}

func sortedPaths(d *openapitest.Doc) []string {
	var ps []string
	for p := range d.T.Paths.Map() {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

func clipName(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s…(%d)", s[:40], len(s))
	}
	return s
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
