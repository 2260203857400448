package redisinfo_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/redisinfo"
	"github.com/stepup-auth/stepup/internal/redistest"
)

func TestParse(t *testing.T) {
	got := redisinfo.Parse("# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n\r\n# Other\r\nrole:master\r\n")
	want := map[string]string{"used_cpu_sys": "1.5", "used_cpu_user": "2.25", "role": "master"}
	if len(got) != len(want) {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// servers are a real redis-server's client and an embedded miniredis'.
func servers(t *testing.T) (real, mini *redis.Client) {
	real = redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	mini = redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = real.Close(); _ = mini.Close() })
	return real, mini
}

// CPU reads a real redis-server's CPU seconds, which grow as it works, and
// refuses a server that does not report them (miniredis).
func TestCPU(t *testing.T) {
	ctx := context.Background()
	rdb, mrdb := servers(t)
	before, ok := redisinfo.CPU(ctx, rdb)
	if !ok {
		t.Fatal("a real redis-server reported no CPU seconds")
	}
	for i := range 20000 {
		rdb.Set(ctx, "k", i, 0)
	}
	after, ok := redisinfo.CPU(ctx, rdb)
	if !ok || after <= before {
		t.Errorf("CPU seconds went from %v to %v (ok %v) over 20,000 commands", before, after, ok)
	}

	if v, ok := redisinfo.CPU(ctx, mrdb); ok {
		t.Errorf("miniredis reported %v CPU seconds", v)
	}
}

// Read reports a real redis-server's CPU seconds and its scripts' calls
// and time, which grow as scripts run; miniredis is refused.
func TestRead(t *testing.T) {
	ctx := context.Background()
	rdb, mrdb := servers(t)
	before, ok := redisinfo.Read(ctx, rdb)
	if !ok {
		t.Fatal("a real redis-server reported nothing")
	}
	sc := redis.NewScript(`for i = 1, 200 do redis.call('INCR', KEYS[1]) end return 1`)
	for range 100 {
		if err := sc.Run(ctx, rdb, []string{"k"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	u, ok := redisinfo.Read(ctx, rdb)
	if !ok {
		t.Fatal("no second reading")
	}
	d := u.Sub(before)
	if d.ScriptCalls < 100 || d.ScriptCalls > 102 || d.ScriptUsec <= 0 || d.CPU <= 0 {
		t.Errorf("100 script runs: %+v", d)
	}

	if u, ok := redisinfo.Read(ctx, mrdb); ok {
		t.Errorf("miniredis reported %+v", u)
	}
}
