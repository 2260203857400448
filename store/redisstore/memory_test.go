package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// TestLoginRecordMemory measures, on a real redis-server, the bytes every
// evaluated login keeps for the feedback window (README states it): a
// record of all nine levels with a place and a device, as evaluate writes
// it.
func TestLoginRecordMemory(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, redisstore.Options{})
	t.Cleanup(s.Close)
	u := engine.UserRef{Tenant: "tn_memory", User: "someone@example.com"}
	id := "lg_" + s.Placement(u) + strings.Repeat("a", 24)
	var lv []engine.LevelValue
	for _, l := range []string{"ip.addr", "ip.net", "ip.asn", "ip.cc", "ua.full", "ua.browser", "ua.os", "ua.device", "dev.id"} {
		lv = append(lv, engine.LevelValue{Level: l, Hash: "0123456789abcdef", Bucket: "c3f"})
	}
	now := time.Now()
	rec := engine.LoginRecord{ID: id, Tenant: u.Tenant, User: u.User, At: now, Decision: engine.DecisionAllow, Levels: lv,
		Place:  &engine.Place{At: now, Country: "AU", Lat: -33.8688, Lon: 151.2093, HasLoc: true},
		Device: engine.DeviceInfo{DeviceHash: strings.Repeat("ab", 32), Browser: "Chrome 126", OS: "Windows 10", Country: "AU"},
		IP:     "203.0.113.x", Score: 12}
	if _, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, RecordTTL: 7 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	sh, _ := keyspace.ParseID("lg_", id)
	n, err := rdb.MemoryUsage(ctx, keyspace.Login(sh, id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one evaluated login's record: %d bytes (MEMORY USAGE)", n)
	if n > 1500 {
		t.Errorf("a login record takes %d bytes, more than the 1500 the README promises", n)
	}
}
