package delivery

import "time"

// backoff returns the wait before retry number attempt+1: a random point in
// [0, min(max, base·2^attempt)) with r in [0, 1) ("full jitter"), so a burst
// of failures does not come back as a burst.
func backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	ceiling := max
	if attempt >= 0 && attempt < 62 {
		if d := base << attempt; d > 0 && d>>attempt == base && d < max {
			ceiling = d
		}
	}
	if r < 0 {
		r = 0
	}
	if r >= 1 {
		r = 0.999999
	}
	return time.Duration(r * float64(ceiling))
}
