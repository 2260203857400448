//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof" // profiling endpoints, only in builds tagged pprof
	"os"
)

// Builds tagged pprof serve the runtime profiles on STEPUPD_PPROF_ADDR
// (default 127.0.0.1:6060), for measuring; release builds have none.
func init() {
	addr := os.Getenv("STEPUPD_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() { _ = http.ListenAndServe(addr, nil) }()
}
