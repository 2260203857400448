package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"github.com/stepup-auth/stepup/internal/redisinfo"
)

// maxEchoBody bounds the baseline's request body, as stepupd's API does.
const maxEchoBody = 64 << 10

// echoHandler is the baseline endpoint: a bare gin handler that does what
// every JSON endpoint does and nothing else. It reads the body within a
// limit, decodes it strictly into the evaluation request's shape and
// encodes it back.
func echoHandler() *gin.Engine {
	// Release mode, as stepupd's API runs: no debug route listing. gin
	// only offers the mode as process-wide state.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New() // no logger: stepupd logs at warn during the load run
	r.POST("/echo", func(c *gin.Context) {
		if req, ok := decodeEcho(c); ok {
			c.JSON(http.StatusOK, req)
		}
	})
	return r
}

// The read+write ceiling is the baseline plus what any evaluation must
// do at the least: one read round trip and one write round trip to Redis,
// each a trivial Lua script on a key of the request's user. Evaluate's
// latency against it is what stepup adds beyond those two round trips.
var (
	ceilingRead  = redis.NewScript(`return redis.call('HMGET', KEYS[1], 'n', 'at')`)
	ceilingWrite = redis.NewScript(`redis.call('HSET', KEYS[1], 'n', ARGV[1], 'at', ARGV[2])
return redis.call('PEXPIRE', KEYS[1], 600000)`)
)

// ceilingHandler answers like the echo after one read and one write
// round trip to rdb.
func ceilingHandler(rdb *redis.Client) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, ok := decodeEcho(c)
		if !ok {
			return
		}
		key := []string{"stepup-load:ceiling:" + req.UserID}
		ctx := c.Request.Context()
		if err := ceilingRead.Run(ctx, rdb, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		if err := ceilingWrite.Run(ctx, rdb, key, req.IP, time.Now().Unix()).Err(); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, req)
	}
}

// decodeEcho reads the body within a limit and decodes it strictly into
// the evaluation request's shape; on failure it answers the error itself.
func decodeEcho(c *gin.Context) (evaluateReq, bool) {
	var req evaluateReq
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxEchoBody))
	if err != nil {
		c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": "body too large"})
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return req, false
	}
	return req, true
}

// startBaseline serves echoHandler on a free loopback port until ctx ends
// and returns the server's base URL; with a Redis address it also serves
// the read+write ceiling at /ceiling.
func startBaseline(ctx context.Context, ceilingRedis string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := echoHandler()
	var rdb *redis.Client
	if ceilingRedis != "" {
		rdb = redis.NewClient(&redis.Options{Addr: ceilingRedis, PoolSize: 64})
		h.POST("/ceiling", ceilingHandler(rdb))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns http.ErrServerClosed after Shutdown; any other
		// failure shows up as the load phase's failed requests.
		_ = srv.Serve(ln)
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		if rdb != nil {
			_ = rdb.Close()
		}
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// redisUsage returns a reader of what the Redis server has spent so far
// (redisinfo.Read), for the phases that use it.
func redisUsage(rdb *redis.Client) func(context.Context) (redisinfo.Usage, bool) {
	return func(ctx context.Context) (redisinfo.Usage, bool) { return redisinfo.Read(ctx, rdb) }
}
