package redisstore

import (
	"testing"

	"github.com/stepup-auth/stepup/engine"
)

// A login record written before each level carried its bucket (a list of
// buckets parallel to the values) still reads with its buckets, so a
// challenge pending across the upgrade still teaches the tenant's counts.
func TestDecodeLoginOldFormat(t *testing.T) {
	old := `{"id":"lg_00aaaa","tenant":"tn","user":"u","at":"2026-11-23T12:00:00Z","decision":"challenge",` +
		`"values":[{"l":"ip.addr","h":"h1"},{"l":"ua.browser","h":"h2"}],"buckets":["b1","b2"],"device":{},"ip_masked":"","score":40,"first":false}`
	rec, err := decodeLogin([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.LevelValue{{Level: "ip.addr", Hash: "h1", Bucket: "b1"}, {Level: "ua.browser", Hash: "h2", Bucket: "b2"}}
	if len(rec.Levels) != 2 || rec.Levels[0] != want[0] || rec.Levels[1] != want[1] || rec.Score != 40 {
		t.Fatalf("old record read as %+v, want levels %+v", rec, want)
	}
	cur := `{"id":"lg_00aaaa","values":[{"l":"ip.addr","h":"h1","b":"b9"}],"buckets":["stale"]}`
	if rec, _ := decodeLogin([]byte(cur)); rec.Levels[0].Bucket != "b9" {
		t.Fatalf("current record's bucket = %q", rec.Levels[0].Bucket)
	}
}
