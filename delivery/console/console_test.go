package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/delivery/console"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+61412345156", "+61 ••••• ••156"},
		{"+14155550123", "+1 ••••• ••123"},
		{"+447700900456", "+44 ••••• ••456"},
		{"0412345156", "••••• ••156"},
		{"12", "••••• •••••"},
		{"", "••••• •••••"},
	}
	for _, tt := range tests {
		if got := console.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSend(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s := console.New(console.Options{Logger: log, Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 64))})
	id, err := s.Send(context.Background(), "+61412345156", "Your code is 123456")
	if err != nil {
		t.Fatal(err)
	}
	if id != "CN"+strings.Repeat("ab", 16) {
		t.Errorf("id = %q", id)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines = %d, want a warning and the message:\n%s", len(lines), buf.String())
	}
	var warn, msg map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &warn); err != nil {
		t.Fatal(err)
	}
	if warn["level"] != "WARN" || !strings.Contains(warn["msg"].(string), "development") {
		t.Errorf("warning = %v", warn)
	}
	if err := json.Unmarshal([]byte(lines[1]), &msg); err != nil {
		t.Fatal(err)
	}
	if msg["level"] != "INFO" || msg["to"] != "+61 ••••• ••156" || msg["body"] != "Your code is 123456" || msg["sid"] != id {
		t.Errorf("message line = %v", msg)
	}
	if strings.Contains(buf.String(), "412345") {
		t.Error("the full number reached the log")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, "+61412345156", "x"); err == nil {
		t.Error("Send with a cancelled context succeeded")
	}
}
