package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-delivery-tests")

func testBox() *seal.Box { return seal.New(testSecret, "queue", nil) }

// eventually polls cond until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call is one Handle call seen by a recorder.
type call struct {
	job      delivery.Job
	consumer string
}

// recorder is a fake Handler: it records calls and answers with fn.
type recorder struct {
	mu    sync.Mutex
	calls []call
	fn    func(n int, j delivery.Job) (delivery.Result, error) // n counts calls from 0
}

func (r *recorder) handler(consumer string) delivery.Handler {
	return delivery.HandlerFunc(func(ctx context.Context, j delivery.Job) (delivery.Result, error) {
		r.mu.Lock()
		n := len(r.calls)
		r.calls = append(r.calls, call{job: j, consumer: consumer})
		fn := r.fn
		r.mu.Unlock()
		if fn == nil {
			return delivery.Result{ProviderID: fmt.Sprintf("P%d", n)}, nil
		}
		return fn(n, j)
	})
}

func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) N() int { return len(r.Calls()) }

// workerOpts are fast options for tests.
func workerOpts(consumer string, reg prometheus.Registerer) delivery.Options {
	return delivery.Options{
		Consumer:     consumer,
		Workers:      4,
		PollInterval: 5 * time.Millisecond,
		BackoffBase:  time.Millisecond,
		BackoffMax:   5 * time.Millisecond,
		Registerer:   reg,
		Box:          testBox(),
		Logger:       testLogger(),
	}
}

// startWorker runs a worker until stop is called or the test ends; stop
// waits for Run to return.
func startWorker(t *testing.T, rdb redis.UniversalClient, h delivery.Handler, o delivery.Options) (stop func()) {
	t.Helper()
	w, err := delivery.New(rdb, h, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// challengeKey returns a challenge hash key in shard.
func challengeKey(shard int, id string) string {
	return keyspace.Challenge(shard, id)
}

// putChallenge writes a challenge hash.
func putChallenge(t *testing.T, rdb redis.UniversalClient, key, status string, expires time.Time) {
	t.Helper()
	err := rdb.HSet(context.Background(), key, "status", status, "expires_at", strconv.FormatInt(expires.UnixMilli(), 10)).Err()
	if err != nil {
		t.Fatalf("HSET %s: %v", key, err)
	}
}

func hget(t *testing.T, rdb redis.UniversalClient, key, field string) string {
	t.Helper()
	v, err := rdb.HGet(context.Background(), key, field).Result()
	if err != nil && err != redis.Nil {
		t.Fatalf("HGET %s %s: %v", key, field, err)
	}
	return v
}

func smsPayload(t *testing.T, to, body string) []byte {
	t.Helper()
	b, err := json.Marshal(message.SMS{To: to, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func enqueue(t *testing.T, q *delivery.Queue, shard int, ch string, payload []byte) string {
	t.Helper()
	id, err := q.Enqueue(context.Background(), shard, message.KindSMS, "acme", ch, payload)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

// idle reports whether shard's stream, pending list and delay set are empty.
func idle(t *testing.T, rdb redis.UniversalClient, shard int) bool {
	t.Helper()
	ctx := context.Background()
	n, err := rdb.XLen(ctx, keyspace.Queue(shard)).Result()
	if err != nil {
		t.Fatalf("XLEN: %v", err)
	}
	d, err := rdb.ZCard(ctx, keyspace.Delay(shard)).Result()
	if err != nil {
		t.Fatalf("ZCARD: %v", err)
	}
	p, err := rdb.XPending(ctx, keyspace.Queue(shard), delivery.DefaultGroup).Result()
	if redis.HasErrorPrefix(err, "NOGROUP") {
		return false // the worker has not created its groups yet
	}
	if err != nil && err != redis.Nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return n == 0 && d == 0 && (p == nil || p.Count == 0)
}

// jobsTotal reads stepup_delivery_jobs_total{kind, outcome}.
func jobsTotal(t *testing.T, reg *prometheus.Registry, kind, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "stepup_delivery_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// testLogger discards logs unless STEPUP_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("STEPUP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
