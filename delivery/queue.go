package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Queue adds jobs from Go code that is not already inside a Lua script of
// the store, for instance alerts to a tenant's managers.
type Queue struct {
	rdb redis.UniversalClient
	box *seal.Box
}

// NewQueue returns a Queue writing to rdb; box is the "queue" seal.Box.
func NewQueue(rdb redis.UniversalClient, box *seal.Box) *Queue {
	return &Queue{rdb: rdb, box: box}
}

// Enqueue seals payload and adds a job to shard's stream, returning the
// entry id. challengeKey, if not empty, must carry the shard's hash tag; the
// challenge's delivery field is set to queued in the same step.
func (q *Queue) Enqueue(ctx context.Context, shard int, kind message.Kind, tenant, challengeKey string, payload []byte) (string, error) {
	if shard < 0 || shard >= keyspace.MaxShards {
		return "", fmt.Errorf("delivery: enqueue: shard %d out of range", shard)
	}
	if kind == "" {
		return "", errors.New("delivery: enqueue: empty kind")
	}
	keys := []string{keyspace.Queue(shard)}
	if challengeKey != "" {
		if !keyspace.InShard(challengeKey, shard) {
			return "", fmt.Errorf("delivery: enqueue: challenge key is not in shard %s", keyspace.Tag(shard))
		}
		keys = append(keys, challengeKey)
	}
	id, err := enqueueScript.Run(ctx, q.rdb, keys, string(kind), tenant, challengeKey, SealPayload(q.box, payload)).Text()
	if err != nil {
		return "", fmt.Errorf("delivery: enqueue: %w", err)
	}
	return id, nil
}
