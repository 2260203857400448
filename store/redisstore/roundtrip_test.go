package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/risk/geoip"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// RISK.md section 4: one read round trip and one write round trip per
// evaluation at most. These tests count what engine.Evaluate sends through
// go-redis, on a real redis-server and on a real cluster.
//
// What is counted: every call of the client's ProcessHook (one command sent
// on its own: one round trip) and every call of its ProcessPipelineHook (one
// pipeline: its commands are written together and their answers read
// together, so one round trip). On a ClusterClient the client-level hook sees
// one call per pipeline; go-redis then splits the pipeline by node and sends
// the parts in parallel (one round trip of latency, but one request per node
// touched). The node-level hooks (installed with OnNewNode) count those
// per-node requests; an evaluation touches at most two slots per pipeline
// (the user's shard and the tenant's home shard), so at most two node
// requests per pipeline. Cluster housekeeping (CLUSTER SLOTS, COMMAND) that
// go-redis sends on its own is not the store's and is left out.

const rtSecret = "roundtrip-test-secret-0123456789abcdef0123"

const rtUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"

// rtCall is one call through a hook: a single command or a pipeline.
type rtCall struct {
	pipeline bool
	cmds     []string
}

func (c rtCall) String() string {
	if c.pipeline {
		return "pipeline[" + strings.Join(c.cmds, " ") + "]"
	}
	return c.cmds[0]
}

// rtHook records the calls made through it.
type rtHook struct {
	mu    sync.Mutex
	calls []rtCall
}

func rtName(cmd redis.Cmder) string {
	name := cmd.Name()
	if args := cmd.Args(); len(args) > 1 && (name == "evalsha" || name == "eval" || name == "script") {
		name += fmt.Sprintf(" %.8v", args[1]) // the script's hash (or SCRIPT's subcommand)
	}
	return name
}

// scripts counts the scripts a call ran.
func scripts(c rtCall) int {
	n := 0
	for _, cmd := range c.cmds {
		if strings.HasPrefix(cmd, "evalsha") || strings.HasPrefix(cmd, "eval ") {
			n++
		}
	}
	return n
}

func housekeeping(name string) bool {
	return name == "cluster" || name == "command" || name == "hello" || name == "client" || name == "ping"
}

func (h *rtHook) add(c rtCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
}

func (h *rtHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *rtHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := rtName(cmd); !housekeeping(n) {
			h.add(rtCall{cmds: []string{n}})
		}
		return next(ctx, cmd)
	}
}

func (h *rtHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c := rtCall{pipeline: true}
		setup := true
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, rtName(cmd))
			setup = setup && (cmd.Name() == "client" || cmd.Name() == "hello" || cmd.Name() == "auth")
		}
		if !setup { // a new connection's handshake is not a round trip of the store's
			h.add(c)
		}
		return next(ctx, cmds)
	}
}

// take returns the calls so far and forgets them.
func (h *rtHook) take() []rtCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	return c
}

type rtRedis struct {
	rdb     redis.UniversalClient
	client  *rtHook // client-level calls: round trips
	nodes   *rtHook // node-level requests (cluster only; nil on a single node)
	cluster bool
}

func TestEvaluateRoundTrips(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		addr := redistest.Server(t)
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb.Close() })
		h := &rtHook{}
		rdb.AddHook(h)
		testRoundTrips(t, rtRedis{rdb: rdb, client: h})
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := redistest.Cluster(t)
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = rdb.Close() })
		h, nodes := &rtHook{}, &rtHook{}
		rdb.OnNewNode(func(c *redis.Client) { c.AddHook(nodes) })
		rdb.AddHook(h)
		testRoundTrips(t, rtRedis{rdb: rdb, client: h, nodes: nodes, cluster: true})
	})
}

func testRoundTrips(t *testing.T, r rtRedis) {
	ctx := context.Background()
	st := redisstore.New(r.rdb, redisstore.Options{FlushEvery: time.Hour})
	geo, err := geoip.OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(st, engine.Options{Secret: []byte(rtSecret), Geo: geo})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := eng.Tenants.CreateTenant(ctx, "Acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	blocked, err := eng.Tenants.CreateTenant(ctx, "Blocked", "Blocked")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Policies.PutPolicy(ctx, blocked.ID, engine.PolicyUpdate{Policy: engine.PolicyPatch{BlockedCountries: &[]string{"AU"}}}, engine.Actor{Kind: "manager"}); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC()
	enroll := func(tenant, user string, f engine.Factors) {
		t.Helper()
		u := engine.UserRef{Tenant: tenant, User: user}
		a := engine.Account{Exists: true, Profile: engine.Profile{Email: user + "@example.test"}, Factors: f, CreatedAt: now, UpdatedAt: now}
		if err := st.Commit(ctx, u, engine.Commit{Version: 0, Account: &a, Now: now}); err != nil {
			t.Fatalf("enrol %s: %v", user, err)
		}
	}
	home := func(user string) engine.EvaluateInput {
		return engine.EvaluateInput{UserID: user, IP: "198.51.100.10", UserAgent: rtUA, DeviceID: "laptop"}
	}
	away := func(user string) engine.EvaluateInput {
		return engine.EvaluateInput{UserID: user, IP: "192.0.2.77", UserAgent: rtUA, DeviceID: "stranger"}
	}
	evaluate := func(tenant string, in engine.EvaluateInput) engine.Evaluation {
		t.Helper()
		ev, err := eng.Logins.Evaluate(ctx, tenant, in)
		if err != nil {
			t.Fatalf("evaluate %s: %v", in.UserID, err)
		}
		return ev
	}
	// Three learned logins for every user (and warm-up: the first call
	// loads the scripts, the tenant lookups are cached in the engine).
	users := []string{"familiar", "emailer", "totper", "texter", "denied"}
	for _, u := range users {
		tenant := tn.ID
		if u == "denied" {
			tenant = blocked.ID
		}
		for range 3 {
			if ev := evaluate(tenant, home(u)); ev.Decision != engine.DecisionAllow {
				t.Fatalf("seeding %s: %s", u, ev.Decision)
			}
		}
	}
	enroll(tn.ID, "emailer", engine.Factors{Email: &engine.EmailFactor{AddedAt: now}})
	enroll(tn.ID, "totper", engine.Factors{TOTP: &engine.TOTPFactor{Sealed: []byte("not used: no code is checked here"), AddedAt: now}})
	phone := seal.New([]byte(rtSecret), "pii", nil).Seal([]byte("+61491570156"))
	enroll(tn.ID, "texter", engine.Factors{SMS: &engine.PhoneFactor{Sealed: phone, Masked: "+61 ••• ••• 156", Country: "AU", AddedAt: now}})
	enroll(blocked.ID, "denied", engine.Factors{Email: &engine.EmailFactor{AddedAt: now}})

	// An SMS challenge also takes the SMS abuse limits (user, number,
	// client IP, country, tenant) and an e-mail challenge the e-mail ones
	// (user, address, client IP): in the write's round trip, each limit
	// its own slot, pipelined before the user's write, whose code job waits
	// for their verdicts. Every evaluation is exactly one read and one
	// write.
	cases := []struct {
		name     string
		tenant   string
		in       engine.EvaluateInput
		decision engine.Decision
		limits   int // the send limits taken with the write
	}{
		{"familiar login", tn.ID, home("familiar"), engine.DecisionAllow, 0},
		{"first login of a new user", tn.ID, home("newcomer"), engine.DecisionAllow, 0},
		{"challenge by e-mail", tn.ID, away("emailer"), engine.DecisionChallenge, 3},
		{"challenge by authenticator app", tn.ID, away("totper"), engine.DecisionChallenge, 0},
		{"challenge by SMS", tn.ID, away("texter"), engine.DecisionChallenge, 5},
		{"deny (blocked country, audited)", blocked.ID, away("denied"), engine.DecisionDeny, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Warm this path once (scripts of its kind, the rate limiter's
			// script); a newcomer is measured on a fresh id of the same
			// shard, whose node then knows the write script (each node has
			// its own script cache: another node would answer NOSCRIPT once).
			warm := tc.in
			if tc.name == "first login of a new user" {
				for i := 0; warm.UserID == tc.in.UserID || keyspace.Placement(tc.tenant, warm.UserID) != keyspace.Placement(tc.tenant, tc.in.UserID); i++ {
					warm.UserID = fmt.Sprintf("warm-newcomer-%d", i)
				}
			}
			evaluate(tc.tenant, warm)
			r.client.take()
			if r.nodes != nil {
				r.nodes.take()
			}

			ev := evaluate(tc.tenant, tc.in)
			calls := r.client.take()
			if ev.Decision != tc.decision {
				t.Fatalf("decision %s, want %s (%+v)", ev.Decision, tc.decision, ev.Risk)
			}
			t.Logf("round trips: %v", calls)
			if len(calls) != 2 || !calls[0].pipeline {
				t.Errorf("%s made %d round trips %v, want 2: the read pipeline, the write", tc.name, len(calls), calls)
			}
			// The read is plain reads, no script: the user's account,
			// history and failure windows, the tenant's policy, failed-IP
			// window and fraud reports; the tenant-wide counts come from
			// the process's copy.
			if len(calls) > 0 && calls[0].pipeline && scripts(calls[0]) != 0 {
				t.Errorf("read pipeline %v, want no script", calls[0])
			}
			// The write is one script of the user's whatever the decision
			// (login record, grace count, learning and, for a challenge or a
			// deny, the commit of the challenge or the audit event, all one
			// atomic script), after the send limits' scripts; the tenant's
			// tallies and counts go with the process's next statistics
			// flush.
			if last := calls[len(calls)-1]; len(calls) > 1 && (len(last.cmds) != 1+tc.limits || scripts(last) != 1+tc.limits) {
				t.Errorf("write %v, want %d scripts (the send limits, the user's side)", last, 1+tc.limits)
			}
			if r.nodes != nil {
				nc := r.nodes.take()
				t.Logf("node requests: %v", nc)
				// The read touches two slots (the user's shard, the
				// tenant's home shard for its plain reads), the write one,
				// the limits up to one node per limit.
				most := 2 + 1 + tc.limits
				if len(nc) > most {
					t.Errorf("%d node requests for %d round trips, want at most %d", len(nc), len(calls), most)
				}
			}
		})
	}

	t.Run("failed password", func(t *testing.T) {
		_ = eng.Logins.RecordFailedLogin(ctx, tn.ID, engine.FailedInput{UserID: "familiar", IP: "203.0.113.5"})
		r.client.take()
		if err := eng.Logins.RecordFailedLogin(ctx, tn.ID, engine.FailedInput{UserID: "familiar", IP: "203.0.113.5"}); err != nil {
			t.Fatal(err)
		}
		if calls := r.client.take(); len(calls) != 1 || !calls[0].pipeline {
			t.Errorf("RecordFailedLogin made %v, want one pipelined round trip", calls)
		}
	})
}
