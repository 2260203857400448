package api_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/api"
	"github.com/stepup-auth/stepup/api/openapitest"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// newAPI is the real API of an engine on an embedded Redis.
func newAPI(t *testing.T) *api.Server {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	eng, err := engine.New(redisstore.New(rdb, redisstore.Options{}), engine.Options{
		Secret: []byte("openapi-test-secret-0123456789abcdef"), OperatorKey: "op"})
	if err != nil {
		t.Fatal(err)
	}
	return api.New(api.FromEngine(eng), api.Options{})
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute checks the document against the router: every
// route served is documented with its method, and every documented
// operation is served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := openapitest.Default(t)
	served := map[string]bool{}
	for _, r := range newAPI(t).Routes() {
		p := ginParam.ReplaceAllString(r.Path, "{$1}")
		served[r.Method+" "+p] = true
	}
	documented := map[string]bool{}
	for p, item := range doc.T.Paths.Map() {
		for method := range item.Operations() {
			documented[strings.ToUpper(method)+" "+p] = true
		}
	}
	for _, k := range sortedKeys(served) {
		if !documented[k] {
			t.Errorf("%s is served but not in api/openapi.yaml", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !served[k] {
			t.Errorf("%s is in api/openapi.yaml but not served", k)
		}
	}
	if len(served) == 0 {
		t.Error("Routes() lists nothing")
	}
}

// TestOpenAPIDocument checks the document loads and validates as OpenAPI
// 3.0.3, and holds the promises the tests and host-app developers rely on.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := openapitest.Load(openapitest.Path())
	if err != nil {
		t.Fatal(err)
	}
	if doc.T.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.T.OpenAPI)
	}
	schemes := doc.T.Components.SecuritySchemes
	for _, name := range []string{"appKey", "managerKey", "operatorKey"} {
		s := schemes[name]
		if s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
			t.Errorf("security scheme %s is not an http bearer scheme", name)
		}
	}
	for p, item := range doc.T.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + p
			// Which key each operation takes follows from its path.
			want := keyOf(p)
			var got []string
			if op.Security != nil {
				for _, req := range *op.Security {
					for k := range req {
						got = append(got, k)
					}
				}
			} else {
				t.Errorf("%s: no security (use security: [] for none)", name)
			}
			if want == "" && len(got) > 0 || want != "" && !slices.Equal(got, []string{want}) {
				t.Errorf("%s: security %v, want %q", name, got, want)
			}
			if want != "" {
				for _, status := range []int{401, 403, 500} {
					if op.Responses.Status(status) == nil {
						t.Errorf("%s: %d not documented", name, status)
					}
				}
			}
			// The report link ignores its body (a browser's form post).
			if op.RequestBody != nil && op.RequestBody.Value != nil && !strings.HasPrefix(p, "/v1/report/") {
				if op.Responses.Status(413) == nil {
					t.Errorf("%s: reads a body but 413 is not documented", name)
				}
				if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil {
					s := mt.Schema.Value
					if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
						t.Errorf("%s: the JSON body allows unknown fields, the server refuses them", name)
					}
					if op.Responses.Status(400) == nil {
						t.Errorf("%s: reads JSON but 400 is not documented", name)
					}
				}
			}
			// Every error answer is the one error body (readiness reports
			// its own state with 503).
			for code, resp := range op.Responses.Map() {
				if code < "400" || p == "/readyz" {
					continue
				}
				mt := resp.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("%s: %s is not the Error body", name, code)
				}
			}
			if op.Description == "" && op.Summary == "" {
				t.Errorf("%s: no description", name)
			}
		}
	}
}

// keyOf is the key kind a path requires ("" for none).
func keyOf(p string) string {
	switch {
	case !strings.HasPrefix(p, "/v1/"), strings.HasPrefix(p, "/v1/webhooks/"), strings.HasPrefix(p, "/v1/report/"):
		return ""
	case strings.HasPrefix(p, "/v1/tenants"):
		return "operatorKey"
	case strings.HasPrefix(p, "/v1/admin/"):
		return "managerKey"
	}
	return "appKey"
}

// TestOpenAPIValidatorCatches checks the validator itself: answers that
// disagree with the document must be reported.
func TestOpenAPIValidatorCatches(t *testing.T) {
	doc := openapitest.Default(t)
	tests := []struct {
		name         string
		method, path string
		reqBody      string
		status       int
		resBody      string
		ok           bool
	}{
		{"documented health", "GET", "/healthz", "", 200, `{"status":"ok"}`, true},
		{"extra field", "GET", "/healthz", "", 200, `{"status":"ok","x":1}`, false},
		{"undocumented status", "GET", "/healthz", "", 418, `{"error":{"code":"teapot","message":"m"}}`, false},
		{"unknown path answered 404", "GET", "/nope", "", 404, `{"error":{"code":"not_found","message":"m"}}`, true},
		{"unknown path answered 200", "GET", "/nope", "", 200, `{}`, false},
		{"wrong method answered 405", "DELETE", "/healthz", "", 405, `{"error":{"code":"method_not_allowed","message":"m"}}`, true},
		{"wrong method answered 404", "DELETE", "/healthz", "", 404, `{"error":{"code":"not_found","message":"m"}}`, false},
		{"error without message", "GET", "/v1/tenants", "", 401, `{"error":{"code":"unauthenticated"}}`, false},
		{"error with extras", "GET", "/v1/tenants", "", 401, `{"error":{"code":"unauthenticated","message":"m","field":"x"}}`, true},
		{"refused request accepted", "POST", "/v1/tenants", `{"name":"a","colour":"red"}`, 201,
			`{"id":"tn_1","name":"a","sender_name":"a","created_at":"2026-01-02T15:04:05Z"}`, false},
		{"refused request refused", "POST", "/v1/tenants", `{"name":"a","colour":"red"}`, 400,
			`{"error":{"code":"unknown_field","message":"m","field":"colour"}}`, true},
		{"key listing with a secret", "GET", "/v1/tenants/tn_1/keys", "", 200,
			`{"keys":[{"id":"k","tenant":"tn_1","kind":"app","label":"","created_at":"2026-01-02T15:04:05Z","secret":"s"}]}`, false},
		{"no content with a body", "DELETE", "/v1/tenants/tn_1/keys/k", "", 204, `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://stepup.test"+tt.path, strings.NewReader(tt.reqBody))
			req.Header.Set("Authorization", "Bearer x")
			if tt.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			res := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
				Body: io.NopCloser(bytes.NewReader([]byte(tt.resBody)))}
			err := doc.Check(req, []byte(tt.reqBody), res, []byte(tt.resBody))
			if tt.ok && err != nil {
				t.Errorf("reported a documented exchange: %v", err)
			}
			if !tt.ok && err == nil {
				t.Errorf("did not report an undocumented exchange")
			}
			if !tt.ok && err != nil {
				t.Logf("reported: %v", err)
			}
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOpenAPISignalNames checks that the Signal schema's name enum lists
// exactly the signals package risk names (its Signal… constants), so a new
// signal cannot reach host apps undocumented.
func TestOpenAPISignalNames(t *testing.T) {
	doc := openapitest.Default(t)
	var documented []string
	for _, v := range doc.T.Components.Schemas["Signal"].Value.Properties["name"].Value.Enum {
		documented = append(documented, v.(string))
	}
	f, err := parser.ParseFile(token.NewFileSet(), "../risk/signals.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Signal") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			named = append(named, s)
		}
		return true
	})
	slices.Sort(documented)
	slices.Sort(named)
	if len(named) < 10 || !slices.Equal(documented, named) {
		t.Errorf("Signal.name enum in api/openapi.yaml = %v,\nrisk's signal constants = %v", documented, named)
	}
}
