package app

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis that stops answering (down, paused, partitioned away) must turn
// into 503 store_unavailable within seconds, not hang every request until
// the HTTP server's write timeout. go-redis' defaults (5 s dial, 3 s read,
// 3 retries with backoff) let one call wait over ten seconds; ours bound
// it to about one dial or read timeout. A value set in redis.url's query
// (dial_timeout, read_timeout, write_timeout, pool_timeout, max_retries)
// wins. Every command of stepup takes milliseconds.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 2 * time.Second // read and write
	// redisPoolTimeout is how long a request waits for a free connection
	// while all are busy, as they are when Redis hangs.
	redisPoolTimeout = 3 * time.Second
	// redisMaxRetries is none (go-redis spells it -1). A command that timed
	// out may have run: retrying a script would count a code attempt or
	// spend a limit twice. A connection Redis closed while it sat in the
	// pool is found by the pool's own health check, not by a retry.
	redisMaxRetries = -1
)

// withTimeouts fills the timeouts of a single-node client that the URL
// left unset.
func withTimeouts(o *redis.Options) *redis.Options {
	o.DialTimeout = orDefault(o.DialTimeout, redisDialTimeout)
	o.ReadTimeout = orDefault(o.ReadTimeout, redisIOTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, redisIOTimeout)
	o.PoolTimeout = orDefault(o.PoolTimeout, redisPoolTimeout)
	if o.MaxRetries == 0 {
		o.MaxRetries = redisMaxRetries
	}
	// A request's own deadline (/readyz's 2 s) bounds its commands too.
	o.ContextTimeoutEnabled = true
	return o
}

// clusterTimeouts sets the same on a cluster client.
func clusterTimeouts(o *redis.ClusterOptions) *redis.ClusterOptions {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
	o.PoolTimeout, o.MaxRetries, o.ContextTimeoutEnabled = redisPoolTimeout, redisMaxRetries, true
	return o
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// storeDown marks a go-redis error that means Redis cannot serve now, for
// engine.AsError (it implements engine.StoreUnavailable). Network errors
// and timeouts need no mark: the engine knows them.
type storeDown struct{ err error }

func (e storeDown) Error() string          { return e.err.Error() }
func (e storeDown) Unwrap() error          { return e.err }
func (e storeDown) StoreUnavailable() bool { return true }

// downReplies are the prefixes of Redis' answers meaning "not now": a
// server loading its data set, a cluster or a replica's primary down, a
// slot in migration.
var downReplies = []string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN"}

// markDown marks err when it means Redis cannot serve now.
func markDown(err error) error {
	if isDown(err) {
		return storeDown{err}
	}
	return err
}

// isDown reports whether err, not marked yet, means Redis cannot serve
// now.
func isDown(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if _, marked := errors.AsType[storeDown](err); marked {
		return false
	}
	if errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) {
		return true
	}
	for _, p := range downReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// downHook applies markDown to every command's error, pipelined ones
// included.
type downHook struct{}

func (downHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (downHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return markDown(next(ctx, cmd))
	}
}

func (downHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if isDown(cmd.Err()) {
				cmd.SetErr(storeDown{cmd.Err()})
			}
		}
		return markDown(err)
	}
}
