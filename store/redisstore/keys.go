package redisstore

import (
	"encoding/base64"
	"fmt"

	"github.com/stepup-auth/stepup/engine"
)

// shardTags are the hash tags shared by every key of a shard's users.
var shardTags = func() (t [engine.Shards]string) {
	for i := range t {
		t[i] = fmt.Sprintf("{s%02x}", i)
	}
	return t
}()

func shardTag(shard int) string { return shardTags[shard] }

// keys builds every Redis key the store uses.
type keys struct{}

var k keys

func (keys) tenants() string          { return "su:{g}:tenants" }
func (keys) keyHashes() string        { return "su:{g}:keys" }
func (keys) keyIDs() string           { return "su:{g}:keyids" }
func (keys) token(hash string) string { return "su:{g}:tok:" + hash }
func (keys) keyEvents() string        { return "su:{g}:keyrevoked" }

// tenant keys live in the tenant's home shard, so a tenant-level change, its
// audit event and the mails it queues are one script too.
func (keys) tenant(t, what string) string { return tenantPrefix(t) + what }

// tenantPrefix is what every key of a tenant starts with.
func tenantPrefix(t string) string { return "su:" + shardTag(tenantShard(t)) + ":t:" + t + ":" }

func tenantShard(t string) int                { return engine.ShardOf(t, "") }
func (keys) policy(t string) string           { return k.tenant(t, "policy") }
func (keys) stats(t string) string            { return k.tenant(t, "stats") }
func (keys) counts(t, level string) string    { return k.tenant(t, "c:"+level) }
func (keys) failedIP(t, ipHash string) string { return k.tenant(t, "fip:"+ipHash) }
func (keys) tenantEvents(t string) string     { return k.events(tenantShard(t), t) }
func (keys) tenantQueue(t string) string      { return k.queue(tenantShard(t)) }

func (keys) user(u engine.UserRef, what string) string { return userPrefix(u) + what }

// userPrefix is what every key of a user starts with; the hot paths build
// it once per call.
func userPrefix(u engine.UserRef) string {
	return "su:" + shardTag(u.Shard()) + ":u:" + u.Tenant + ":" +
		base64.RawURLEncoding.EncodeToString([]byte(u.User)) + ":"
}

func (keys) account(u engine.UserRef) string               { return k.user(u, "a") }
func (keys) meta(u engine.UserRef) string                  { return k.user(u, "m") }
func (keys) history(u engine.UserRef, level string) string { return k.user(u, "h:"+level) }
func (keys) failedPw(u engine.UserRef) string              { return k.user(u, "fp") }
func (keys) openChallenges(u engine.UserRef) string        { return k.user(u, "ch") }
func (keys) failedCh(u engine.UserRef) string              { return k.user(u, "fc") }
func (keys) attempts(u engine.UserRef) string              { return k.user(u, "at") }

func (keys) challenge(shard int, id string) string { return "su:" + shardTag(shard) + ":ch:" + id }
func (keys) login(shard int, id string) string     { return "su:" + shardTag(shard) + ":lg:" + id }
func (keys) queue(shard int) string                { return "su:" + shardTag(shard) + ":q" }
func (keys) events(shard int, t string) string     { return "su:" + shardTag(shard) + ":ev:" + t }
func (keys) users(shard int, t string) string      { return "su:" + shardTag(shard) + ":users:" + t }

// historyLevels are the feature levels kept per user, in a fixed order so
// erasure can name every key.
var historyLevels = []string{"ip.addr", "ip.net", "ip.asn", "ip.cc", "ua.full", "ua.browser", "ua.os", "ua.device", "dev.id"}

// provider maps a provider's message id to its challenge key. It lives in
// the installation slot; the challenge is written by a second call.
func (keys) provider(id string) string { return "su:{g}:sid:" + id }

// limit is a rate limit's key; each limit is its own slot.
func (keys) limit(name string) string { return "su:{rl:" + name + "}" }

// tally is a tenant's daily counts for the digest (day as 2006-01-02).
func (keys) tally(t, day string) string { return k.tenant(t, "day:"+day) }
