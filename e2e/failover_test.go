package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/internal/twiliotest"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Failover of a Redis Cluster master under traffic, through two real
// stepupd processes: a master is SIGKILLed while logins are evaluated and
// codes are being sent, and its replica takes over (cluster-node-timeout
// redistest.NodeTimeout).
//
// Replication is asynchronous: what a master acknowledged and had not yet
// passed to its replica when it died is gone. The test makes a sync point
// (redistest's Sync: every replica has processed everything its master
// had) after creating the first challenges, and holds only those to
// "must survive"; the challenges made during the failover may be lost,
// each together with its queued message (one script writes both), and the
// test counts them.
const (
	foSMSUsers   = 24 // enrolled with an SMS factor
	foMailUsers  = 24 // enrolled with e-mail as their factor
	foBackground = 6  // goroutines evaluating unenrolled users throughout
	foClaimIdle  = 8 * time.Second
	foPatience   = 60 * time.Second
	foTwilioWait = 400 * time.Millisecond // each SMS send takes this long
)

// foUser is an enrolled user and where its codes go.
type foUser struct {
	id, phone, email string
}

func (u foUser) sms() bool { return u.phone != "" }

// foCall is one request of the traffic: when it was sent and answered.
type foCall struct {
	sent, at time.Time
	err      string // "" for a good answer
}

func TestFailoverUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a master of a Redis Cluster")
	}
	t.Parallel()
	rc := redistest.ClusterWithReplicas(t)
	tw := twiliotest.New(t, twiliotest.Options{From: "+15005550006"})
	slow := foSlowTwilio(t, tw.URL)
	configure := func(c *config.Config) {
		c.SMS.Twilio.APIBaseURL = slow.URL
		// A job whose worker could not record its outcome during the
		// failover is taken over only after this; it must outlast the
		// failover (see delivery.Options.ClaimIdle).
		c.Delivery.ClaimIdle = foClaimIdle
		c.Limits.EmailPerUserHour = 1000
		c.Limits.EmailPerAddressHour = 1000
		c.Limits.SMSPerTenantHour = 100000
	}
	a := csNewSite(t, apptest.Options{Redis: apptest.Cluster, RedisAddrs: rc.Addrs, Twilio: tw, Configure: configure})
	b := a.join(t, apptest.Options{Configure: configure})
	sites := []csSite{a, b}
	a.everyLogin(t)

	users := foEnroll(t, sites)
	smsSeen, mailSeen := foSeen(a, users)

	// Phase 1: half the users are challenged, then the sync point.
	ctx, cancel := context.WithTimeout(t.Context(), 3*foPatience)
	defer cancel()
	before, after := users[:len(users)/2], users[len(users)/2:]
	made := map[string]string{} // user → challenge id
	for i, r := range foChallenge(sites, before) {
		if r.err != nil || r.status != 200 || csObj(r.body, "challenge") == nil {
			t.Fatalf("phase 1 evaluate of %s: %d %s %v", before[i].id, r.status, r.raw, r.err)
		}
		made[before[i].id] = csStr(csObj(r.body, "challenge"), "id")
	}
	if err := rc.Sync(ctx); err != nil {
		t.Fatalf("sync point: %v", err)
	}

	// Traffic: unenrolled users' logins throughout, the other half's
	// challenges during the failover.
	victim := foVictim(t, a)
	var mu sync.Mutex
	var calls []foCall
	record := func(sent time.Time, r csAnswer) {
		c := foCall{sent: sent, at: time.Now()}
		if r.err != nil || r.status != 200 {
			c.err = fmt.Sprintf("%d %s %v", r.status, strings.TrimSpace(string(r.raw)), r.err)
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	for g := range foBackground {
		traffic.Go(func() {
			s := sites[g%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("fo-bg-%d-%d", g, i%50)
				record(time.Now(), csCall(s.URL, "POST", "/v1/logins/evaluate", s.AppKey,
					map[string]any{"user_id": user, "ip": csIPAU, "user_agent": csUA, "device_id": "laptop"}))
			}
		})
	}
	afterIDs := make([]string, len(after))
	traffic.Go(func() {
		tick := time.NewTicker(4 * redistest.NodeTimeout / time.Duration(len(after)))
		defer tick.Stop()
		for i, u := range after {
			<-tick.C
			s := sites[i%2]
			sent := time.Now()
			r := csCall(s.URL, "POST", "/v1/logins/evaluate", s.AppKey,
				map[string]any{"user_id": u.id, "ip": csIPAU, "user_agent": csUA, "device_id": "laptop"})
			record(sent, r)
			if r.err == nil && r.status == 200 {
				afterIDs[i] = csStr(csObj(r.body, "challenge"), "id")
			}
		}
	})

	// The kill follows as soon as the traffic runs, while phase 1's
	// codes are being sent.
	foUntil(t, ctx, "traffic", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) >= foBackground })
	sentAtKill := len(a.Twilio.Messages())
	killed := time.Now()
	if err := rc.Kill(victim); err != nil {
		t.Fatal(err)
	}
	promoted, err := rc.WaitFailover(ctx, victim)
	if err != nil {
		t.Fatalf("failover of %s: %v", victim, err)
	}
	failedOver := time.Now()
	// Traffic goes on until both processes have answered well for two
	// node timeouts in a row.
	foUntil(t, ctx, "good answers after the failover", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := len(calls) - 1; i >= 0 && calls[i].at.After(failedOver); i-- {
			if calls[i].err != "" {
				return false
			}
			if calls[i].at.Sub(calls[len(calls)-1].at) < -2*redistest.NodeTimeout {
				return true
			}
		}
		return false
	})
	close(stop)
	traffic.Wait()

	// (a) Errors only between the kill and the end of the failover.
	var firstErr, lastErr time.Time
	var nErr int
	var sample []string
	var slowest time.Duration
	for _, c := range calls {
		slowest = max(slowest, c.at.Sub(c.sent))
		if c.err == "" {
			continue
		}
		nErr++
		if firstErr.IsZero() {
			firstErr = c.at
		}
		lastErr = c.at
		if len(sample) < 3 {
			sample = append(sample, c.err)
		}
		if c.sent.Before(killed) && c.at.Before(killed) {
			t.Errorf("error before the kill: %s", c.err)
		}
	}
	t.Logf("killed master %s at +0 (%d of phase 1's %d SMS sent by then); replica %s promoted, cluster ok on every node at +%v",
		victim, sentAtKill-foSMSUsers, foSMSUsers/2, promoted, failedOver.Sub(killed).Round(time.Millisecond))
	if nErr > 0 {
		t.Logf("%d of %d evaluations failed, from +%v to +%v: a window of %v; e.g. %q",
			nErr, len(calls), firstErr.Sub(killed).Round(time.Millisecond), lastErr.Sub(killed).Round(time.Millisecond),
			lastErr.Sub(firstErr).Round(time.Millisecond), sample)
	} else {
		t.Logf("no evaluation of %d failed", len(calls))
	}
	t.Logf("slowest evaluation took %v", slowest.Round(time.Millisecond))
	// The clients learn the new master within a second of the cluster's
	// being ok again (internal/app reloads the slot map on errors; without
	// that, go-redis would keep the dead master for a minute). The slack
	// is for a loaded CI machine.
	if slack := failedOver.Add(5 * time.Second); lastErr.After(slack) {
		t.Errorf("last error at +%v, more than 5s after the failover ended (+%v)",
			lastErr.Sub(killed).Round(time.Millisecond), failedOver.Sub(killed).Round(time.Millisecond))
	}

	// Every job is finished: the streams and retry sets are empty.
	foUntil(t, ctx, "empty queues", func() bool { return foQueued(ctx, a) == 0 })

	// (b) Every challenge made before the sync point is verifiable with
	// the code its one message carried.
	codes := func(u foUser) []string {
		if u.sms() {
			var out []string
			for _, m := range csSMSTo(a.Twilio, u.phone)[smsSeen[u.id]:] {
				out = append(out, m.Code())
			}
			return out
		}
		return foMailCodes(a.SMTP, u.email)[mailSeen[u.id]:]
	}
	for i, u := range before {
		got := codes(u)
		if len(got) != 1 {
			t.Errorf("%s (challenged before the sync point, sms %v): %d messages, want 1", u.id, u.sms(), len(got))
			continue
		}
		s := sites[i%2]
		if r := csCall(s.URL, "POST", "/v1/challenges/"+made[u.id]+"/verify", s.AppKey, map[string]any{"code": got[0]}); r.status != 200 || r.body["verified"] != true {
			t.Errorf("verify %s's challenge after the failover: %d %s", u.id, r.status, r.raw)
		}
	}

	// (c) During the failover: a challenge that survived got exactly one
	// message; one that was lost with its master got none, or the one its
	// worker sent before the master died.
	var lost, failed, dup int
	for i, u := range after {
		got := codes(u)
		id := afterIDs[i]
		switch {
		case id == "":
			failed++
			if len(got) > 1 {
				t.Errorf("%s: evaluate failed, yet %d messages", u.id, len(got))
			}
		case a.Do(t, "GET", "/v1/challenges/"+id, a.AppKey, nil).Status == 404:
			lost++
			if len(got) > 1 {
				dup++
				t.Errorf("%s: challenge lost with the master, %d messages", u.id, len(got))
			}
		case len(got) != 1:
			dup++
			t.Errorf("%s (challenged during the failover): %d messages, want 1", u.id, len(got))
		default:
			s := sites[i%2]
			if r := csCall(s.URL, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": got[0]}); r.status != 200 {
				t.Errorf("verify %s's challenge: %d %s", u.id, r.status, r.raw)
			}
		}
	}
	t.Logf("challenged during the failover: %d users, %d evaluations failed, %d challenges lost with the master (acknowledged, not yet replicated), %d with a wrong message count",
		len(after), failed, lost, dup)
}

// foEnroll enrols the test's users through both processes, SMS and e-mail
// factors alternating.
func foEnroll(t *testing.T, sites []csSite) []foUser {
	t.Helper()
	users := make([]foUser, 0, foSMSUsers+foMailUsers)
	for i := range foSMSUsers + foMailUsers {
		u := foUser{id: fmt.Sprintf("fo-%03d", i), email: fmt.Sprintf("fo-%03d@example.test", i)}
		if i%2 == 0 {
			u.phone = csPhone(500 + i)
		}
		users = append(users, u)
	}
	errs := make([]string, len(users))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, u := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = foEnrollOne(sites[i%2], u)
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("enrol %s: %s", users[i].id, e)
		}
	}
	return users
}

func foEnrollOne(s csSite, u foUser) string {
	if r := csCall(s.URL, "PUT", "/v1/users/"+u.id, s.AppKey, map[string]any{"email": u.email}); r.status != 200 {
		return fmt.Sprintf("profile: %d %s %v", r.status, r.raw, r.err)
	}
	path, body := "/v1/users/"+u.id+"/email-factor", map[string]any(nil)
	if u.sms() {
		path, body = "/v1/users/"+u.id+"/sms", map[string]any{"phone": u.phone}
	}
	r := csCall(s.URL, "POST", path, s.AppKey, body)
	if r.status != 201 {
		return fmt.Sprintf("start: %d %s %v", r.status, r.raw, r.err)
	}
	var code string
	deadline := time.Now().Add(foPatience)
	for code == "" && time.Now().Before(deadline) {
		if u.sms() {
			if m := csSMSTo(s.Twilio, u.phone); len(m) > 0 {
				code = m[0].Code()
			}
		} else if c := foMailCodes(s.SMTP, u.email); len(c) > 0 {
			code = c[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code == "" {
		return "no code"
	}
	v := csCall(s.URL, "POST", "/v1/challenges/"+csStr(csObj(r.body, "challenge"), "id")+"/verify", s.AppKey, map[string]any{"code": code})
	if v.status != 200 {
		return fmt.Sprintf("verify: %d %s %v", v.status, v.raw, v.err)
	}
	return ""
}

// foSeen counts the codes each user had received when enrolment ended.
func foSeen(s csSite, users []foUser) (sms, mail map[string]int) {
	sms, mail = map[string]int{}, map[string]int{}
	for _, u := range users {
		if u.sms() {
			sms[u.id] = len(csSMSTo(s.Twilio, u.phone))
		} else {
			mail[u.id] = len(foMailCodes(s.SMTP, u.email))
		}
	}
	return sms, mail
}

// foChallenge evaluates a challenged login of each user at once, on the
// two processes in turn.
func foChallenge(sites []csSite, users []foUser) []csAnswer {
	return csConcurrently(len(users), func(i int) csAnswer {
		s := sites[i%2]
		return csCall(s.URL, "POST", "/v1/logins/evaluate", s.AppKey,
			map[string]any{"user_id": users[i].id, "ip": csIPAU, "user_agent": csUA, "device_id": "laptop"})
	})
}

// foMailCodes returns the codes of the code mails sent to addr, oldest
// first.
func foMailCodes(s *smtptest.Server, addr string) []string {
	var out []string
	for _, m := range s.Messages() {
		if slices.Contains(m.To, addr) && strings.Contains(m.Subject, "verification code") {
			out = append(out, evalCode.FindString(m.Text))
		}
	}
	return out
}

// foVictim is the master to kill: the one holding the installation-wide
// keys (tenants, API keys) and so the slot every request reads, whose
// loss no request escapes.
func foVictim(t *testing.T, s csSite) string {
	t.Helper()
	c, err := s.App.Redis.(*redis.ClusterClient).MasterForKey(t.Context(), keyspace.Tenants())
	if err != nil {
		t.Fatal(err)
	}
	return c.Options().Addr
}

// foQueued counts the jobs in every shard's stream and retry set.
func foQueued(ctx context.Context, s csSite) int64 {
	var n int64
	for sh := range keyspace.Shards {
		q, err1 := s.App.Redis.XLen(ctx, keyspace.Queue(sh)).Result()
		d, err2 := s.App.Redis.ZCard(ctx, keyspace.Delay(sh)).Result()
		if err1 != nil || err2 != nil {
			return -1
		}
		n += q + d
	}
	return n
}

// foUntil polls cond until it holds, failing the test at ctx's end.
func foUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s within the test's patience", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// foSlowTwilio is a proxy in front of the fake Twilio at target that
// holds every request for foTwilioWait, so that sends are in flight when
// the master dies.
func foSlowTwilio(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(foTwilioWait)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}
