package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// DeadLetter is a job that was given up on. It carries no payload.
type DeadLetter struct {
	Shard     int
	ID        string // entry id in the dead-letter stream
	Origin    string // entry id the job had in the job stream
	Kind      message.Kind
	Tenant    string
	Challenge string
	Attempt   int
	Error     string
	At        time.Time
}

// DeadLetters returns the newest dead letters of all shards, newest first,
// at most limit of them.
func DeadLetters(ctx context.Context, rdb redis.UniversalClient, shards, limit int) ([]DeadLetter, error) {
	if shards <= 0 {
		shards = keyspace.Shards
	}
	if limit <= 0 {
		return nil, nil
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, shards)
	for s := range shards {
		cmds[s] = pipe.XRevRangeN(ctx, keyspace.Dead(s), "+", "-", int64(limit))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("delivery: dead letters: %w", err)
	}
	var out []DeadLetter
	for s, c := range cmds {
		for _, m := range c.Val() {
			out = append(out, deadLetter(s, m))
		}
	}
	slices.SortFunc(out, func(a, b DeadLetter) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func deadLetter(shard int, m redis.XMessage) DeadLetter {
	str := func(k string) string {
		s, _ := m.Values[k].(string)
		return s
	}
	d := DeadLetter{
		Shard: shard, ID: m.ID, Origin: str("origin"), Kind: message.Kind(str(keyspace.FieldKind)),
		Tenant: str(keyspace.FieldTenant), Challenge: str(keyspace.FieldChallenge), Error: str("error"),
	}
	d.Attempt, _ = strconv.Atoi(str(keyspace.FieldAttempt))
	if ms, err := strconv.ParseInt(str("at"), 10, 64); err == nil {
		d.At = time.UnixMilli(ms).UTC()
	}
	return d
}

// Requeue moves dead letter id of shard back into the job stream with its
// attempts reset, for an operator who fixed the cause. It returns the new
// job id; ok is false when there is no such dead letter.
func Requeue(ctx context.Context, rdb redis.UniversalClient, shard int, id string) (newID string, ok bool, err error) {
	if shard < 0 || shard >= keyspace.MaxShards {
		return "", false, fmt.Errorf("delivery: requeue: shard %d out of range", shard)
	}
	newID, err = requeueScript.Run(ctx, rdb, []string{keyspace.Dead(shard), keyspace.Queue(shard)}, id).Text()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("delivery: requeue: %w", err)
	}
	return newID, true, nil
}
