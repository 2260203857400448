package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/delivery"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// TestQueueCluster runs two workers on a real three-master Redis Cluster
// with jobs spread over all shards, some retried and some dead-lettered, so
// every script runs with its keys on every master.
func TestQueueCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.Cluster(t)})
	t.Cleanup(func() { _ = rdb.Close() })

	// The shards' slots are spread over the masters.
	masters := map[string]bool{}
	for s := range keyspace.Shards {
		c, err := rdb.MasterForKey(ctx, keyspace.Queue(s))
		if err != nil {
			t.Fatal(err)
		}
		masters[c.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("shards live on %d masters, want 3", len(masters))
	}

	const jobs = 200
	q := delivery.NewQueue(rdb, testBox())
	expires := time.Now().Add(5 * time.Minute)
	for i := range jobs {
		shard := i % keyspace.Shards
		ch := challengeKey(shard, fmt.Sprintf("c%d", i))
		putChallenge(t, rdb, ch, "pending", expires)
		enqueue(t, q, shard, ch, []byte(fmt.Sprintf(`{"to":"+61400000%03d","body":"%d"}`, i, i)))
	}

	// Every 10th job fails once, every 50th is refused for good.
	kind := func(j delivery.Job) int {
		var m message.SMS
		if err := json.Unmarshal(j.Payload, &m); err != nil {
			t.Errorf("payload: %v", err)
		}
		var n int
		fmt.Sscan(m.Body, &n)
		return n
	}
	rec := &recorder{fn: func(_ int, j delivery.Job) (delivery.Result, error) {
		n := kind(j)
		switch {
		case n%50 == 0:
			return delivery.Result{}, delivery.Permanent(errors.New("twilio 21610: recipient unsubscribed"))
		case n%10 == 0 && j.Attempt == 0:
			return delivery.Result{}, errors.New("twilio: http 503")
		}
		return delivery.Result{ProviderID: fmt.Sprintf("SM%d", n)}, nil
	}}
	reg := prometheus.NewRegistry()
	startWorker(t, rdb, rec.handler("a"), workerOpts("a", reg))
	startWorker(t, rdb, rec.handler("b"), workerOpts("b", reg))

	const permanent, retried = jobs / 50, jobs/10 - jobs/50
	eventually(t, "all jobs finished", func() bool {
		return jobsTotal(t, reg, "sms", delivery.OutcomeSent)+jobsTotal(t, reg, "sms", delivery.OutcomeDead) == jobs
	})
	for s := range keyspace.Shards {
		if !idle(t, rdb, s) {
			t.Errorf("shard %d not idle", s)
		}
	}
	if got := jobsTotal(t, reg, "sms", delivery.OutcomeRetried); got != retried {
		t.Errorf("retried = %v, want %d", got, retried)
	}

	sent := map[int]int{}
	for _, c := range rec.Calls() {
		n := kind(c.job)
		if n%50 != 0 && (n%10 != 0 || c.job.Attempt > 0) {
			sent[n]++
		}
	}
	for i := range jobs {
		ch := challengeKey(i%keyspace.Shards, fmt.Sprintf("c%d", i))
		if i%50 == 0 {
			if got := hget(t, rdb, ch, "delivery"); got != string(message.DeliveryFailed) {
				t.Errorf("job %d: delivery = %q, want failed", i, got)
			}
			continue
		}
		if sent[i] != 1 {
			t.Errorf("job %d delivered %d times", i, sent[i])
		}
		if got := hget(t, rdb, ch, "provider_id"); got != fmt.Sprintf("SM%d", i) {
			t.Errorf("job %d: provider_id = %q", i, got)
		}
	}

	dl, err := delivery.DeadLetters(ctx, rdb, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != permanent {
		t.Errorf("%d dead letters, want %d", len(dl), permanent)
	}
	for _, d := range dl {
		if d.Error != "twilio 21610: recipient unsubscribed" {
			t.Errorf("dead letter error = %q", d.Error)
		}
	}
}
