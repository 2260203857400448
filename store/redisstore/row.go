package redisstore

import "strconv"

// countRow is one level's count-min row in a process's copy of a tenant's
// statistics. The engine names buckets by small base-36 numbers (below
// denseSize); those are kept in a map while few are in use and in a dense
// array once many are, so a full row costs 64 KiB rather than megabytes of
// map entries. Any other bucket name is kept as it is.
type countRow struct {
	few   map[uint16]int64
	dense []int64
	other map[string]int64
}

// denseSize is the number of buckets a dense row holds (the engine's
// count-min width).
const denseSize = 1 << 14

// denseAt is how many buckets in use make a row dense: beyond it the map
// costs more than the array.
const denseAt = denseSize / 8

func bucketIndex(b string) (uint16, bool) {
	n, err := strconv.ParseUint(b, 36, 16)
	if err != nil || n >= denseSize || strconv.FormatUint(n, 36) != b {
		return 0, false
	}
	return uint16(n), true
}

// get returns a bucket's count.
func (r *countRow) get(b string) int64 {
	i, ok := bucketIndex(b)
	switch {
	case !ok:
		return r.other[b]
	case r.dense != nil:
		return r.dense[i]
	default:
		return r.few[i]
	}
}

// add adds inc to a bucket (a count at or below zero is dropped) and
// returns the count before and after.
func (r *countRow) add(b string, inc int64) (before, after int64) {
	i, ok := bucketIndex(b)
	switch {
	case !ok:
		if r.other == nil {
			r.other = map[string]int64{}
		}
		before, after = addTo(r.other, b, inc)
	case r.dense != nil:
		before = r.dense[i]
		after = max(before+inc, 0)
		r.dense[i] = after
	default:
		if r.few == nil {
			r.few = map[uint16]int64{}
		}
		before, after = addTo(r.few, i, inc)
		if len(r.few) > denseAt {
			r.dense = make([]int64, denseSize)
			for k, v := range r.few {
				r.dense[k] = v
			}
			r.few = nil
		}
	}
	return before, after
}

// addTo adds inc to m[k], dropping a count at or below zero, and returns
// the count before and after.
func addTo[K comparable](m map[K]int64, k K, inc int64) (before, after int64) {
	before = m[k]
	after = before + inc
	if after <= 0 {
		delete(m, k)
	} else {
		m[k] = after
	}
	return before, after
}
