package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Path is where api/openapi.yaml is in the source tree: next to this
// package's source or, when that path is not a file (a -trimpath build),
// under the module root above the working directory.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "openapi.yaml")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	dir, _ := os.Getwd()
	for dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "api", "openapi.yaml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return p
}

// Doc is a loaded, validated OpenAPI document with its router.
type Doc struct {
	// T is the document. Its servers are cleared so that requests to any
	// host (an httptest server's random port) find their operation.
	T      *openapi3.T
	router routers.Router
	errors *openapi3.Schema
}

// Load reads the document at path, validates it and builds its router.
func Load(path string) (*Doc, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("openapitest: load %s: %w", path, err)
	}
	if err := t.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapitest: %s is not a valid OpenAPI document: %w", path, err)
	}
	t.Servers = nil
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("openapitest: router: %w", err)
	}
	d := &Doc{T: t, router: r}
	if ref := t.Components.Schemas["Error"]; ref != nil {
		d.errors = ref.Value
	} else {
		return nil, errors.New("openapitest: the document has no Error schema")
	}
	return d, nil
}

var (
	defaultOnce sync.Once
	defaultDoc  *Doc
	defaultErr  error
)

// Default returns api/openapi.yaml, loaded once per test binary; it fails
// t when the document does not load or validate.
func Default(t testing.TB) *Doc {
	t.Helper()
	defaultOnce.Do(func() { defaultDoc, defaultErr = Load(Path()) })
	if defaultErr != nil {
		t.Fatal(defaultErr)
	}
	return defaultDoc
}

// Validate checks one exchange against api/openapi.yaml and reports every
// mismatch as a test error. reqBody and resBody are the bodies already
// read from req and res.
func Validate(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, resBody []byte) {
	t.Helper()
	Default(t).Validate(t, req, reqBody, res, resBody)
}

// Validate checks one exchange against d and reports every mismatch as a
// test error.
func (d *Doc) Validate(t testing.TB, req *http.Request, reqBody []byte, res *http.Response, resBody []byte) {
	t.Helper()
	if err := d.Check(req, reqBody, res, resBody); err != nil {
		t.Errorf("openapi: %s %s → %d: %v\nrequest body: %s\nresponse body: %s",
			req.Method, req.URL.RequestURI(), res.StatusCode, err, clip(reqBody), clip(resBody))
	}
}

// Check is Validate returning the mismatches as one error (nil when the
// exchange agrees with the document).
func (d *Doc) Check(req *http.Request, reqBody []byte, res *http.Response, resBody []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	r.ContentLength = int64(len(reqBody))

	route, params, err := d.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		if isRedirect(res.StatusCode) {
			return nil // gin's trailing-slash redirect towards a documented path
		}
		return d.checkError(res, resBody, http.StatusNotFound, "not_found")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return d.checkError(res, resBody, http.StatusMethodNotAllowed, "method_not_allowed")
	case err != nil:
		return fmt.Errorf("finding the operation: %w", err)
	}

	var errs []error
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearer, SkipSettingDefaults: true, MultiError: true,
			SchemaValidationOptions: brief},
	}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && res.StatusCode < 400 {
		errs = append(errs, fmt.Errorf("the document refuses the request, the server answered %d: %w", res.StatusCode, reqErr))
	}

	// The request body was read by ValidateRequest; give the response
	// validation a fresh request.
	in.Request = r.Clone(ctx)
	in.Request.Body = io.NopCloser(bytes.NewReader(reqBody))
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: brief},
	}
	out.SetBodyBytes(resBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("%s %s: %w", route.Method, route.Path, err))
	}
	if resp := route.Operation.Responses.Status(res.StatusCode); resp != nil && resp.Value != nil &&
		len(resp.Value.Content) == 0 && len(resBody) > 0 {
		errs = append(errs, fmt.Errorf("%s %s: status %d is documented without a body, the server sent %d bytes",
			route.Method, route.Path, res.StatusCode, len(resBody)))
	}
	return errors.Join(errs...)
}

// brief keeps schema dumps out of the reports: the path and the reason are
// what a test failure needs.
var brief = []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()}

// checkError checks an answer the router cannot attribute to an operation.
func (d *Doc) checkError(res *http.Response, body []byte, status int, code string) error {
	if res.StatusCode != status {
		return fmt.Errorf("no documented operation matches, so the answer must be %d %s, not %d", status, code, res.StatusCode)
	}
	if !isJSON(res.Header) {
		return fmt.Errorf("error answer with Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	if err := d.checkErrorBody(body); err != nil {
		return err
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error.Code != code {
		return fmt.Errorf("error code %q, want %q", e.Error.Code, code)
	}
	return nil
}

func (d *Doc) checkErrorBody(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %w", err)
	}
	if err := d.errors.VisitJSON(v, append([]openapi3.SchemaValidationOption{openapi3.MultiErrors()}, brief...)...); err != nil {
		return fmt.Errorf("error answer does not match the Error schema: %w", err)
	}
	return nil
}

// bearer accepts any bearer key: the server decides whether it is known
// and of the right kind. A request without one is refused by the document
// (so the server must refuse it too).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return nil
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
		return errors.New("no bearer key")
	}
	return nil
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func isRedirect(status int) bool {
	return status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
}

func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

// RoundTripper returns a transport that validates every exchange against
// api/openapi.yaml, reporting mismatches on t. base nil means
// http.DefaultTransport.
func RoundTripper(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	return Default(t).RoundTripper(t, base)
}

// Client returns an http.Client whose every exchange is validated against
// api/openapi.yaml. It does not follow redirects, so tests see exactly what
// the server answered.
func Client(t testing.TB) *http.Client {
	t.Helper()
	return Default(t).Client(t)
}

// RoundTripper returns a transport validating every exchange against d.
func (d *Doc) RoundTripper(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, doc: d, base: base}
}

// Client returns an http.Client validating every exchange against d.
func (d *Doc) Client(t testing.TB) *http.Client {
	return &http.Client{
		Transport:     d.RoundTripper(t, nil),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type transport struct {
	t    testing.TB
	doc  *Doc
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
	}
	// Send a copy carrying the bytes read, leaving the caller's request alone.
	sent := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		sent.Body = io.NopCloser(bytes.NewReader(reqBody))
		sent.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	res, err := tr.base.RoundTrip(sent)
	if err != nil {
		return nil, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	tr.doc.Validate(tr.t, sent, reqBody, res, resBody)
	return res, nil
}
