package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
)

// After Redis forgot its scripts (a restart, a failover to a fresh
// replica), an evaluation's write and its read pipeline (a script among
// plain commands) load them and run again only what failed: the write is
// applied once.
func TestPipelineReloadRunsOnlyUnknownScripts(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Server(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(rdb, Options{})
	t.Cleanup(s.Close)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	u := engine.UserRef{Tenant: "tn_pipe", User: "u"}
	rec := engine.LoginRecord{ID: "lg_" + s.Placement(u) + "aaaaaaaaaaaaaaaaaaaaaaaa", Tenant: u.Tenant, User: u.User, At: time.Now(), First: true,
		Decision: engine.DecisionAllow, Levels: []engine.LevelValue{{Level: "ip.addr", Hash: "h", Bucket: "b"}}}
	_, err := s.SaveLogin(ctx, u, engine.LoginWrite{Record: rec, Learn: true, LearnOpt: engine.LearnOptions{HistorySize: 5, HistoryTTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadLogin(ctx, u, engine.LoginQuery{Levels: rec.Levels, Now: time.Now(), Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st.UserLogins != 1 || st.TenantLogins != 1 || st.Levels[0].UserCount != 1 || st.Levels[0].TenantCount != 1 {
		t.Fatalf("after one login: n_u %d N %d levels %+v; want each counted once", st.UserLogins, st.TenantLogins, st.Levels)
	}
}
