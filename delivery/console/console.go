package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Options configures a Sender.
type Options struct {
	// Logger receives the messages, slog.Default() when nil.
	Logger *slog.Logger
	// Rand makes the fake message ids, crypto/rand when nil.
	Rand io.Reader
}

// Sender logs SMS instead of sending them. It is safe for concurrent use.
type Sender struct {
	log  *slog.Logger
	rand io.Reader
}

// New returns a Sender and logs a warning that codes will appear in the log.
func New(opts Options) *Sender {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	s := &Sender{log: opts.Logger.With("component", "sms-console"), rand: opts.Rand}
	s.log.Warn("console SMS driver: messages and their codes are written to the log; for local development only")
	return s
}

// Send logs the masked destination and body and returns a fake message id.
func (s *Sender) Send(ctx context.Context, to, body string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("console: message id: %w", err)
	}
	id := "CN" + hex.EncodeToString(b)
	s.log.InfoContext(ctx, "sms", "to", Mask(to), "body", body, "sid", id)
	return id, nil
}

// Mask returns a phone number with all but the country code and the last
// three digits hidden, in a fixed shape that does not reveal its length:
// "+61 ••••• ••156".
func Mask(number string) string {
	var digits []byte
	for i := 0; i < len(number); i++ {
		if c := number[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	tail := "•••"
	if len(digits) >= 7 {
		tail = string(digits[len(digits)-3:])
	}
	var b strings.Builder
	if p, err := phonenumbers.Parse(number, ""); err == nil && p.GetCountryCode() != 0 {
		fmt.Fprintf(&b, "+%d ", p.GetCountryCode())
	}
	b.WriteString("••••• ••")
	b.WriteString(tail)
	return b.String()
}
