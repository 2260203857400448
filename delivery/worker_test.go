package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// backend makes a fresh, empty Redis for one test.
type backend func(t *testing.T) redis.UniversalClient

func realRedis(t *testing.T) redis.UniversalClient {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func miniRedis(t *testing.T) redis.UniversalClient {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestQueue runs the queue's semantics against a real redis-server.
func TestQueue(t *testing.T) { queueSuite(t, realRedis) }

// TestQueueMiniredis runs the same suite on miniredis, the store of the
// embedded default.
func TestQueueMiniredis(t *testing.T) { queueSuite(t, miniRedis) }

func queueSuite(t *testing.T, newRedis backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, rdb redis.UniversalClient)
	}{
		{"DeliversOnceAndAcks", testDeliversOnce},
		{"RetriesThenDelivers", testRetriesThenDelivers},
		{"RetryWaitsForBackoff", testRetryWaitsForBackoff},
		{"PermanentErrorDeadLettersAtOnce", testPermanentError},
		{"MaxAttemptsDeadLetters", testMaxAttempts},
		{"PanickingHandlerDeadLetters", testPanickingHandler},
		{"ClosedChallengeIsDropped", testDropsClosedChallenges},
		{"BadJobsDeadLetter", testBadJobs},
		{"ReclaimsFromStuckWorker", testReclaim},
		{"PoisonJobDeadLetters", testPoison},
		{"TwoWorkersDeliverEachJobOnce", testTwoWorkers},
		{"SameEntryIDOnSeveralShards", testSameIDs},
		{"ShutdownFinishesSends", testGracefulShutdown},
		{"EnqueueMarksChallengeQueued", testEnqueue},
		{"RequeueDeadLetter", testRequeue},
		{"GatedJobWaitsForLimitVerdicts", testGates},
		{"JobOfAnEarlierSendIsDropped", testResent},
		{"UserTagSurvivesRetryDeadAndRequeue", testUserTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newRedis(t)) })
	}
}

func testDeliversOnce(t *testing.T, rdb redis.UniversalClient) {
	reg := prometheus.NewRegistry()
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(5, "c1")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	payload := smsPayload(t, "+61412345156", "Your code is 123456")
	id := enqueue(t, q, 5, ch, payload)

	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	eventually(t, "challenge marked sent", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliverySent) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 5) })

	calls := rec.Calls()
	if len(calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(calls))
	}
	j := calls[0].job
	if j.ID != id || j.Shard != 5 || j.Kind != message.KindSMS || j.Tenant != "acme" || j.Challenge != ch || j.Attempt != 0 {
		t.Errorf("job = %+v", j)
	}
	if !bytes.Equal(j.Payload, payload) {
		t.Errorf("payload = %s, want %s", j.Payload, payload)
	}
	if got := hget(t, rdb, ch, "provider_id"); got != "P0" {
		t.Errorf("provider_id = %q, want P0", got)
	}
	if got := jobsTotal(t, reg, "sms", delivery.OutcomeSent); got != 1 {
		t.Errorf("jobs_total{sent} = %v, want 1", got)
	}
}

func testRetriesThenDelivers(t *testing.T, rdb redis.UniversalClient) {
	reg := prometheus.NewRegistry()
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(7, "c2")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	enqueue(t, q, 7, ch, smsPayload(t, "+61412345156", "code 654321"))

	rec := &recorder{fn: func(n int, j delivery.Job) (delivery.Result, error) {
		if n < 2 {
			return delivery.Result{}, errors.New("provider unavailable")
		}
		return delivery.Result{ProviderID: "SMok"}, nil
	}}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	eventually(t, "challenge marked sent", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliverySent) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 7) })

	calls := rec.Calls()
	if len(calls) != 3 {
		t.Fatalf("handler called %d times, want 3", len(calls))
	}
	for i, c := range calls {
		if c.job.Attempt != i {
			t.Errorf("call %d: attempt %d, want %d", i, c.job.Attempt, i)
		}
	}
	if calls[0].job.ID == calls[2].job.ID {
		t.Error("a retried job kept its entry id")
	}
	if got := hget(t, rdb, ch, "provider_id"); got != "SMok" {
		t.Errorf("provider_id = %q", got)
	}
	if got := jobsTotal(t, reg, "sms", delivery.OutcomeRetried); got != 2 {
		t.Errorf("jobs_total{retried} = %v, want 2", got)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func testRetryWaitsForBackoff(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Now().Truncate(time.Millisecond)}
	q := delivery.NewQueue(rdb, testBox())
	enqueue(t, q, 2, "", smsPayload(t, "+61412345156", "code 111111"))

	rec := &recorder{fn: func(n int, j delivery.Job) (delivery.Result, error) {
		if n == 0 {
			return delivery.Result{}, errors.New("try later")
		}
		return delivery.Result{}, nil
	}}
	o := workerOpts("a", nil)
	o.BackoffBase, o.BackoffMax = 10*time.Second, time.Minute
	o.Clock = clock.Now
	o.Rand = func() float64 { return 0.5 }
	startWorker(t, rdb, rec.handler("a"), o)

	eventually(t, "job parked", func() bool { return rdb.ZCard(ctx, keyspace.Delay(2)).Val() == 1 })
	zs := rdb.ZRangeWithScores(ctx, keyspace.Delay(2), 0, -1).Val()
	if want := float64(clock.Now().Add(5 * time.Second).UnixMilli()); zs[0].Score != want {
		t.Errorf("due = %v, want now+5s = %v", zs[0].Score, want)
	}
	if strings.Contains(zs[0].Member.(string), "111111") {
		t.Error("the delay set holds the code in the clear")
	}
	if rec.N() != 1 {
		t.Fatalf("handler called %d times before the backoff passed", rec.N())
	}
	clock.Advance(5 * time.Second)
	eventually(t, "retry after the backoff", func() bool { return rec.N() == 2 })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 2) })
	if a := rec.Calls()[1].job.Attempt; a != 1 {
		t.Errorf("retry attempt = %d, want 1", a)
	}
}

func testPermanentError(t *testing.T, rdb redis.UniversalClient) {
	reg := prometheus.NewRegistry()
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(9, "c3")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	enqueue(t, q, 9, ch, smsPayload(t, "+61412345156", "code 222222"))

	rec := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) {
		return delivery.Result{}, delivery.Permanent(errors.New("twilio 21211: invalid number"))
	}}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	eventually(t, "challenge marked failed", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliveryFailed) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 9) })

	if rec.N() != 1 {
		t.Errorf("handler called %d times, want 1", rec.N())
	}
	if got := hget(t, rdb, ch, "delivery_error"); got != "twilio 21211: invalid number" {
		t.Errorf("delivery_error = %q", got)
	}
	dl, err := delivery.DeadLetters(context.Background(), rdb, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Shard != 9 || dl[0].Kind != "sms" || dl[0].Tenant != "acme" ||
		dl[0].Challenge != ch || dl[0].Error != "twilio 21211: invalid number" || dl[0].At.IsZero() {
		t.Errorf("dead letters = %+v", dl)
	}
	if got := jobsTotal(t, reg, "sms", delivery.OutcomeDead); got != 1 {
		t.Errorf("jobs_total{dead} = %v, want 1", got)
	}
}

func testMaxAttempts(t *testing.T, rdb redis.UniversalClient) {
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(1, "c4")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	enqueue(t, q, 1, ch, smsPayload(t, "+61412345156", "code 333333"))

	rec := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) {
		return delivery.Result{}, errors.New("twilio: http 503")
	}}
	o := workerOpts("a", nil)
	o.MaxAttempts = 3
	startWorker(t, rdb, rec.handler("a"), o)
	eventually(t, "challenge marked failed", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliveryFailed) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 1) })

	if rec.N() != 3 {
		t.Errorf("handler called %d times, want 3", rec.N())
	}
	want := "gave up after 3 attempts: twilio: http 503"
	if got := hget(t, rdb, ch, "delivery_error"); got != want {
		t.Errorf("delivery_error = %q, want %q", got, want)
	}
	dl, _ := delivery.DeadLetters(context.Background(), rdb, 0, 10)
	if len(dl) != 1 || dl[0].Error != want || dl[0].Attempt != 2 {
		t.Errorf("dead letters = %+v", dl)
	}
}

func testPanickingHandler(t *testing.T, rdb redis.UniversalClient) {
	q := delivery.NewQueue(rdb, testBox())
	enqueue(t, q, 3, "", smsPayload(t, "+61412345156", "code 444444"))
	rec := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) { panic("boom") }}
	o := workerOpts("a", nil)
	o.MaxAttempts = 2
	startWorker(t, rdb, rec.handler("a"), o)
	eventually(t, "dead letter", func() bool {
		dl, _ := delivery.DeadLetters(context.Background(), rdb, 0, 10)
		return len(dl) == 1
	})
	if rec.N() != 2 {
		t.Errorf("handler called %d times, want 2", rec.N())
	}
}

func testDropsClosedChallenges(t *testing.T, rdb redis.UniversalClient) {
	reg := prometheus.NewRegistry()
	q := delivery.NewQueue(rdb, testBox())
	now := time.Now()
	tests := []struct {
		name, status string
		expires      time.Time
		exists       bool
	}{
		{"verified", "verified", now.Add(time.Minute), true},
		{"expired", "pending", now.Add(-time.Second), true},
		{"locked", "locked", now.Add(time.Minute), true},
		{"cancelled", "cancelled", now.Add(time.Minute), true},
		{"deleted", "", time.Time{}, false},
	}
	for _, tt := range tests {
		ch := challengeKey(4, tt.name)
		if tt.exists {
			putChallenge(t, rdb, ch, tt.status, tt.expires)
		}
		enqueue(t, q, 4, ch, smsPayload(t, "+61412345156", "code 555555"))
	}
	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	eventually(t, "all dropped", func() bool { return jobsTotal(t, reg, "sms", delivery.OutcomeDropped) == float64(len(tests)) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 4) })
	if rec.N() != 0 {
		t.Errorf("handler called %d times for closed challenges", rec.N())
	}
	for _, tt := range tests {
		ch := challengeKey(4, tt.name)
		want := message.DeliveryDropped
		if !tt.exists {
			want = ""
			if n := rdb.Exists(context.Background(), ch).Val(); n != 0 {
				t.Errorf("%s: a missing challenge hash was created", tt.name)
			}
		}
		if got := hget(t, rdb, ch, "delivery"); got != string(want) {
			t.Errorf("%s: delivery = %q, want %q", tt.name, got, want)
		}
		if tt.exists && hget(t, rdb, ch, "status") != tt.status {
			t.Errorf("%s: the worker changed the challenge status", tt.name)
		}
	}
}

func testBadJobs(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	otherBox := seal.New([]byte("another-secret-another-secret-another"), "queue", nil)
	ch := challengeKey(6, "bad")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(time.Minute))
	tests := []struct {
		name   string
		values []any
		want   string
	}{
		{"not base64", []any{"kind", "sms", "tenant", "acme", "data", "%%%", "attempt", "0"}, "payload cannot be opened"},
		{"other key", []any{"kind", "sms", "tenant", "acme", "ch", ch, "data", delivery.SealPayload(otherBox, []byte(`{}`)), "attempt", "0"}, "payload cannot be opened"},
		{"no kind", []any{"tenant", "acme", "data", "eA==", "attempt", "0"}, "job has no kind"},
		{"bad attempt", []any{"kind", "sms", "data", "eA==", "attempt", "x"}, "job has no valid attempt"},
		{"foreign challenge", []any{"kind", "sms", "ch", challengeKey(7, "x"), "data", "eA==", "attempt", "0"}, "challenge key is not in the job's shard"},
	}
	for _, tt := range tests {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(6), Values: tt.values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", nil))
	var dl []delivery.DeadLetter
	eventually(t, "dead letters", func() bool {
		dl, _ = delivery.DeadLetters(ctx, rdb, 0, 100)
		return len(dl) == len(tests)
	})
	if rec.N() != 0 {
		t.Errorf("handler called %d times for bad jobs", rec.N())
	}
	got := map[string]int{}
	for _, d := range dl {
		got[d.Error]++
	}
	for _, tt := range tests {
		if got[tt.want] == 0 {
			t.Errorf("%s: no dead letter with error %q (have %v)", tt.name, tt.want, got)
		}
	}
	if hget(t, rdb, ch, "delivery") != string(message.DeliveryFailed) {
		t.Error("challenge of an unopenable job not marked failed")
	}
	if n := rdb.Exists(ctx, challengeKey(7, "x")).Val(); n != 0 {
		t.Error("a challenge of another shard was touched")
	}
}

func testReclaim(t *testing.T, rdb redis.UniversalClient) {
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(8, "c5")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	enqueue(t, q, 8, ch, smsPayload(t, "+61412345156", "code 666666"))

	// Worker A takes the job and hangs in the middle of the send.
	started, release := make(chan struct{}), make(chan struct{})
	recA := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) {
		close(started)
		<-release
		return delivery.Result{}, errors.New("the process was gone")
	}}
	stopA := startWorker(t, rdb, recA.handler("a"), workerOpts("a", nil))
	<-started
	stopped := make(chan struct{})
	go func() { stopA(); close(stopped) }() // A's context is cancelled mid-send

	// Worker B claims it once it has been idle long enough and delivers it.
	recB := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) {
		return delivery.Result{ProviderID: "SMb"}, nil
	}}
	o := workerOpts("b", nil)
	o.ClaimIdle = 200 * time.Millisecond
	startWorker(t, rdb, recB.handler("b"), o)
	eventually(t, "B delivers", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliverySent) })

	// A wakes up and fails: its outcome must not undo B's.
	close(release)
	<-stopped
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 8) })
	if recB.N() != 1 {
		t.Errorf("B handled the job %d times, want 1", recB.N())
	}
	if a := recB.Calls()[0].job.Attempt; a != 1 {
		t.Errorf("reclaimed job attempt = %d, want 1 (the lost delivery counts)", a)
	}
	if got := hget(t, rdb, ch, "provider_id"); got != "SMb" {
		t.Errorf("provider_id = %q, want SMb", got)
	}
	if got := hget(t, rdb, ch, "delivery"); got != string(message.DeliverySent) {
		t.Errorf("delivery = %q after A's late failure", got)
	}
	if dl, _ := delivery.DeadLetters(context.Background(), rdb, 0, 10); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
}

func testPoison(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(11, "c6")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	id := enqueue(t, q, 11, ch, smsPayload(t, "+61412345156", "code 777777"))

	// Eight workers died while sending it: it is pending with a delivery
	// count of 8 under a consumer that is gone.
	stream := keyspace.Queue(11)
	if err := rdb.XGroupCreateMkStream(ctx, stream, delivery.DefaultGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: delivery.DefaultGroup, Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "XCLAIM", stream, delivery.DefaultGroup, "crashed", 0, id, "IDLE", 60000, "RETRYCOUNT", 8, "JUSTID").Err(); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	o := workerOpts("b", nil)
	o.ClaimIdle = 100 * time.Millisecond
	startWorker(t, rdb, rec.handler("b"), o)
	eventually(t, "challenge marked failed", func() bool { return hget(t, rdb, ch, "delivery") == string(message.DeliveryFailed) })
	eventually(t, "queue empty", func() bool { return idle(t, rdb, 11) })
	if rec.N() != 0 {
		t.Errorf("handler called %d times for a poison job", rec.N())
	}
	if e := hget(t, rdb, ch, "delivery_error"); !strings.Contains(e, "abandoned after 8 attempts") {
		t.Errorf("delivery_error = %q", e)
	}
}

func testTwoWorkers(t *testing.T, rdb redis.UniversalClient) {
	const jobs = 200
	reg := prometheus.NewRegistry()
	q := delivery.NewQueue(rdb, testBox())
	for i := range jobs {
		enqueue(t, q, 12, "", []byte(fmt.Sprintf(`{"to":"+61400000%03d","body":"n %d"}`, i, i)))
	}
	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	startWorker(t, rdb, rec.handler("b"), workerOpts("b", reg))
	eventually(t, "all jobs sent", func() bool { return rec.N() >= jobs && idle(t, rdb, 12) })

	seen := map[string]int{}
	for _, c := range rec.Calls() {
		seen[string(c.job.Payload)]++
	}
	if len(seen) != jobs {
		t.Errorf("%d distinct jobs delivered, want %d", len(seen), jobs)
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("job %s delivered %d times", p, n)
		}
	}
	if got := jobsTotal(t, reg, "sms", delivery.OutcomeSent); got != jobs {
		t.Errorf("jobs_total{sent} = %v, want %d", got, jobs)
	}
}

func testGracefulShutdown(t *testing.T, rdb redis.UniversalClient) {
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(13, "c7")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(5*time.Minute))
	enqueue(t, q, 13, ch, smsPayload(t, "+61412345156", "code 888888"))

	started, release := make(chan struct{}), make(chan struct{})
	var ctxErr error
	rec := &recorder{fn: func(_ int, j delivery.Job) (delivery.Result, error) {
		close(started)
		<-release
		return delivery.Result{ProviderID: "SMlate"}, nil
	}}
	h := delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
		res, err := rec.handler("a").Handle(ctx, j)
		ctxErr = ctx.Err()
		return res, err
	})
	stop := startWorker(t, rdb, h, workerOpts("a", nil))
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Run returned while a send was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if ctxErr != nil {
		t.Errorf("the send's context was cancelled at shutdown: %v", ctxErr)
	}
	if got := hget(t, rdb, ch, "delivery"); got != string(message.DeliverySent) {
		t.Errorf("delivery = %q after shutdown, want sent", got)
	}
	if !idle(t, rdb, 13) {
		t.Error("job not acknowledged at shutdown")
	}
}

func testEnqueue(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	q := delivery.NewQueue(rdb, testBox())
	ch := challengeKey(14, "c8")
	putChallenge(t, rdb, ch, "pending", time.Now().Add(time.Minute))
	id := enqueue(t, q, 14, ch, []byte(`{"to":"+61412345156","body":"code 999999"}`))
	if got := hget(t, rdb, ch, "delivery"); got != string(message.DeliveryQueued) {
		t.Errorf("delivery = %q, want queued", got)
	}
	msgs := rdb.XRange(ctx, keyspace.Queue(14), id, id).Val()
	if len(msgs) != 1 {
		t.Fatalf("entry %s not in the stream", id)
	}
	v := msgs[0].Values
	if v["kind"] != "sms" || v["tenant"] != "acme" || v["ch"] != ch || v["attempt"] != "0" {
		t.Errorf("entry = %v", v)
	}
	if strings.Contains(fmt.Sprint(v["data"]), "999999") || strings.Contains(fmt.Sprint(v["data"]), "+6141") {
		t.Error("the payload is stored in the clear")
	}

	tests := []struct {
		name  string
		shard int
		kind  message.Kind
		ch    string
	}{
		{"foreign challenge", 14, "sms", challengeKey(15, "x")},
		{"negative shard", -1, "sms", ""},
		{"shard too big", 256, "sms", ""},
		{"no kind", 14, "", ""},
	}
	for _, tt := range tests {
		if _, err := q.Enqueue(ctx, tt.shard, tt.kind, "acme", tt.ch, []byte("{}")); err == nil {
			t.Errorf("%s: Enqueue succeeded", tt.name)
		}
	}
}

func testRequeue(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	q := delivery.NewQueue(rdb, testBox())
	enqueue(t, q, 15, "", smsPayload(t, "+61412345156", "code 121212"))
	var fail sync.Mutex
	failing := true
	rec := &recorder{fn: func(int, delivery.Job) (delivery.Result, error) {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			return delivery.Result{}, delivery.Permanent(errors.New("sender not configured"))
		}
		return delivery.Result{}, nil
	}}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", nil))
	var dl []delivery.DeadLetter
	eventually(t, "dead letter", func() bool {
		dl, _ = delivery.DeadLetters(ctx, rdb, 0, 10)
		return len(dl) == 1
	})
	fail.Lock()
	failing = false
	fail.Unlock()
	if _, ok, err := delivery.Requeue(ctx, rdb, 15, "0-1"); ok || err != nil {
		t.Errorf("Requeue of a missing dead letter: ok=%v err=%v", ok, err)
	}
	if _, ok, err := delivery.Requeue(ctx, rdb, dl[0].Shard, dl[0].ID); !ok || err != nil {
		t.Fatalf("Requeue: ok=%v err=%v", ok, err)
	}
	eventually(t, "requeued job sent", func() bool { return rec.N() == 2 && idle(t, rdb, 15) })
	if a := rec.Calls()[1].job.Attempt; a != 0 {
		t.Errorf("requeued attempt = %d, want 0", a)
	}
	if dl, _ := delivery.DeadLetters(ctx, rdb, 0, 10); len(dl) != 0 {
		t.Errorf("dead letter still listed: %+v", dl)
	}
}

// testSameIDs sends jobs whose entry ids repeat across shards, as ids of
// jobs queued in the same millisecond do.
func testSameIDs(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	const shards = 10
	for s := range shards {
		err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(s), ID: "1-1", Values: []any{
			"kind", "sms", "tenant", "acme", "attempt", "0",
			"data", delivery.SealPayload(testBox(), []byte(fmt.Sprintf(`{"to":"+61400000000","body":"%d"}`, s))),
		}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", nil))
	eventually(t, "all shards delivered", func() bool {
		for s := range shards {
			if !idle(t, rdb, s) {
				return false
			}
		}
		return true
	})
	if rec.N() != shards {
		t.Errorf("handler called %d times, want %d", rec.N(), shards)
	}
}

// testGates: a code job queued with a login's write carries the verdict
// keys of the send limits taken in the same round trip; it is dropped
// unsent when one refused, waits for one not written yet (a cluster's
// other node), and is sent when every verdict allowed it or, after the
// wait, when one never came (lost with a failed master).
func testGates(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	verdict := func(scope, name string) string {
		return keyspace.LimitVerdict(keyspace.Limit(scope, "acme", "x"), strings.ReplaceAll(name, " ", "-"))
	}
	tests := []struct {
		name     string
		verdicts map[string]string // scope → "1", "0" or "" (never written)
		late     string            // a scope whose "1" is written only after the worker started
		sent     bool
	}{
		{"allowed", map[string]string{"sms:u": "1", "sms:t": "1"}, "", true},
		{"refused", map[string]string{"sms:u": "1", "sms:t": "0"}, "", false},
		{"late verdict", map[string]string{"sms:u": "1", "sms:n": ""}, "sms:n", true},
		{"no verdict", map[string]string{"sms:u": "1", "sms:n": ""}, "", true},
		{"refused, one never came", map[string]string{"sms:u": "0", "sms:n": ""}, "", false},
	}
	box := testBox()
	for i, tt := range tests {
		ch := challengeKey(3, tt.name)
		putChallenge(t, rdb, ch, "pending", time.Now().Add(time.Minute))
		var gates []string
		for scope, v := range tt.verdicts {
			k := verdict(scope, tt.name)
			gates = append(gates, k)
			if v != "" {
				rdb.Set(ctx, k, v, time.Minute)
			}
		}
		err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(3), Values: []any{
			keyspace.FieldKind, "sms", keyspace.FieldTenant, "acme", keyspace.FieldChallenge, ch,
			keyspace.FieldData, delivery.SealPayload(box, smsPayload(t, fmt.Sprintf("+6141234500%d", i), "code")),
			keyspace.FieldAttempt, "0", keyspace.FieldGates, strings.Join(gates, " ")}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A gate that is not a limit's verdict makes the job malformed.
	err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(3), Values: []any{
		keyspace.FieldKind, "sms", keyspace.FieldTenant, "acme", keyspace.FieldData, delivery.SealPayload(box, smsPayload(t, "+61412345099", "code")),
		keyspace.FieldAttempt, "0", keyspace.FieldGates, keyspace.Queue(3)}}).Err()
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	o := workerOpts("a", reg)
	o.ClaimIdle = 2 * time.Second // verdicts are waited for a quarter of it
	rec := &recorder{}
	startWorker(t, rdb, rec.handler("a"), o)
	time.Sleep(100 * time.Millisecond)
	for _, tt := range tests {
		if tt.late != "" {
			rdb.Set(ctx, verdict(tt.late, tt.name), "1", time.Minute)
		}
	}
	eventually(t, "all settled", func() bool {
		return jobsTotal(t, reg, "sms", delivery.OutcomeSent)+jobsTotal(t, reg, "sms", delivery.OutcomeDropped) == float64(len(tests))
	})
	eventually(t, "dead letter", func() bool {
		dl, _ := delivery.DeadLetters(ctx, rdb, 0, 10)
		return len(dl) == 1 && dl[0].Error == "job has a gate that is not a limit's verdict"
	})
	sent := map[string]bool{}
	for _, c := range rec.Calls() {
		sent[c.job.Challenge] = true
	}
	for _, tt := range tests {
		ch := challengeKey(3, tt.name)
		if sent[ch] != tt.sent {
			t.Errorf("%s: sent %v, want %v", tt.name, sent[ch], tt.sent)
		}
		want := message.DeliverySent
		if !tt.sent {
			want = message.DeliveryDropped
		}
		if got := hget(t, rdb, ch, "delivery"); got != string(want) {
			t.Errorf("%s: delivery %q, want %q", tt.name, got, want)
		}
	}
	if rec.N() != 3 {
		t.Errorf("%d sends, want 3", rec.N())
	}
}

// testResent: a job whose challenge was sent again since it was queued (a
// resend gave the challenge a new code) is dropped, before its first try
// or after a retry, without touching the challenge; the latest send's job
// keeps its send number through a retry and is sent, and so is a job
// without a send number (queued by an older version).
func testResent(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	box := testBox()
	add := func(ch, send string) {
		t.Helper()
		vals := []any{keyspace.FieldKind, "sms", keyspace.FieldTenant, "acme", keyspace.FieldChallenge, ch,
			keyspace.FieldData, delivery.SealPayload(box, smsPayload(t, "+61412345160", "code")), keyspace.FieldAttempt, "0"}
		if send != "" {
			vals = append(vals, keyspace.FieldSend, send)
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(4), Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	challenge := func(id string, sends int) string {
		ch := challengeKey(4, id)
		putChallenge(t, rdb, ch, "pending", time.Now().Add(time.Minute))
		rdb.HSet(ctx, ch, "sends", sends, "delivery", "queued")
		return ch
	}
	first := challenge("first", 2)   // the first send's job, after a resend
	legacy := challenge("legacy", 2) // a job queued before jobs carried their send number: sent, as then
	latest := challenge("latest", 2) // the resend's job
	raced := challenge("raced", 2)   // the resend's job, resent again while it waited out a retry
	retried := challenge("retried", 2)
	add(first, "1")
	add(legacy, "")
	add(latest, "2")
	add(raced, "2")
	add(retried, "2")

	var mu sync.Mutex
	failed := map[string]bool{}
	rec := &recorder{fn: func(n int, j delivery.Job) (delivery.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if (j.Challenge == raced || j.Challenge == retried) && !failed[j.Challenge] {
			failed[j.Challenge] = true
			if j.Challenge == raced {
				rdb.HSet(ctx, raced, "sends", 3, "delivery", "queued") // the user asked again
			}
			return delivery.Result{}, errors.New("provider unavailable")
		}
		return delivery.Result{ProviderID: "SM-" + j.Challenge}, nil
	}}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", prometheus.NewRegistry()))
	eventually(t, "queue empty", func() bool {
		return hget(t, rdb, retried, "delivery") == string(message.DeliverySent) && idle(t, rdb, 4)
	})

	sent := map[string]int{}
	for _, c := range rec.Calls() {
		sent[c.job.Challenge]++
	}
	want := map[string]int{latest: 1, raced: 1, retried: 2, legacy: 1}
	if !maps.Equal(sent, want) {
		t.Errorf("handler calls per challenge = %v, want %v", sent, want)
	}
	for ch, d := range map[string]string{first: "queued", latest: "sent", raced: "queued", retried: "sent", legacy: "sent"} {
		if got := hget(t, rdb, ch, "delivery"); got != d {
			t.Errorf("%s: delivery = %q, want %q", ch, got, d)
		}
	}
	if got := hget(t, rdb, retried, "provider_id"); got != "SM-"+retried {
		t.Errorf("provider_id = %q", got)
	}
}

// testUserTag: a job's user field (the keyed hash an erasure finds his
// jobs by) stays with the job through a retry, its dead letter and a
// requeue, which dead-letters it again.
func testUserTag(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	const shard, who = 6, "0123456789abcdef"
	err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.Queue(shard), Values: []any{
		keyspace.FieldKind, "sms", keyspace.FieldTenant, "acme", keyspace.FieldChallenge, "",
		keyspace.FieldData, delivery.SealPayload(testBox(), smsPayload(t, "+61412345161", "notice")), keyspace.FieldAttempt, "0",
		keyspace.FieldUser, who,
	}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{fn: func(n int, _ delivery.Job) (delivery.Result, error) {
		if n == 0 {
			return delivery.Result{}, errors.New("provider unavailable") // retried
		}
		return delivery.Result{}, delivery.Permanent(errors.New("refused"))
	}}
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", nil))
	deadUser := func() []string {
		var users []string
		for _, m := range rdb.XRange(ctx, keyspace.Dead(shard), "-", "+").Val() {
			u, _ := m.Values[keyspace.FieldUser].(string)
			users = append(users, u)
		}
		return users
	}
	eventually(t, "dead letter", func() bool { return rec.N() == 2 && len(deadUser()) == 1 && idle(t, rdb, shard) })
	if got := deadUser(); got[0] != who {
		t.Fatalf("dead letter's user = %q, want %q", got[0], who)
	}
	dl, err := delivery.DeadLetters(ctx, rdb, 0, 10)
	if err != nil || len(dl) != 1 {
		t.Fatalf("DeadLetters = %v, %v", dl, err)
	}
	if _, ok, err := delivery.Requeue(ctx, rdb, dl[0].Shard, dl[0].ID); !ok || err != nil {
		t.Fatalf("Requeue: ok=%v err=%v", ok, err)
	}
	eventually(t, "dead again", func() bool { return rec.N() == 3 && len(deadUser()) == 1 && idle(t, rdb, shard) })
	if got := deadUser(); got[0] != who {
		t.Errorf("requeued job's dead letter's user = %q, want %q", got[0], who)
	}
}
