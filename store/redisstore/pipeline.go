package redisstore

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// pipelined runs the scripts fill queues as one round trip. Scripts run
// by EVALSHA; when Redis does not know some yet (a fresh or failed-over
// node), they are loaded and only those are run again: the others ran, and
// running a write twice would apply it twice.
func (s *Store) pipelined(ctx context.Context, fill func(redis.Pipeliner)) error {
	pipe := s.rdb.Pipeline()
	fill(pipe)
	cmds, err := pipe.Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		return err
	}
	if err := s.loadScripts(ctx); err != nil {
		return err
	}
	pipe = s.rdb.Pipeline()
	for _, c := range cmds {
		if e := c.Err(); e != nil && strings.Contains(e.Error(), "NOSCRIPT") {
			c.SetErr(nil)
			_ = pipe.Process(ctx, c) // queues c again: its caller reads the new answer
		}
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
