package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// TestQueueTwoProcesses runs two stepupd processes on one Redis (single
// node and cluster), sharing one Twilio account: a challenge made on one
// is verified on the other, and every code is sent exactly once whichever
// process's workers take it.
func TestQueueTwoProcesses(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{apptest.Single, apptest.Cluster} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a := csNewSite(t, apptest.Options{Redis: kind})
			b := a.join(t, apptest.Options{})
			sites := []csSite{a, b}

			// One challenge, made on a and verified on b.
			num := csPhone(300)
			a.Must(t, 200, "PUT", "/v1/users/vera", a.AppKey, map[string]any{"email": "vera@example.test"})
			id := csStr(csObj(a.Must(t, 201, "POST", "/v1/users/vera/sms", a.AppKey, map[string]any{"phone": num}), "challenge"), "id")
			res := b.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", b.AppKey,
				map[string]any{"code": csWaitSMS(t, a.Twilio, num, 1).Code()})
			if res["purpose"] != "enroll_sms" {
				t.Fatalf("verify on the other process: %v", res)
			}
			if u := a.Must(t, 200, "GET", "/v1/users/vera", a.AppKey, nil); u["enrolled"] != true {
				t.Errorf("user seen from the first process: %v", u)
			}

			// 30 challenges made at once across both processes.
			const n = 30
			number := func(i int) string { return csPhone(301 + i) }
			answers := csConcurrently(n, func(i int) csAnswer {
				s, user := sites[i%2], fmt.Sprintf("user%02d", i)
				if r := csCall(s.URL, "PUT", "/v1/users/"+user, s.AppKey, map[string]any{"email": user + "@example.test"}); r.err != nil || r.status != 200 {
					return r
				}
				return csCall(s.URL, "POST", "/v1/users/"+user+"/sms", s.AppKey, map[string]any{"phone": number(i)})
			})
			ids := make([]string, n)
			for i, r := range answers {
				if r.err != nil || r.status != 201 {
					t.Fatalf("challenge %d: %d %s %v", i, r.status, r.raw, r.err)
				}
				ids[i] = csStr(csObj(r.body, "challenge"), "id")
			}
			// Each is verified on the process that did not make it.
			for i := range n {
				other := sites[(i+1)%2]
				other.Must(t, 200, "POST", "/v1/challenges/"+ids[i]+"/verify", other.AppKey,
					map[string]any{"code": csWaitSMS(t, a.Twilio, number(i), 1).Code()})
			}
			for i := range n {
				sites[i%2].waitChallenge(t, ids[i], "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
			}
			for i := range n {
				if got := csTwilioStatuses(a.Twilio, number(i)); !slices.Equal(got, []int{201}) {
					t.Errorf("challenge %d: Twilio answered %v, want one accepted send", i, got)
				}
			}
			if got := len(a.Twilio.Messages()); got != n+1 {
				t.Errorf("%d SMS in all, want %d", got, n+1)
			}
		})
	}
}

// TestQueueWorkerDiesMidSend: a process takes an SMS job and dies while its
// request to Twilio is in flight, before the provider accepted it and
// before the job was acknowledged. A surviving process takes the job over
// once it has been idle for delivery.claim_idle and sends it exactly once.
func TestQueueWorkerDiesMidSend(t *testing.T) {
	t.Parallel()
	gate := csNewGate(t)
	a := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) {
		// a reaches Twilio only through the gate, which holds the request.
		c.SMS.Twilio.APIBaseURL = gate.URL
		c.Delivery.ClaimIdle = time.Minute // its send timeout, half of it, outlasts the test
	}})
	t.Cleanup(gate.open) // before a stops: a waits for its send to end

	num := csPhone(400)
	a.Must(t, 200, "PUT", "/v1/users/walt", a.AppKey, map[string]any{"email": "walt@example.test"})
	id := csStr(csObj(a.Must(t, 201, "POST", "/v1/users/walt/sms", a.AppKey, map[string]any{"phone": num}), "challenge"), "id")
	select {
	case <-gate.arrived:
	case <-time.After(csPatience):
		t.Fatalf("a's worker did not try to send within %v", csPatience)
	}

	// a dies mid-send: it loses Redis, so it can neither acknowledge nor
	// reschedule the job, and its request never reaches Twilio.
	if err := a.App.Redis.Close(); err != nil {
		t.Fatal(err)
	}
	gate.open()

	// b, started after a's death with claim_idle 2s, delivers the code.
	b := a.join(t, apptest.Options{Configure: func(c *config.Config) { c.Delivery.ClaimIdle = 2 * time.Second }})
	code := csWaitSMS(t, b.Twilio, num, 1).Code()
	got := b.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	if got["status"] != "pending" {
		t.Errorf("challenge after the take-over: %v", got)
	}
	b.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", b.AppKey, map[string]any{"code": code})
	if st := csTwilioStatuses(b.Twilio, num); !slices.Equal(st, []int{201}) {
		t.Errorf("Twilio answered %v, want exactly one accepted send", st)
	}
	if n := gate.requests.Load(); n != 1 {
		t.Errorf("the dead process sent %d requests, want 1", n)
	}
}

// TestQueueHandOver: a code queued by a process without workers is sent by
// another process's workers.
func TestQueueHandOver(t *testing.T) {
	t.Parallel()
	a := csNewSite(t, apptest.Options{Redis: apptest.Single, NoWorkers: true})
	num := csPhone(401)
	a.Must(t, 200, "PUT", "/v1/users/xena", a.AppKey, map[string]any{"email": "xena@example.test"})
	id := csStr(csObj(a.Must(t, 201, "POST", "/v1/users/xena/sms", a.AppKey, map[string]any{"phone": num}), "challenge"), "id")
	if got := a.Must(t, 200, "GET", "/v1/challenges/"+id, a.AppKey, nil); got["delivery_status"] != "queued" {
		t.Errorf("challenge without workers: %v", got)
	}

	b := a.join(t, apptest.Options{})
	code := csWaitSMS(t, b.Twilio, num, 1).Code()
	a.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	a.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", a.AppKey, map[string]any{"code": code})
	if st := csTwilioStatuses(b.Twilio, num); !slices.Equal(st, []int{201}) {
		t.Errorf("Twilio answered %v, want exactly one accepted send", st)
	}
}

// csGate stands between a process and Twilio: it holds every request until
// opened, then answers 503 without passing anything on.
type csGate struct {
	*httptest.Server
	arrived  chan struct{} // closed at the first request
	release  chan struct{}
	first    sync.Once
	opened   sync.Once
	requests atomic.Int32
}

func csNewGate(t *testing.T) *csGate {
	g := &csGate{arrived: make(chan struct{}), release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		g.first.Do(func() { close(g.arrived) })
		select {
		case <-g.release:
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"code":20503,"message":"Service Unavailable","status":503}`)
	}))
	t.Cleanup(g.Close)
	return g
}

// open lets the held requests go.
func (g *csGate) open() { g.opened.Do(func() { close(g.release) }) }
