package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/engine"
)

// demo creates the embedded default's demo tenant and prints its keys and
// a first request to try.
func demo(ctx context.Context, eng *engine.Engine, cfg config.Config, w io.Writer) error {
	t, err := eng.Tenants.CreateTenant(ctx, "demo", "Demo")
	if err != nil {
		return err
	}
	app, err := eng.Tenants.CreateKey(ctx, t.ID, engine.KeyApp, "demo app")
	if err != nil {
		return err
	}
	mgr, err := eng.Tenants.CreateKey(ctx, t.ID, engine.KeyManager, "demo manager")
	if err != nil {
		return err
	}
	// The operator key is the operator's own: stdout is a log, and it is
	// not repeated there.
	op := "(set: STEPUP_OPERATOR_KEY or operator_key)"
	if cfg.OperatorKey == "" {
		op = "(none: set STEPUP_OPERATOR_KEY to use the operator API)"
	}
	fmt.Fprintf(w, `
stepupd is running on the EMBEDDED DEFAULT: all state lives in memory and is
lost when it stops. SMS codes and e-mails are printed to this log.

  demo tenant   %s
  app key       %s
  manager key   %s
  operator key  %s

Web console: open %s and sign in with the manager key.

Try the API:

  curl -s http://%s/v1/logins/evaluate \
    -H 'Authorization: Bearer %s' \
    -d '{"user_id":"alice","ip":"192.0.2.10","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36","device_id":"laptop-1"}'

`, t.ID, app.Secret, mgr.Secret, op, consoleURL(cfg), cfg.Listen, app.Secret)
	return nil
}

// consoleURL is where the web console of this stepupd is.
func consoleURL(cfg config.Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/") + "/console/"
	}
	scheme, host := "http", cfg.Listen
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	if h, port, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		host = net.JoinHostPort("localhost", port)
	}
	return scheme + "://" + host + "/console/"
}
