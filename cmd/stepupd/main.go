// Command stepupd serves stepup's HTTP API and runs its delivery workers.
//
// With no Redis configured it runs on an embedded in-process store with
// console SMS and mail drivers, creates a demo tenant and prints its keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/app"
)

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stepupd:", err)
		os.Exit(1)
	}
}

func run(args, environ []string, stdout io.Writer) error {
	setGC(environ)
	fs := flag.NewFlagSet("stepupd", flag.ContinueOnError)
	path := fs.String("config", "", "YAML configuration file (STEPUP_* environment variables win over it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, stdout, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	// A Service named stepup makes Kubernetes set STEPUP_SERVICE_HOST,
	// STEPUP_PORT and the like; config.Load skips them.
	for _, kv := range config.ServiceLinkVariables(environ) {
		a.Log.Debug("ignoring a Kubernetes service variable", "variable", kv)
	}
	if cfg.Embedded() {
		if err := demo(ctx, a.Engine, cfg, stdout); err != nil {
			return err
		}
	}

	hs := &http.Server{Addr: cfg.Listen, Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	workerDone := make(chan error, 1)
	wctx, stopWorker := context.WithCancel(context.Background())
	go func() { workerDone <- a.RunWorkers(wctx) }()
	serveErr := make(chan error, 1)
	go func() {
		if cfg.TLS.CertFile != "" {
			serveErr <- hs.ListenAndServeTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			return
		}
		serveErr <- hs.ListenAndServe()
	}()
	a.Log.Info("stepupd listening", "addr", cfg.Listen, "tls", cfg.TLS.CertFile != "", "embedded", cfg.Embedded())

	select {
	case err := <-serveErr:
		stopWorker()
		<-workerDone
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		a.Log.Info("shutting down: finishing in-flight requests")
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			a.Log.Error("shutdown", "err", err)
		}
		stopWorker()
		<-workerDone
	}
	return nil
}

// gcPercent is stepupd's GOGC unless the environment sets one. Its live
// heap is small (tens of MB at most: tenant statistics, caches) and every
// evaluation allocates about 18 KB, so at Go's default of 100 it spends a
// fifth of its CPU collecting; 400 lets the heap grow to five times the
// live one between collections, a few tens of MB, for about a tenth more
// throughput (README, Performance).
const gcPercent = 400

func setGC(environ []string) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOGC=") {
			return // the runtime read it
		}
	}
	debug.SetGCPercent(gcPercent)
}
