package console

import (
	"context"
	"log/slog"

	"github.com/stepup-auth/stepup/notify"
)

// Options configure a Sender. The zero value logs to slog.Default().
type Options struct {
	Logger *slog.Logger
}

// Sender logs mails instead of sending them. It is safe for concurrent use.
type Sender struct {
	logger *slog.Logger
}

// New returns a Sender.
func New(opts Options) *Sender {
	return &Sender{logger: opts.Logger}
}

// Send logs each mail as one record at Info. It never fails.
func (s *Sender) Send(ctx context.Context, mails ...notify.Mail) error {
	logger := s.logger
	if logger == nil {
		logger = slog.Default()
	}
	for _, m := range mails {
		logger.LogAttrs(ctx, slog.LevelInfo, "mail",
			slog.Any("to", m.To),
			slog.String("from_name", m.FromName),
			slog.String("from", m.FromAddress),
			slog.String("subject", m.Subject),
			slog.String("text", m.Text),
		)
	}
	return nil
}
