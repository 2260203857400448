package engine_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redisinfo"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/risk/geoip"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// benchUsers is the number of users with seeded history; benchHistory their
// past logins each.
const (
	benchUsers   = 2000
	benchHistory = 12
)

var benchUAs = []string{
	evUAChrome,
	evUAFirefox,
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
}

// benchLogin is user i's usual context.
func benchLogin(i int) engine.EvaluateInput {
	return engine.EvaluateInput{
		UserID:    fmt.Sprintf("bench-user-%05d", i),
		IP:        fmt.Sprintf("198.51.100.%d", i%250+1),
		UserAgent: benchUAs[i%len(benchUAs)],
		DeviceID:  fmt.Sprintf("device-%05d", i),
	}
}

// BenchmarkEvaluate measures engine.Evaluate on a real redis-server (one
// read and one write round trip each) over benchUsers users with seeded
// history.
func BenchmarkEvaluate(b *testing.B) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("redis-server not on PATH")
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(b), PoolSize: 64})
	b.Cleanup(func() { _ = rdb.Close() })
	geo, err := geoip.OpenDemo()
	if err != nil {
		b.Fatal(err)
	}
	risk.WarmUp()
	eng, err := engine.New(redisstore.New(rdb, redisstore.Options{}), engine.Options{
		Secret: []byte("engine-evaluate-bench-secret-0123456789abcdef"), Geo: geo})
	if err != nil {
		b.Fatal(err)
	}
	tn, err := eng.Tenants.CreateTenant(ctx, "Bench", "Bench")
	if err != nil {
		b.Fatal(err)
	}

	// Seed: every user's past logins from their usual context, a few from
	// a second address of the same network.
	now := time.Now()
	for i := range benchUsers {
		in := benchLogin(i)
		past := make([]engine.PastLogin, benchHistory)
		for j := range past {
			ip := in.IP
			if j%4 == 3 {
				ip = fmt.Sprintf("198.51.100.%d", (i+7)%250+1)
			}
			past[j] = engine.PastLogin{IP: ip, UserAgent: in.UserAgent, DeviceID: in.DeviceID,
				At: now.Add(-time.Duration(benchHistory-j) * 24 * time.Hour)}
		}
		if _, err := eng.Logins.ImportHistory(ctx, engine.UserRef{Tenant: tn.ID, User: in.UserID}, past, engine.Actor{Kind: message.ActorSystem}); err != nil {
			b.Fatalf("seed %s: %v", in.UserID, err)
		}
	}
	// Warm up: scripts loaded, tenant cached.
	if ev, err := eng.Logins.Evaluate(ctx, tn.ID, benchLogin(0)); err != nil || ev.Decision != engine.DecisionAllow || ev.Risk.Level != risk.RiskLow {
		b.Fatalf("warm-up: %+v %v", ev, err)
	}

	b.Run("familiar", func(b *testing.B) {
		b.ReportAllocs()
		defer reportRedisCPU(b, rdb)()
		i := 0
		for b.Loop() {
			if _, err := eng.Logins.Evaluate(ctx, tn.ID, benchLogin(i%benchUsers)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("new_country_and_device", func(b *testing.B) {
		b.ReportAllocs()
		defer reportRedisCPU(b, rdb)()
		i := 0
		for b.Loop() {
			in := benchLogin(i % benchUsers)
			in.IP = fmt.Sprintf("192.0.2.%d", i%250+1)
			in.DeviceID = fmt.Sprintf("stranger-%d", i)
			if _, err := eng.Logins.Evaluate(ctx, tn.ID, in); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("familiar_parallel", func(b *testing.B) {
		b.ReportAllocs()
		defer reportRedisCPU(b, rdb)()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1))
				if _, err := eng.Logins.Evaluate(ctx, tn.ID, benchLogin(i%benchUsers)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// reportRedisCPU starts counting the Redis server's CPU time (INFO cpu,
// user and system); the function it returns reports it per operation as
// redis-µs/op, what the store's scripts and commands cost the server.
func reportRedisCPU(b *testing.B, rdb *redis.Client) func() {
	cpu := func() float64 {
		v, ok := redisinfo.CPU(context.Background(), rdb)
		if !ok {
			b.Fatal("the benchmark's redis-server reports no CPU time")
		}
		return v
	}
	before := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric((cpu()-before)*1e6/float64(b.N), "redis-µs/op")
		}
	}
}
