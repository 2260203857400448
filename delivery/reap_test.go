package delivery

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// TestReapScript checks that only consumers without pending entries are
// removed.
func TestReapScript(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"redis":     func(t *testing.T) string { return redistest.Server(t) },
		"miniredis": func(t *testing.T) string { return miniredis.RunT(t).Addr() },
	}
	for name, addr := range backends {
		t.Run(name, func(t *testing.T) {
			if name == "miniredis" {
				// XINFO CONSUMERS of miniredis reports no idle time, so
				// nothing is ever old enough: the embedded default is one
				// process and has no dead consumers to remove.
				t.Skip("miniredis reports idle -1 in XINFO CONSUMERS")
			}
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr(t)})
			defer rdb.Close()
			stream := keyspace.Queue(0)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"kind", "sms"}}).Err())
			must(rdb.XGroupCreateMkStream(ctx, stream, DefaultGroup, "0").Err())
			must(rdb.XGroupCreateConsumer(ctx, stream, DefaultGroup, "gone").Err())
			must(rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: DefaultGroup, Consumer: "busy", Streams: []string{stream, ">"}, Block: -1}).Err())

			n, err := reapScript.Run(ctx, rdb, []string{stream}, DefaultGroup, -1).Int()
			must(err)
			if n != 1 {
				t.Errorf("reaped %d consumers, want 1", n)
			}
			cs, err := rdb.XInfoConsumers(ctx, stream, DefaultGroup).Result()
			must(err)
			if len(cs) != 1 || cs[0].Name != "busy" {
				t.Errorf("consumers left: %+v", cs)
			}
		})
	}
}
