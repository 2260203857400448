package delivery

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/stepup-auth/stepup/internal/seal"
)

// DefaultShards is the number of queue shards, equal to the engine's user
// shards.
const DefaultShards = 64

// maxShards bounds the shard count: a shard tag has two hex digits.
const maxShards = 256

// DefaultGroup is the consumer group of the workers.
const DefaultGroup = "workers"

// Stream entry fields of a job.
const (
	FieldKind      = "kind"
	FieldTenant    = "tenant"
	FieldChallenge = "ch"
	FieldData      = "data"
	FieldAttempt   = "attempt"
)

// Job kinds.
const (
	KindSMS    = "sms"
	KindMail   = "mail"
	KindNotify = "notify"
)

// Values of a challenge hash's delivery field maintained by the queue (the
// provider's status callback may later set delivered or undelivered).
const (
	DeliveryQueued      = "queued"
	DeliverySent        = "sent"
	DeliveryDelivered   = "delivered"
	DeliveryUndelivered = "undelivered"
	DeliveryFailed      = "failed"
	DeliveryDropped     = "dropped"
)

// ShardTag returns the hash tag of shard: "{s%02x}".
func ShardTag(shard int) string { return fmt.Sprintf("{s%02x}", shard) }

// StreamKey returns the key of shard's job stream.
func StreamKey(shard int) string { return "su:" + ShardTag(shard) + ":q" }

// DelayKey returns the key of shard's sorted set of jobs waiting for a retry.
func DelayKey(shard int) string { return "su:" + ShardTag(shard) + ":qdelay" }

// DeadKey returns the key of shard's dead-letter stream.
func DeadKey(shard int) string { return "su:" + ShardTag(shard) + ":dlq" }

// SealPayload seals a job payload with the "queue" box and encodes it for
// the data field.
func SealPayload(box *seal.Box, payload []byte) string {
	return base64.StdEncoding.EncodeToString(box.Seal(payload))
}

// openPayload reverses SealPayload.
func openPayload(box *seal.Box, data string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	plain, err := box.Open(raw)
	if err != nil {
		return nil, fmt.Errorf("open payload: %w", err)
	}
	return plain, nil
}

// inShard reports whether key carries shard's hash tag, that is, whether a
// script on shard's stream may touch it in Redis Cluster.
func inShard(key string, shard int) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return false
	}
	return "{"+key[open+1:open+1+end]+"}" == ShardTag(shard)
}
