package app

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
)

// TestDownHookMarks: the go-redis errors that mean "Redis cannot serve
// now" without being network errors become store_unavailable; others stay
// what they are.
func TestDownHookMarks(t *testing.T) {
	addr := redistest.Server(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, PoolTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	rdb.AddHook(downHook{})
	ctx := context.Background()

	reply := func(msg string) func() error {
		return func() error { return rdb.Eval(ctx, "return redis.error_reply(ARGV[1])", nil, msg).Err() }
	}
	tests := []struct {
		name string
		run  func() error
		code string
	}{
		{"loading", reply("LOADING Redis is loading the dataset in memory"), "store_unavailable"},
		{"cluster down", reply("CLUSTERDOWN The cluster is down"), "store_unavailable"},
		{"primary down", reply("MASTERDOWN Link with MASTER is down"), "store_unavailable"},
		{"pipelined", func() error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Eval(ctx, "return redis.error_reply('LOADING x')", nil)
				return nil
			})
			return err
		}, "store_unavailable"},
		{"another error reply", reply("ERR something else"), "internal"},
		{"pool timeout", func() error {
			// The one connection is busy for a second.
			started := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				close(started)
				rdb.BLPop(ctx, time.Second, "nothing")
			}()
			<-started
			var err error
			for range 100 {
				if err = rdb.Get(ctx, "k").Err(); err != redis.Nil {
					break
				}
			}
			<-done
			return err
		}, "store_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("no error")
			}
			if got := engine.AsError(err).Code; got != tt.code {
				t.Errorf("AsError(%v).Code = %q, want %q", err, got, tt.code)
			}
		})
	}
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Errorf("a missing key: %v, want redis.Nil unmarked", err)
	}
}
