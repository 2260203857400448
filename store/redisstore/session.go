package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/store/keyspace"
)

// The web console's sessions: opaque data under the hash of the session
// id, with an idle and an absolute expiry. The console owns what the data
// means; the store only keeps it and forgets it on time.

// PutSession stores a console session's data under idHash, to expire after
// idle without use or at deadline, whichever comes first.
func (s *Store) PutSession(ctx context.Context, idHash string, data []byte, now time.Time, idle time.Duration, deadline time.Time) error {
	if !now.Before(deadline) || idle <= 0 {
		return errors.New("redisstore: put session: already expired")
	}
	return putSessionScript.Run(ctx, s.rdb, []string{keyspace.ConsoleSession(idHash)},
		data, ms(now), idle.Milliseconds(), ms(deadline)).Err()
}

// TouchSession returns a console session's data and extends its idle
// expiry from now; ok is false for no session, or one that expired (which
// is deleted).
func (s *Store) TouchSession(ctx context.Context, idHash string, now time.Time, idle time.Duration) (data []byte, ok bool, err error) {
	return s.readSession(ctx, idHash, now, idle, true)
}

// PeekSession is TouchSession without extending the idle expiry: for
// requests a page makes on its own (the audit log's live tail), which are
// no sign of a manager at the console.
func (s *Store) PeekSession(ctx context.Context, idHash string, now time.Time, idle time.Duration) (data []byte, ok bool, err error) {
	return s.readSession(ctx, idHash, now, idle, false)
}

func (s *Store) readSession(ctx context.Context, idHash string, now time.Time, idle time.Duration, touch bool) (data []byte, ok bool, err error) {
	b, err := touchSessionScript.Run(ctx, s.rdb, []string{keyspace.ConsoleSession(idHash)},
		strconv.FormatInt(ms(now), 10), idle.Milliseconds(), flag(touch)).Text()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return []byte(b), true, nil
}

// DeleteSession ends a console session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.rdb.Del(ctx, keyspace.ConsoleSession(idHash)).Err()
}
