package delivery

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// TestSettleAfterFailover runs finishScript on a job entry in each state a
// promoted replica can hold it in. An entry still in the stream is an
// unfinished job, whether it is pending to the worker that sent it, to
// another, or to nobody (the XREADGROUP that handed it out was not
// replicated): the outcome is recorded and the entry deleted, so the group
// never hands it out again. An entry that is gone was finished.
func TestSettleAfterFailover(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()
	q, ch := keyspace.Queue(3), keyspace.Challenge(3, "c1")

	tests := []struct {
		name    string
		prepare func(id string) // after the entry was added
		want    int64
	}{
		{"pending to the worker", func(string) { readAs(t, rdb, q, "w1") }, 1},
		{"pending to another worker", func(string) { readAs(t, rdb, q, "w2") }, 1},
		{"handed to nobody", func(string) {}, 1},
		{"finished before", func(id string) {
			readAs(t, rdb, q, "w1")
			if err := rdb.XAck(ctx, q, DefaultGroup, id).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.XDel(ctx, q, id).Err(); err != nil {
				t.Fatal(err)
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.XGroupCreateMkStream(ctx, q, DefaultGroup, "0").Err(); err != nil {
				t.Fatal(err)
			}
			rdb.HSet(ctx, ch, "status", "pending", "delivery", "queued")
			id, err := enqueueScript.Run(ctx, rdb, []string{q, ch}, "sms", "tn", ch, "data").Text()
			if err != nil {
				t.Fatal(err)
			}
			tt.prepare(id)
			got, err := finishScript.Run(ctx, rdb, []string{q, ch}, DefaultGroup, id, OutcomeSent, "SM1", "").Int64()
			if err != nil || got != tt.want {
				t.Fatalf("finish = %d, %v; want %d", got, err, tt.want)
			}
			if n := rdb.XLen(ctx, q).Val(); n != 0 {
				t.Errorf("stream holds %d entries after finish, want 0", n)
			}
			if p := rdb.XPending(ctx, q, DefaultGroup).Val(); p.Count != 0 {
				t.Errorf("%d entries pending after finish, want 0", p.Count)
			}
			wantDelivery := map[int64]string{1: "sent", 0: "queued"}[tt.want]
			if d := rdb.HGet(ctx, ch, "delivery").Val(); d != wantDelivery {
				t.Errorf("challenge delivery %q, want %q", d, wantDelivery)
			}
			// The group never hands the job out again.
			if m := readAs(t, rdb, q, "w3"); m != 0 {
				t.Errorf("after finish the group handed out %d entries", m)
			}
			again, err := finishScript.Run(ctx, rdb, []string{q, ch}, DefaultGroup, id, OutcomeSent, "SM1", "").Int64()
			if err != nil || again != 0 {
				t.Errorf("second finish = %d, %v; want 0", again, err)
			}
		})
	}
}

// readAs reads new entries of q as consumer and returns how many.
func readAs(t *testing.T, rdb *redis.Client, q, consumer string) int {
	t.Helper()
	res, err := rdb.XReadGroup(t.Context(), &redis.XReadGroupArgs{Group: DefaultGroup, Consumer: consumer, Streams: []string{q, ">"}, Count: 10, Block: -1}).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(res[0].Messages)
}
