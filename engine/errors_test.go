package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// marked is an adapter's error meaning its server cannot serve now.
type marked struct{}

func (marked) Error() string          { return "connection pool timeout" }
func (marked) StoreUnavailable() bool { return true }

func TestAsErrorStoreUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"connection refused", refused, "store_unavailable"},
		{"read timeout", fmt.Errorf("load login: %w", timeout), "store_unavailable"},
		{"closed mid-answer", io.ErrUnexpectedEOF, "store_unavailable"},
		{"closed connection", fmt.Errorf("commit: %w", io.EOF), "store_unavailable"},
		{"deadline", context.DeadlineExceeded, "store_unavailable"},
		{"marked by the adapter", fmt.Errorf("evalsha: %w", marked{}), "store_unavailable"},
		{"wrapped as internal by the engine", engine.Internal(refused), "store_unavailable"},
		{"a domain error stays", fmt.Errorf("x: %w", engine.ErrUserNotFound), "user_not_found"},
		{"caller went away", context.Canceled, "internal"},
		{"anything else", errors.New("ERR wrong number of arguments"), "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := engine.AsError(tt.err)
			if e.Code != tt.code {
				t.Fatalf("AsError(%v).Code = %q, want %q", tt.err, e.Code, tt.code)
			}
			if tt.code != "store_unavailable" {
				return
			}
			if e.Kind != engine.KindUnavailable || e.Meta["retry_after"] != 2 || !errors.Is(e, tt.err) {
				t.Errorf("AsError(%v) = %+v; want KindUnavailable, retry_after 2, wrapping the cause", tt.err, e)
			}
			if engine.ErrStoreUnavailable.Err != nil {
				t.Error("AsError changed ErrStoreUnavailable itself")
			}
		})
	}
}
