package api_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/api"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// TestMetricsLabelsBounded sends requests with many made-up methods and
// paths: the request metrics must not grow a series for each, or anyone
// who can reach the listener fills /metrics and the Prometheus server.
func TestMetricsLabelsBounded(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	eng, err := engine.New(redisstore.New(rdb, redisstore.Options{}), engine.Options{
		Secret: []byte("metrics-test-secret-0123456789abcdef"), OperatorKey: "op"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := api.New(api.FromEngine(eng), api.Options{Registry: reg}).Handler()
	for i := range 50 {
		for _, path := range []string{"/healthz", "/v1/users/u" + strconv.Itoa(i), "/nowhere/" + strconv.Itoa(i)} {
			req := httptest.NewRequest("M"+strconv.Itoa(i), path, nil)
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere/"+strconv.Itoa(i), nil))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if n := len(mf.GetMetric()); n > 10 {
			t.Errorf("%s has %d series after requests with made-up methods and paths", mf.GetName(), n)
			for _, m := range mf.GetMetric()[:3] {
				t.Logf("  %v", m.GetLabel())
			}
		}
	}
}
