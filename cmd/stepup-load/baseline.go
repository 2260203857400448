package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// maxEchoBody bounds the baseline's request body, as stepupd's API does.
const maxEchoBody = 64 << 10

// echoHandler is the baseline endpoint: a bare gin handler that does what
// every JSON endpoint does and nothing else. It reads the body within a
// limit, decodes it strictly into the evaluation request's shape and
// encodes it back.
func echoHandler() http.Handler {
	// Release mode, as stepupd's API runs: no debug route listing. gin
	// only offers the mode as process-wide state.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New() // no logger: stepupd logs at warn during the load run
	r.POST("/echo", func(c *gin.Context) {
		b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxEchoBody))
		if err != nil {
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": "body too large"})
			return
		}
		var req evaluateReq
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, req)
	})
	return r
}

// startBaseline serves echoHandler on a free loopback port until ctx ends
// and returns the endpoint's URL.
func startBaseline(ctx context.Context) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: echoHandler(), ReadHeaderTimeout: 10 * time.Second}
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
	}
	return "http://" + ln.Addr().String() + "/echo", stop, nil
}
