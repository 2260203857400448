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
	return cpuOf(Parse(raw))
}

func cpuOf(info map[string]string) (float64, bool) {
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

// Usage is what a Redis server has spent so far: its CPU seconds (user
// and system) and its scripts' calls and time inside them (EVALSHA and
// EVAL, INFO commandstats; the commands a script calls count in both).
type Usage struct {
	CPU         float64 // seconds
	ScriptCalls int64
	ScriptUsec  int64
}

// Sub is what u spent since before.
func (u Usage) Sub(before Usage) Usage {
	return Usage{CPU: u.CPU - before.CPU, ScriptCalls: u.ScriptCalls - before.ScriptCalls, ScriptUsec: u.ScriptUsec - before.ScriptUsec}
}

// Read returns the server's Usage so far; false when it does not report
// its CPU seconds (an embedded miniredis) or cannot be read.
func Read(ctx context.Context, rdb redis.UniversalClient) (Usage, bool) {
	raw, err := rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return Usage{}, false
	}
	info := Parse(raw)
	cpu, ok := cpuOf(info)
	if !ok {
		return Usage{}, false
	}
	u := Usage{CPU: cpu}
	for _, k := range []string{"cmdstat_evalsha", "cmdstat_eval"} {
		for kv := range strings.SplitSeq(info[k], ",") {
			name, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch name {
			case "calls":
				u.ScriptCalls += n
			case "usec":
				u.ScriptUsec += n
			}
		}
	}
	return u, true
}
