package redisinfo

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Parse parses INFO's "key:value" lines; section headers and blank lines
// are skipped.
func Parse(raw string) map[string]string {
	m := make(map[string]string)
	for line := range strings.Lines(raw) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// CPU returns the server's CPU seconds so far, user and system (INFO cpu);
// false when it cannot be read or the server does not report them (an
// embedded miniredis).
func CPU(ctx context.Context, rdb redis.UniversalClient) (float64, bool) {
	raw, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	info := Parse(raw)
	var sum float64
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(info[k], 64)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}
