package keyspace

import (
	"slices"
	"testing"

	"github.com/stepup-auth/stepup/risk"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		shard                       int
		tag, stream, delay, deadKey string
	}{
		{0, "{s00}", "su:{s00}:q", "su:{s00}:qdelay", "su:{s00}:dlq"},
		{10, "{s0a}", "su:{s0a}:q", "su:{s0a}:qdelay", "su:{s0a}:dlq"},
		{63, "{s3f}", "su:{s3f}:q", "su:{s3f}:qdelay", "su:{s3f}:dlq"},
	}
	for _, tt := range tests {
		if got := Tag(tt.shard); got != tt.tag {
			t.Errorf("Tag(%d) = %q, want %q", tt.shard, got, tt.tag)
		}
		if got := Queue(tt.shard); got != tt.stream {
			t.Errorf("Queue(%d) = %q, want %q", tt.shard, got, tt.stream)
		}
		if got := Delay(tt.shard); got != tt.delay {
			t.Errorf("Delay(%d) = %q, want %q", tt.shard, got, tt.delay)
		}
		if got := Dead(tt.shard); got != tt.deadKey {
			t.Errorf("Dead(%d) = %q, want %q", tt.shard, got, tt.deadKey)
		}
	}
}

func TestInShard(t *testing.T) {
	tests := []struct {
		key   string
		shard int
		want  bool
	}{
		{"su:{s05}:ch:abc", 5, true},
		{"su:{s05}:ch:abc", 6, false},
		{"su:{s3f}:ch:{x}", 63, true},
		{"su:ch:abc", 5, false},
		{"su:{}:ch", 0, false},
		{"su:{s05:ch", 5, false},
		{"su:{t:acme}:x", 5, false},
	}
	for _, tt := range tests {
		if got := InShard(tt.key, tt.shard); got != tt.want {
			t.Errorf("InShard(%q, %d) = %v, want %v", tt.key, tt.shard, got, tt.want)
		}
	}
}

func TestPlacementParsesBack(t *testing.T) {
	for _, u := range []string{"", "alice", "bob@example.com", "ü"} {
		id := "ch_" + Placement("acme", u) + "abcdefghijklmnopqrstuvwx"
		sh, ok := ParseID("ch_", id)
		if !ok || sh != ShardOf("acme", u) {
			t.Errorf("ParseID(%q) = %d, %v; want %d", id, sh, ok, ShardOf("acme", u))
		}
	}
	for _, id := range []string{"", "ch_", "lg_00abcdefghijklmnopqrstuvwx", "ch_zzabcdefghijklmnopqrstuvwx",
		"ch_40abcdefghijklmnopqrstuvwx", "ch_00abcdefghijklmnopqrstuvw1", "ch_00abc",
		"ch_-1abcdefghijklmnopqrstuvwx", "ch_+1abcdefghijklmnopqrstuvwx", "ch_ 1abcdefghijklmnopqrstuvwx"} {
		if _, ok := ParseID("ch_", id); ok {
			t.Errorf("ParseID(%q) ok", id)
		}
	}
}

func TestUserKeysShareTheSlot(t *testing.T) {
	u := UserOf("acme", "alice")
	tag := Tag(u.Shard())
	keys := append(u.DataKeys(), u.Challenge("x"), u.Login("x"), u.Queue(), u.Events(), u.Users())
	for _, k := range keys {
		if !InShard(k, u.Shard()) {
			t.Errorf("%s lacks %s", k, tag)
		}
	}
	for _, l := range risk.LevelNames() {
		if !slices.Contains(u.DataKeys(), u.History(l)) {
			t.Errorf("erasure misses level %s", l)
		}
	}
	if got, want := u.Account(), "su:"+tag+":u:acme:YWxpY2U:a"; got != want {
		t.Errorf("Account = %q, want %q", got, want)
	}
}
