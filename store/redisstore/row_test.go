package redisstore

import (
	"strconv"
	"testing"
)

// TestCountRow: counts read back the same in a row's map and dense forms,
// across the switch, for the engine's bucket names and any other name;
// counts at or below zero drop out.
func TestCountRow(t *testing.T) {
	var r countRow
	name := func(i int) string { return strconv.FormatUint(uint64(i), 36) }
	for i := range denseAt {
		r.add(name(i), int64(i%7+1))
	}
	if r.dense != nil {
		t.Fatalf("dense at %d buckets, want at more than %d", denseAt, denseAt)
	}
	r.add("not-a-bucket", 3)
	r.add("0"+name(5), 2) // not canonical: a name of its own
	before, after := r.add(name(denseAt), 1)
	if r.dense == nil || before != 0 || after != 1 {
		t.Fatalf("after %d buckets: dense %v, before %d after %d", denseAt+1, r.dense != nil, before, after)
	}
	for _, tc := range []struct {
		bucket string
		want   int64
	}{
		{name(0), 1}, {name(6), 7}, {name(denseAt - 1), int64((denseAt-1)%7 + 1)}, {name(denseAt), 1},
		{name(denseSize - 1), 0}, {name(denseSize), 0}, {"not-a-bucket", 3}, {"0" + name(5), 2}, {name(5), 6},
	} {
		if got := r.get(tc.bucket); got != tc.want {
			t.Errorf("get(%q) = %d, want %d", tc.bucket, got, tc.want)
		}
	}
	if before, after := r.add(name(6), -10); before != 7 || after != 0 || r.get(name(6)) != 0 {
		t.Errorf("a count taken below zero: before %d after %d, now %d", before, after, r.get(name(6)))
	}
	if _, after := r.add("not-a-bucket", -3); after != 0 || len(r.other) != 1 {
		t.Errorf("an other bucket at zero stays: %v", r.other)
	}
}
