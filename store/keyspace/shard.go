package keyspace

import (
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// Shards is the number of user shards.
const Shards = 64

// MaxShards bounds a shard count: a shard tag has two hex digits.
const MaxShards = 256

// tags are the hash tags of the shards, "{s%02x}".
var tags = func() (t [MaxShards]string) {
	for i := range t {
		t[i] = fmt.Sprintf("{s%02x}", i)
	}
	return t
}()

// Tag returns the hash tag of shard (0 ≤ shard < MaxShards).
func Tag(shard int) string { return tags[shard] }

// ShardOf returns the shard of a tenant's user; a tenant's home shard is
// ShardOf(tenant, "").
func ShardOf(tenant, user string) int {
	return int(crc32.ChecksumIEEE([]byte(tenant+"\x00"+user)) % Shards)
}

// Placement returns the two hex digits that new challenge and login ids of
// a tenant's user carry, so any process finds such a record's slot from its
// id alone.
func Placement(tenant, user string) string { return fmt.Sprintf("%02x", ShardOf(tenant, user)) }

// idBody is the length of an id after its prefix and placement.
const idBody = 24

// ParseID returns the shard carried by an id made of prefix, a placement
// and 24 base32 characters; ok is false for anything else.
func ParseID(prefix, id string) (shard int, ok bool) {
	if len(id) != len(prefix)+2+idBody || id[:len(prefix)] != prefix {
		return 0, false
	}
	s, err := strconv.ParseUint(id[len(prefix):len(prefix)+2], 16, 8)
	if err != nil || s >= Shards {
		return 0, false
	}
	for _, r := range id[len(prefix)+2:] {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return 0, false
		}
	}
	return int(s), true
}

// InShard reports whether key carries shard's hash tag, that is, whether a
// script on shard's stream may touch it in Redis Cluster.
func InShard(key string, shard int) bool {
	if shard < 0 || shard >= MaxShards {
		return false
	}
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return false
	}
	return key[open:open+end+2] == Tag(shard)
}
