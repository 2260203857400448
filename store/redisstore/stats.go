package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/risk"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Tenant-wide statistics (the count-min rows of every feature level, the
// tenant's learnt logins N and users |U|, the counters in use per level M,
// the hourly blocked logins, the daily tally) are read and written by every
// evaluation of every user of a tenant. Kept in the tenant's home slot and
// touched by each evaluation, they made that slot's master the ceiling of
// a tenant's throughput however many masters a cluster had.
//
// Instead each process holds the tenant-wide statistics of the tenants it
// serves in memory (stats), reads them there, and adds its own increments
// to that copy at once and to a pending batch. Every FlushEvery (or as
// soon as it holds flushBatch increments) the batch goes to Redis as one
// script in the tenant's home slot (statsFlushScript),
// which applies it to the stored statistics and appends what it changed to
// the tenant's statistics stream, numbered; every process reads the
// stream's new entries (its own skipped: already counted) on the same tick.
// A tenant's first use in a process loads the stored statistics and the
// stream position atomically (statsLoadScript) before answering, so a
// fresh process is exact from its first request; a gap in the numbering
// (the stream trimmed past a process that fell behind) reloads.
//
// Error bound: a process's counts lack at most the increments other
// processes made within one FlushEvery plus one poll (2 × FlushEvery);
// its own are exact. A process that dies loses the tenant-wide increments
// of its last FlushEvery (statistics only: never a user's history, a
// challenge or an audit event, which its user's script wrote).

// DefaultFlushEvery is how often a process sends its tenant-wide
// increments and reads the other processes'.
const DefaultFlushEvery = 250 * time.Millisecond

// statsIdle is how long a tenant's statistics stay in memory unused.
const statsIdle = 10 * time.Minute

// flushBatch bounds a flush: a pending batch of this many increments
// (about 400 learnt logins) is sent at once rather than at the next tick,
// so that one flush script holds Redis for a millisecond or two however
// busy the tenant, instead of growing with the traffic of a FlushEvery
// (every request in flight waits it out). Smaller batches would cost
// more fixed work per login (each flush is a script, a stream entry and
// every other process's read of it).
const flushBatch = 4096

// statsStreamLen bounds a tenant's statistics stream (approximately): a
// process more than this many flushes behind reloads.
const statsStreamLen = 1000

// delta is a batch of increments to a tenant's statistics.
type delta struct {
	N       int64                       `json:"n,omitempty"`
	U       int64                       `json:"u,omitempty"`
	Counts  map[string]map[string]int64 `json:"c,omitempty"` // level → bucket → increment
	Blocked map[int64]int64             `json:"b,omitempty"` // hour number → increment
	Tally   map[string]map[string]int64 `json:"t,omitempty"` // day → field → increment
}

func (d *delta) empty() bool {
	return d.N == 0 && d.U == 0 && len(d.Counts) == 0 && len(d.Blocked) == 0 && len(d.Tally) == 0
}

// count adds inc to a bucket of a level.
func (d *delta) count(level, bucket string, inc int64) { addNested(&d.Counts, level, bucket, inc) }

// tally adds inc to a field of a day's tally.
func (d *delta) tally(day, field string, inc int64) { addNested(&d.Tally, day, field, inc) }

// addNested adds inc to (*m)[k1][k2], making the maps on first use.
func addNested(m *map[string]map[string]int64, k1, k2 string, inc int64) {
	if *m == nil {
		*m = map[string]map[string]int64{}
	}
	inner := (*m)[k1]
	if inner == nil {
		inner = map[string]int64{}
		(*m)[k1] = inner
	}
	inner[k2] += inc
}

func (d *delta) block(hour int64) {
	if d.Blocked == nil {
		d.Blocked = map[int64]int64{}
	}
	d.Blocked[hour]++
}

// statsEntry is one entry of a tenant's statistics stream: what one flush
// changed, as statsFlushScript applied it.
type statsEntry struct {
	Proc    string                      `json:"p"`
	Seq     int64                       `json:"s"`
	N       int64                       `json:"n"`
	U       int64                       `json:"u"`
	M       map[string]int64            `json:"m"` // level → change of counters in use
	Counts  map[string]map[string]int64 `json:"c"`
	Blocked map[string]int64            `json:"b"`
}

// tenantStats is one tenant's statistics in this process.
type tenantStats struct {
	mu      sync.Mutex
	seq     int64  // the last stream entry applied
	lastID  string // its id
	n, u    int64
	m       map[string]int64
	counts  map[string]*countRow
	blocked map[int64]int64
	pending delta
	// ops counts the increments added to pending since it was taken: a
	// batch of flushBatch of them is sent before its tick.
	ops int
	// localM is the change of M this process applied to its own copy for
	// the pending batch; the flush's answer replaces it with Redis'.
	localM map[string]int64
	used   time.Time
	// dropped marks a copy taken out of the process's table (idle).
	dropped bool
	// syncMu orders a flush, a poll and a reload of the tenant: a reload
	// taken while a flush is in flight could miss the batch, whose entry
	// this process then skips as its own.
	syncMu sync.Mutex
}

func newTenantStats() *tenantStats {
	return &tenantStats{m: map[string]int64{}, counts: map[string]*countRow{}, blocked: map[int64]int64{}, localM: map[string]int64{}}
}

// stats is the process's copy of its tenants' statistics.
type stats struct {
	rdb   redis.UniversalClient
	proc  string
	every time.Duration
	log   *slog.Logger
	now   func() time.Time

	// full wakes run when a tenant's pending batch reached flushBatch.
	full chan struct{}

	mu      sync.Mutex
	tenants map[string]*tenantStats
	// loading serialises first loads per tenant (a tenant's first
	// requests wait for one load rather than each load it).
	loading map[string]*sync.Mutex
}

func newStats(rdb redis.UniversalClient, every time.Duration, log *slog.Logger) *stats {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &stats{rdb: rdb, proc: hex.EncodeToString(b[:]), every: every, log: log, now: time.Now,
		full: make(chan struct{}, 1), tenants: map[string]*tenantStats{}, loading: map[string]*sync.Mutex{}}
}

// get returns the tenant's statistics, loading them on first use.
func (s *stats) get(ctx context.Context, tenant string) (*tenantStats, error) {
	s.mu.Lock()
	t := s.tenants[tenant]
	if t != nil {
		s.mu.Unlock()
		return t, nil
	}
	l := s.loading[tenant]
	if l == nil {
		l = &sync.Mutex{}
		s.loading[tenant] = l
	}
	s.mu.Unlock()

	l.Lock()
	defer l.Unlock()
	s.mu.Lock()
	t = s.tenants[tenant]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t = newTenantStats()
	t.syncMu.Lock()
	err := s.load(ctx, tenant, t)
	t.syncMu.Unlock()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.tenants[tenant] = t
	delete(s.loading, tenant)
	s.mu.Unlock()
	return t, nil
}

// load replaces t's copy with the stored statistics and stream position.
// The pending batch stays: it is not in Redis yet. Callers hold t.syncMu.
func (s *stats) load(ctx context.Context, tenant string, t *tenantStats) error {
	ts := keyspace.TenantOf(tenant)
	levels := risk.LevelNames()
	keys := []string{ts.Stats(), ts.StatsStream(), ts.Blocked()}
	for _, l := range levels {
		keys = append(keys, ts.Counts(l))
	}
	res, err := statsLoadScript.Run(ctx, s.rdb, keys).Slice()
	if err != nil {
		return err
	}
	if len(res) != 3+len(levels) {
		return fmt.Errorf("redisstore: stats load: %d answers for %d levels", len(res), len(levels))
	}
	st, _ := res[0].([]any)
	fields := pairs(st)
	next := newTenantStats()
	next.lastID = str(res[1])
	for f, v := range fields {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch {
		case f == "n":
			next.n = n
		case f == "u":
			next.u = n
		case f == "seq":
			next.seq = n
		case strings.HasPrefix(f, "m:"):
			next.m[f[2:]] = n
		}
	}
	if b, ok := res[2].([]any); ok {
		for f, v := range pairs(b) {
			h, err1 := strconv.ParseInt(f, 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if err1 == nil && err2 == nil {
				next.blocked[h] = n
			}
		}
	}
	for i, l := range levels {
		c, _ := res[3+i].([]any)
		if len(c) == 0 {
			continue
		}
		r := &countRow{}
		for f, v := range pairs(c) {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.add(f, n)
		}
		next.counts[l] = r
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	// What this process counted but has not sent yet stays counted, and
	// its effect on M (next.localM, empty so far) is now relative to the
	// new copy.
	addCounts(next, &t.pending)
	t.seq, t.lastID = next.seq, next.lastID
	t.n, t.u, t.m, t.counts, t.blocked, t.localM = next.n, next.u, next.m, next.counts, next.blocked, next.localM
	t.used = s.now()
	return nil
}

// row returns a level's count row, made on first use (callers hold t.mu).
func (t *tenantStats) row(level string) *countRow {
	r := t.counts[level]
	if r == nil {
		r = &countRow{}
		t.counts[level] = r
	}
	return r
}

// addCounts applies d's login, user, count and blocked increments to t's
// copy (callers hold t.mu).
func addCounts(t *tenantStats, d *delta) {
	t.n += d.N
	t.u += d.U
	for l, bs := range d.Counts {
		for b, inc := range bs {
			t.count(l, b, inc)
		}
	}
	for h, inc := range d.Blocked {
		t.blocked[h] += inc
	}
}

// count adds inc to a bucket of t's copy; M moves with a counter leaving
// or reaching zero, and the change is kept in t.localM (callers hold t.mu).
func (t *tenantStats) count(level, bucket string, inc int64) {
	before, after := t.row(level).add(bucket, inc)
	switch {
	case before <= 0 && after > 0:
		t.m[level]++
		t.localM[level]++
	case before > 0 && after <= 0:
		t.m[level]--
		t.localM[level]--
	}
}

// merge adds d to pending (callers hold t.mu).
func (p *delta) merge(d *delta) {
	p.N += d.N
	p.U += d.U
	for l, bs := range d.Counts {
		for b, inc := range bs {
			p.count(l, b, inc)
		}
	}
	for h, inc := range d.Blocked {
		if p.Blocked == nil {
			p.Blocked = map[int64]int64{}
		}
		p.Blocked[h] += inc
	}
	for day, fs := range d.Tally {
		for f, inc := range fs {
			p.tally(day, f, inc)
		}
	}
}

// locked returns the tenant's statistics with t.mu held, never a copy
// dropped from the table meanwhile.
func (s *stats) locked(ctx context.Context, tenant string) (*tenantStats, error) {
	for {
		t, err := s.get(ctx, tenant)
		if err != nil {
			return nil, err
		}
		t.mu.Lock()
		if !t.dropped {
			return t, nil
		}
		t.mu.Unlock()
	}
}

// loginCount is what one login adds to its tenant's statistics.
type loginCount struct {
	n, u   int64               // learnt logins, users
	inc    int64               // added to each level's bucket: 1 learnt, -1 unlearnt, 0 neither
	levels []engine.LevelValue // the login's levels and buckets
	day    string              // the tally's day, "" for none
	fields []string            // tally fields counted once each
	hour   int64               // the blocked tally's hour, -1 for none
}

// add counts one login in the tenant's statistics: in this process's copy
// at once, in Redis with the next flush. It writes into the pending batch
// directly, so a login allocates nothing once the batch has its maps.
func (s *stats) add(ctx context.Context, tenant string, l loginCount) (*tenantStats, error) {
	t, err := s.locked(ctx, tenant)
	if err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	t.n += l.n
	t.u += l.u
	t.pending.N += l.n
	t.pending.U += l.u
	if l.inc != 0 {
		for _, v := range l.levels {
			t.count(v.Level, v.Bucket, l.inc)
			t.pending.count(v.Level, v.Bucket, l.inc)
		}
		t.ops += len(l.levels)
	}
	for _, f := range l.fields {
		t.pending.tally(l.day, f, 1)
	}
	t.ops += len(l.fields)
	if l.hour >= 0 {
		t.blocked[l.hour]++
		t.pending.block(l.hour)
	}
	if t.ops >= flushBatch {
		select {
		case s.full <- struct{}{}:
		default: // run is already woken
		}
	}
	t.used = s.now()
	return t, nil
}

// view is what an evaluation reads of the tenant's statistics.
type view struct {
	n, u   int64
	levels []engine.LevelCount // TenantCount and TenantDistinct filled
}

// read returns N, |U| and each queried level's count and M.
func (s *stats) read(ctx context.Context, tenant string, q []engine.LevelValue) (view, error) {
	t, err := s.locked(ctx, tenant)
	if err != nil {
		return view{}, err
	}
	v := view{levels: make([]engine.LevelCount, len(q))}
	v.n, v.u = max(t.n, 0), max(t.u, 0)
	for i, lv := range q {
		v.levels[i] = engine.LevelCount{Level: lv.Level, TenantCount: t.row(lv.Level).get(lv.Bucket), TenantDistinct: max(t.m[lv.Level], 0)}
	}
	t.used = s.now()
	t.mu.Unlock()
	return v, nil
}

// blockedAt returns the tenant's blocked logins in hour h and the sum of
// the 24 hours before it.
func (t *tenantStats) blockedAt(h int64) (cur, before int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for hour, n := range t.blocked {
		switch {
		case hour == h:
			cur = n
		case hour >= h-24 && hour < h:
			before += n
		case hour < h-24:
			delete(t.blocked, hour)
		}
	}
	return cur, before
}

// run flushes and polls every s.every until ctx ends, then flushes once
// more.
func (s *stats) run(ctx context.Context) {
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.sync(fctx)
			cancel()
			return
		case <-tick.C:
			s.sync(ctx)
		case <-s.full:
			s.flushFull(ctx)
		}
	}
}

// sync flushes every tenant's pending increments and applies the other
// processes' new entries; tenants unused for statsIdle are dropped.
func (s *stats) sync(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.tenants))
	for id, t := range s.tenants {
		t.mu.Lock()
		idle := t.pending.empty() && s.now().Sub(t.used) > statsIdle
		// A request that found t before it goes sees the mark and loads
		// the tenant again, rather than count into a copy nobody flushes.
		t.dropped = idle
		t.mu.Unlock()
		if idle {
			delete(s.tenants, id)
			continue
		}
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.syncTenant(ctx, id); err != nil && ctx.Err() == nil {
			s.log.Warn("tenant statistics", "tenant", id, "err", err)
		}
	}
}

// flushFull flushes the tenants whose pending batch reached flushBatch.
func (s *stats) flushFull(ctx context.Context) {
	s.mu.Lock()
	var ids []string
	for id, t := range s.tenants {
		t.mu.Lock()
		if t.ops >= flushBatch {
			ids = append(ids, id)
		}
		t.mu.Unlock()
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.Flush(ctx, id); err != nil && ctx.Err() == nil {
			s.log.Warn("tenant statistics", "tenant", id, "err", err)
		}
	}
}

// syncTenant flushes one tenant's pending increments, then reads what
// other processes flushed.
func (s *stats) syncTenant(ctx context.Context, tenant string) error {
	return s.withTenant(tenant, func(t *tenantStats) error {
		if err := s.flush(ctx, tenant, t); err != nil {
			return err
		}
		return s.poll(ctx, tenant, t)
	})
}

// Flush sends tenant's pending increments now (a digest reads the tally
// from Redis; tests compare stores).
func (s *stats) Flush(ctx context.Context, tenant string) error {
	return s.withTenant(tenant, func(t *tenantStats) error { return s.flush(ctx, tenant, t) })
}

// withTenant runs fn on the tenant's statistics, if this process holds
// them, with their syncMu held.
func (s *stats) withTenant(tenant string, fn func(*tenantStats) error) error {
	s.mu.Lock()
	t := s.tenants[tenant]
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	return fn(t)
}

// flush sends t's pending batch as one statsFlushScript. While it runs,
// new increments gather in a fresh batch; a failed batch is merged back.
// Callers hold t.syncMu.
func (s *stats) flush(ctx context.Context, tenant string, t *tenantStats) error {
	t.mu.Lock()
	if t.pending.empty() {
		t.mu.Unlock()
		return nil
	}
	d, localM := t.pending, t.localM
	t.pending, t.localM, t.ops = delta{}, map[string]int64{}, 0
	t.mu.Unlock()

	applied, err := s.runFlush(ctx, tenant, &d)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		// Not applied (the script is atomic): keep it for the next tick.
		d.merge(&t.pending)
		t.pending = d
		for l, dm := range t.localM {
			localM[l] += dm
		}
		t.localM = localM
		return err
	}
	// Redis' view of which counters left or reached zero replaces ours.
	for l, dm := range localM {
		t.m[l] -= dm
	}
	for l, dm := range applied.M {
		t.m[l] += dm
	}
	return nil
}

// runFlush runs statsFlushScript with d.
func (s *stats) runFlush(ctx context.Context, tenant string, d *delta) (statsEntry, error) {
	ts := keyspace.TenantOf(tenant)
	keys := []string{ts.Stats(), ts.StatsStream(), ts.Blocked()}
	type countArg struct {
		K int              `json:"k"`
		B map[string]int64 `json:"b"`
	}
	type tallyArg struct {
		K int              `json:"k"`
		F map[string]int64 `json:"f"`
	}
	arg := struct {
		Proc    string           `json:"p"`
		N       int64            `json:"n"`
		U       int64            `json:"u"`
		Counts  []countArg       `json:"c"`
		Blocked map[string]int64 `json:"b"`
		Tally   []tallyArg       `json:"t"`
		Len     int              `json:"len"`
	}{Proc: s.proc, N: d.N, U: d.U, Counts: []countArg{}, Blocked: map[string]int64{}, Tally: []tallyArg{}, Len: statsStreamLen}
	for l, bs := range d.Counts {
		keys = append(keys, ts.Counts(l))
		arg.Counts = append(arg.Counts, countArg{K: len(keys), B: bs})
	}
	for h, n := range d.Blocked {
		arg.Blocked[strconv.FormatInt(h, 10)] = n
	}
	for day, fs := range d.Tally {
		keys = append(keys, ts.Tally(day))
		arg.Tally = append(arg.Tally, tallyArg{K: len(keys), F: fs})
	}
	b, err := json.Marshal(arg)
	if err != nil {
		return statsEntry{}, err
	}
	out, err := statsFlushScript.Run(ctx, s.rdb, keys, b).Text()
	if err != nil {
		return statsEntry{}, err
	}
	var e statsEntry
	return e, json.Unmarshal([]byte(out), &e)
}

// poll applies the stream entries after t's position; a gap in their
// numbering reloads. Callers hold t.syncMu.
func (s *stats) poll(ctx context.Context, tenant string, t *tenantStats) error {
	ts := keyspace.TenantOf(tenant)
	for {
		t.mu.Lock()
		from := t.lastID
		t.mu.Unlock()
		if from == "" {
			from = "0-0"
		}
		streams, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{ts.StatsStream(), from}, Count: 1000, Block: -1}).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(streams) == 0 || len(streams[0].Messages) == 0 {
			return nil
		}
		res := streams[0].Messages
		gap := false
		t.mu.Lock()
		for _, msg := range res {
			var e statsEntry
			if err := json.Unmarshal([]byte(fmt.Sprint(msg.Values["e"])), &e); err != nil {
				continue
			}
			if e.Seq != t.seq+1 {
				gap = true
				break
			}
			t.seq, t.lastID = e.Seq, msg.ID
			if e.Proc == s.proc {
				continue // counted when it was added
			}
			t.n += e.N
			t.u += e.U
			for l, dm := range e.M {
				t.m[l] += dm
			}
			for l, bs := range e.Counts {
				for b, inc := range bs {
					t.row(l).add(b, inc)
				}
			}
			for h, inc := range e.Blocked {
				if hour, err := strconv.ParseInt(h, 10, 64); err == nil {
					t.blocked[hour] += inc
				}
			}
		}
		t.mu.Unlock()
		if gap {
			return s.load(ctx, tenant, t)
		}
		if len(res) < 1000 {
			return nil
		}
	}
}

// pairs turns an HGETALL answer into a map.
func pairs(a []any) map[string]string {
	m := make(map[string]string, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		m[str(a[i])] = str(a[i+1])
	}
	return m
}
