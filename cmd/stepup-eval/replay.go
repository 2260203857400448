package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/evalset"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// historyTTL is how long the engine keeps a history without a login (its
// default); the harness uses it only to label outcomes (a user whose
// history expired starts again at zero past logins), never to learn.
const historyTTL = 180 * 24 * time.Hour

// outcome is what the engine answered for one login of the set.
type outcome struct {
	Kind    evalset.Kind
	Context evalset.Context
	// Past is the number of the user's logins the history had learned
	// before this one (n_u): 0 is a cold start.
	Past     int
	Score    int
	Decision engine.Decision
	// Familiar: the user's history had learned this login's address, user
	// agent and (when device ids are used) device id before.
	Familiar bool
	// Novel: the login's country and device were both new to the user's
	// history (without device ids: its country and user agent).
	Novel bool
}

// challenged reports whether the engine, with the tenant's default policy
// and the challenge threshold th, challenges (or denies) the login: an
// enrolled user without history always, anyone else at a score of th or
// more.
func (o outcome) challenged(th int) bool { return o.Past == 0 || o.Score >= th }

// replayOptions configure one replay.
type replayOptions struct {
	// IgnoreDevice scores on IP and user agent only and sends no device
	// ids, as Wiefling et al. measured.
	IgnoreDevice bool
	// RedisAddr is a Redis server to use instead of an in-process
	// miniredis. Its data are left in place under a new tenant.
	RedisAddr string
	Geo       engine.GeoLookup
	// Seed derives the engine's secret and random ids, so that a replay on
	// miniredis is reproducible to the bit.
	Seed uint64
}

// replayResult is the outcome of every login of the set, in set order.
type replayResult struct {
	Outcomes []outcome
	// Mismatches counts logins whose actual decision differs from the one
	// outcome.challenged predicts at the default threshold; the threshold
	// sweep is only valid when it is zero.
	Mismatches int
}

// replayClock is the engine's clock during a replay: the time of the login
// being evaluated. Only the replaying goroutine reads and sets it.
type replayClock struct{ now time.Time }

func (c *replayClock) Now() time.Time { return c.now }

// replay evaluates every login of the set, in time order, through a real
// engine over a real store; challenged legitimate logins are then verified
// (learned) as the engine does after a correct code.
func replay(ctx context.Context, set *evalset.Set, opt replayOptions) (replayResult, error) {
	var res replayResult
	var mr *miniredis.Miniredis
	addr := opt.RedisAddr
	if addr == "" {
		mr = miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return res, fmt.Errorf("start miniredis: %w", err)
		}
		defer mr.Close()
		addr = mr.Addr()
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return res, fmt.Errorf("redis %s: %w", addr, err)
	}
	st := redisstore.New(rdb, redisstore.Options{})

	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("stepup-eval"), opt.Seed))
	if opt.RedisAddr != "" {
		// A shared server may hold an earlier run's tenant: make the ids
		// (and with them the tenant) new.
		_, _ = rand.Read(seed[:])
	}
	clock := &replayClock{now: set.Options.Start}
	eng, err := engine.New(st, engine.Options{
		Secret: seed[:],
		Clock:  clock.Now,
		Rand:   mrand.NewChaCha8(seed),
		Geo:    opt.Geo,
		Risk:   risk.Options{IgnoreDevice: opt.IgnoreDevice},
	})
	if err != nil {
		return res, err
	}
	tenant, err := eng.Tenants.CreateTenant(ctx, "stepup-eval", "Eval")
	if err != nil {
		return res, err
	}
	threshold := engine.DefaultPolicy().Thresholds.Challenge

	// Enrol every user with an authenticator app through the engine's own
	// enrolment flow, so that evaluations challenge instead of suggesting
	// enrolment and a challenged login is verified with a real code.
	owners := make(map[string]*owner, len(set.Users))
	for _, id := range set.Users {
		o, err := enrol(ctx, eng, engine.UserRef{Tenant: tenant.ID, User: id}, clock.now)
		if err != nil {
			return res, fmt.Errorf("enrol %s: %w", id, err)
		}
		owners[id] = o
	}

	// history is what the harness knows about a user's learned logins, to
	// label outcomes; the engine keeps its own, keyed and bounded.
	type history struct {
		n         int
		last      time.Time
		ips       map[netip.Addr]bool
		uas       map[string]bool
		devices   map[string]bool
		countries map[string]bool
	}
	users := make(map[string]*history, len(set.Users))
	lastTick := clock.now
	res.Outcomes = make([]outcome, 0, len(set.Logins))
	for _, l := range set.Logins {
		clock.now = l.At
		if mr != nil && l.At.Sub(lastTick) >= 24*time.Hour {
			// Let miniredis expire keys (login records, challenges,
			// histories) on the replay's time rather than the wall
			// clock's; a day's resolution keeps the sweeps cheap.
			mr.FastForward(l.At.Sub(lastTick))
			lastTick = l.At
		}
		h := users[l.User]
		if h == nil || h.n > 0 && l.At.Sub(h.last) >= historyTTL {
			// New, or the history expired.
			h = &history{ips: map[netip.Addr]bool{}, uas: map[string]bool{}, devices: map[string]bool{}, countries: map[string]bool{}}
			users[l.User] = h
		}
		var cc string
		if opt.Geo != nil {
			cc = opt.Geo.Lookup(l.IP).Country
		}
		newDevice := !h.devices[l.DeviceID]
		if opt.IgnoreDevice {
			newDevice = !h.uas[l.UserAgent]
		}
		in := engine.EvaluateInput{UserID: l.User, IP: l.IP.String(), UserAgent: l.UserAgent}
		if !opt.IgnoreDevice {
			in.DeviceID = l.DeviceID
		}
		ev, err := eng.Logins.Evaluate(ctx, tenant.ID, in)
		if err != nil {
			return res, fmt.Errorf("evaluate %s at %s: %w", l.User, l.At.Format(time.RFC3339), err)
		}
		o := outcome{
			Kind: l.Kind, Context: l.Context, Past: h.n, Score: ev.Risk.Score, Decision: ev.Decision,
			Familiar: h.n > 0 && h.ips[l.IP] && h.uas[l.UserAgent] && (opt.IgnoreDevice || h.devices[l.DeviceID]),
			Novel:    h.n > 0 && !h.countries[cc] && newDevice,
		}
		res.Outcomes = append(res.Outcomes, o)
		want := engine.DecisionAllow
		if o.challenged(threshold) {
			want = engine.DecisionChallenge
		}
		if ev.Decision != want {
			res.Mismatches++
		}
		if l.Kind != evalset.Legit {
			continue // attempts by attackers never teach the model
		}
		switch ev.Decision {
		case engine.DecisionAllow: // learned by the evaluation itself
		case engine.DecisionChallenge:
			if ev.Challenge == nil {
				return res, fmt.Errorf("login %s challenged without a challenge", ev.LoginID)
			}
			if err := owners[l.User].verify(ctx, eng, tenant.ID, ev.Challenge.ID, l.At); err != nil {
				return res, fmt.Errorf("verify login %s: %w", ev.LoginID, err)
			}
		default:
			continue // denied: the owner is locked out, nothing learned
		}
		h.n++
		h.last = l.At
		h.ips[l.IP], h.uas[l.UserAgent], h.devices[l.DeviceID], h.countries[cc] = true, true, true, true
	}
	return res, nil
}

// owner is what a legitimate user holds: the authenticator app's secret,
// the backup codes, and the last time step the app's code was used (the
// engine refuses a step twice).
type owner struct {
	secret   string
	backup   []string
	lastStep int64
}

// enrol enrols u's authenticator app through the engine, as a user of
// stepupd's API would: start, then verify the first code.
func enrol(ctx context.Context, eng *engine.Engine, u engine.UserRef, now time.Time) (*owner, error) {
	st, err := eng.Lifecycle.StartTOTP(ctx, u, engine.Actor{Kind: "user"})
	if err != nil {
		return nil, err
	}
	secret, _ := st.Extra["secret"].(string)
	o := &owner{secret: secret, lastStep: -1}
	res, err := o.answer(ctx, eng, u.Tenant, st.Challenge.ID, now)
	if err != nil {
		return nil, err
	}
	o.backup, _ = res.Result["backup_codes"].([]string)
	return o, nil
}

// verify answers a login challenge with the app's code, as its owner does,
// through engine.Verify, which learns the login exactly as stepupd does.
func (o *owner) verify(ctx context.Context, eng *engine.Engine, tenant, challenge string, now time.Time) error {
	_, err := o.answer(ctx, eng, tenant, challenge, now)
	return err
}

// answer submits the code of the first step after the last one used that
// the engine still accepts at now (it allows one step of skew); two
// verifications within one step fall back to a backup code.
func (o *owner) answer(ctx context.Context, eng *engine.Engine, tenant, challenge string, now time.Time) (engine.VerifyResult, error) {
	step := max(now.Unix()/totpPeriod, o.lastStep+1)
	var code string
	if step <= now.Unix()/totpPeriod+1 {
		c, err := totp.GenerateCodeCustom(o.secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return engine.VerifyResult{}, err
		}
		code, o.lastStep = c, step
	} else if len(o.backup) > 0 {
		code, o.backup = o.backup[0], o.backup[1:]
	} else {
		return engine.VerifyResult{}, fmt.Errorf("no code left to answer %s", challenge)
	}
	return eng.Challenges.Verify(ctx, tenant, challenge, engine.VerifyInput{Code: code, Actor: engine.Actor{Kind: "user"}})
}

// totpPeriod is the authenticator apps' time step (RFC 6238's default,
// which the engine uses).
const totpPeriod = 30
