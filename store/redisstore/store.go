package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Options configure a Store. The zero value means defaults.
type Options struct {
	AuditMaxEvents int // per tenant, trimmed approximately; default 100000
	// FlushEvery is how often the process sends its tenant-wide
	// statistics and reads the other processes' (default
	// DefaultFlushEvery; see stats.go).
	FlushEvery time.Duration
	Logger     *slog.Logger // default: discard
}

// Store is engine.Store on Redis.
type Store struct {
	rdb   redis.UniversalClient
	evmax int // per shard stream
	opt   Options
	keys  *keyCache
	stats *stats
	stop  context.CancelFunc
	done  chan struct{}
	// statsDone is closed when the statistics loop has made its last
	// flush.
	statsDone chan struct{}
}

var _ engine.Store = (*Store)(nil)

// New returns a Store over rdb (a *redis.Client, *redis.ClusterClient or a
// client of an embedded miniredis).
func New(rdb redis.UniversalClient, opt Options) *Store {
	if opt.AuditMaxEvents <= 0 {
		opt.AuditMaxEvents = 100000
	}
	if opt.FlushEvery <= 0 {
		opt.FlushEvery = DefaultFlushEvery
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{rdb: rdb, evmax: max(opt.AuditMaxEvents/keyspace.Shards, 100), opt: opt,
		keys: newKeyCache(), stats: newStats(rdb, opt.FlushEvery, opt.Logger), stop: stop,
		done: make(chan struct{}), statsDone: make(chan struct{})}
	go s.watchRevocations(ctx)
	go func() {
		defer close(s.statsDone)
		s.stats.run(ctx)
	}()
	return s
}

// Close stops the store's revocation listener and statistics loop, whose
// last flush sends what the process counted; the client stays open.
func (s *Store) Close() {
	s.stop()
	<-s.done
	<-s.statsDone
}

// SyncStats sends this process's pending tenant-wide statistics and reads
// the other processes' now, rather than at the next tick (see stats.go).
func (s *Store) SyncStats(ctx context.Context) { s.stats.sync(ctx) }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

func ms(t time.Time) int64 { return t.UnixMilli() }

// --- tenants and keys -------------------------------------------------------

// PutTenant stores a tenant.
func (s *Store) PutTenant(ctx context.Context, t engine.Tenant) error {
	b, _ := json.Marshal(t)
	return s.rdb.HSet(ctx, keyspace.Tenants(), t.ID, b).Err()
}

// Tenant reads a tenant.
func (s *Store) Tenant(ctx context.Context, id string) (engine.Tenant, bool, error) {
	b, err := s.rdb.HGet(ctx, keyspace.Tenants(), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return engine.Tenant{}, false, nil
	}
	if err != nil {
		return engine.Tenant{}, false, err
	}
	var t engine.Tenant
	return t, true, json.Unmarshal(b, &t)
}

// Tenants lists tenants by creation time.
func (s *Store) Tenants(ctx context.Context) ([]engine.Tenant, error) {
	m, err := s.rdb.HGetAll(ctx, keyspace.Tenants()).Result()
	if err != nil {
		return nil, err
	}
	ts := make([]engine.Tenant, 0, len(m))
	for _, v := range m {
		var t engine.Tenant
		if err := json.Unmarshal([]byte(v), &t); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b engine.Tenant) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return ts, nil
}

// PutKey stores a key record under the hash of its secret.
func (s *Store) PutKey(ctx context.Context, key engine.Key, hash string) error {
	b, _ := json.Marshal(key)
	return putKeyScript.Run(ctx, s.rdb, []string{keyspace.KeyHashes(), keyspace.KeyIDs()}, hash, key.ID, b).Err()
}

// KeyByHash finds a key by the hash of its secret. Found keys are cached
// for a moment (keyCacheTTL); a revocation on any process evicts them at
// once through Redis pub/sub, and the TTL bounds staleness should a
// message be lost.
func (s *Store) KeyByHash(ctx context.Context, hash string) (engine.Key, bool, error) {
	if key, ok := s.keys.get(hash); ok {
		return key, true, nil
	}
	b, err := s.rdb.HGet(ctx, keyspace.KeyHashes(), hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return engine.Key{}, false, nil
	}
	if err != nil {
		return engine.Key{}, false, err
	}
	var key engine.Key
	if err := json.Unmarshal(b, &key); err != nil {
		return engine.Key{}, false, err
	}
	s.keys.put(hash, key)
	return key, true, nil
}

// KeyByID finds a key by its id, through KeyByHash's cache: a revoked key
// is not found.
func (s *Store) KeyByID(ctx context.Context, id string) (engine.Key, bool, error) {
	if key, ok := s.keys.byID(id); ok {
		return key, true, nil
	}
	hash, err := s.rdb.HGet(ctx, keyspace.KeyIDs(), id).Result()
	if errors.Is(err, redis.Nil) {
		return engine.Key{}, false, nil
	}
	if err != nil {
		return engine.Key{}, false, err
	}
	return s.KeyByHash(ctx, hash)
}

// Keys lists a tenant's keys.
func (s *Store) Keys(ctx context.Context, tenant string) ([]engine.Key, error) {
	vals, err := s.rdb.HVals(ctx, keyspace.KeyHashes()).Result()
	if err != nil {
		return nil, err
	}
	ks := []engine.Key{}
	for _, v := range vals {
		var key engine.Key
		if err := json.Unmarshal([]byte(v), &key); err != nil {
			return nil, err
		}
		if key.Tenant == tenant {
			ks = append(ks, key)
		}
	}
	slices.SortFunc(ks, func(a, b engine.Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return ks, nil
}

// DeleteKey revokes a tenant's key and tells every process to forget it.
func (s *Store) DeleteKey(ctx context.Context, tenant, id string) (bool, error) {
	res, err := deleteKeyScript.Run(ctx, s.rdb, []string{keyspace.KeyHashes(), keyspace.KeyIDs()}, id, tenant).Result()
	if err != nil {
		return false, err
	}
	hash, ok := res.(string)
	if !ok {
		return false, nil
	}
	s.keys.evict(hash)
	return true, s.rdb.Publish(ctx, keyspace.KeyEvents(), hash).Err()
}

// watchRevocations evicts revoked keys announced by other processes.
func (s *Store) watchRevocations(ctx context.Context) {
	defer close(s.done)
	sub := s.rdb.Subscribe(ctx, keyspace.KeyEvents())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			s.keys.evict(m.Payload)
		}
	}
}

// --- policy and events ------------------------------------------------------

// Policy returns the stored policy document, nil if none.
func (s *Store) Policy(ctx context.Context, tenant string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, keyspace.TenantOf(tenant).Policy()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// PutPolicy replaces the policy prev, with its audit event and its mails.
func (s *Store) PutPolicy(ctx context.Context, tenant string, prev, doc []byte, ev engine.Event, jobs []engine.Job) error {
	evb, _ := json.Marshal(ev)
	args := []any{doc, evb, s.evmax, tenant, prev}
	for _, j := range jobs {
		args = append(args, string(j.Kind), base64.StdEncoding.EncodeToString(j.Payload))
	}
	n, err := putPolicyScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(tenant).Policy(), keyspace.TenantOf(tenant).Events(), keyspace.TenantOf(tenant).Queue()}, args...).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return engine.ErrConflict
	}
	return nil
}

// Placement is the shard of u as two hex digits, which new challenge and
// login ids carry.
func (s *Store) Placement(u engine.UserRef) string { return keyspace.Placement(u.Tenant, u.User) }

// UseToken marks a single-use token as used.
func (s *Store) UseToken(ctx context.Context, hash string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, keyspace.Token(hash), "1", ttl).Result()
}

// Allow takes one unit of each limit and returns the name of the first
// exhausted one ("" when all allow). The caller's own limits go first, in
// one pipelined round trip (each limit lives in its own slot); the Shared
// ones follow in a second only when all of those allowed, so a refused
// request takes nothing from what the tenant's other users share. A
// refused request still takes units from the caller's limits that allowed
// it: the over-count is at most one per refused request, and it falls on
// what the caller controls.
func (s *Store) Allow(ctx context.Context, limits []engine.Limit, now time.Time) (string, time.Duration, error) {
	for _, shared := range []bool{false, true} {
		phase := slices.DeleteFunc(slices.Clone(limits), func(l engine.Limit) bool { return l.Shared != shared || l.PerHour <= 0 })
		if len(phase) == 0 {
			continue
		}
		name, wait, err := s.allow(ctx, phase, now)
		if err != nil || name != "" {
			return name, wait, err
		}
	}
	return "", 0, nil
}

// allow takes one unit of each of limits in one pipelined round trip.
func (s *Store) allow(ctx context.Context, limits []engine.Limit, now time.Time) (string, time.Duration, error) {
	var cmds []*redis.Cmd
	err := s.pipelined(ctx, func(pipe redis.Pipeliner) {
		cmds = cmds[:0]
		for _, l := range limits {
			cmds = append(cmds, limitScript.Run(ctx, pipe, []string{limitKey(l)}, ms(now), limitPeriod(l).Milliseconds(), l.PerHour))
		}
	})
	if err != nil {
		return "", 0, err
	}
	i, wait, err := firstRefused(limits, cmds)
	if err != nil || i < 0 {
		return "", 0, err
	}
	return limits[i].Name, wait, nil
}

// sendOrder is limits without the switched-off ones (PerHour ≤ 0), the
// caller's own before the shared ones.
func sendOrder(limits []engine.Limit) []engine.Limit {
	l := slices.DeleteFunc(slices.Clone(limits), func(l engine.Limit) bool { return l.PerHour <= 0 })
	slices.SortStableFunc(l, func(a, b engine.Limit) int {
		switch {
		case a.Shared == b.Shared:
			return 0
		case b.Shared:
			return -1
		}
		return 1
	})
	return l
}

// firstRefused reads limitScript's answers: the index of the first limit
// that refused (-1 when all allowed) and how long it asks to wait.
func firstRefused(limits []engine.Limit, cmds []*redis.Cmd) (int, time.Duration, error) {
	for i, c := range cmds {
		res, err := c.Int64Slice()
		if err != nil {
			return -1, 0, err
		}
		if res[0] == 0 {
			return i, time.Duration(res[1]) * time.Millisecond, nil
		}
	}
	return -1, 0, nil
}

func limitKey(l engine.Limit) string { return keyspace.Limit(l.Scope, l.Tenant, l.Subject) }

func limitPeriod(l engine.Limit) time.Duration {
	if l.Period <= 0 {
		return time.Hour
	}
	return l.Period
}

// limitVerdicts are the keys where limits record their verdicts on the
// code of challenge id (switched-off limits record none).
func limitVerdicts(limits []engine.Limit, id string) []string {
	var v []string
	for _, l := range limits {
		if l.PerHour > 0 {
			v = append(v, keyspace.LimitVerdict(limitKey(l), id))
		}
	}
	return v
}

// LinkProvider remembers which challenge a provider's message id belongs
// to, for its delivery reports (kept two days), and names the id on the
// challenge first: a report on an earlier message of a resent challenge
// is then ignored (SetDelivery). The challenge is in another slot than
// the link, so these are two calls.
func (s *Store) LinkProvider(ctx context.Context, providerID, challengeKey string) error {
	if err := linkProviderScript.Run(ctx, s.rdb, []string{challengeKey}, providerID).Err(); err != nil {
		return err
	}
	return s.rdb.Set(ctx, keyspace.Provider(providerID), challengeKey, 48*time.Hour).Err()
}

// SetDelivery records a delivery report on the linked challenge.
func (s *Store) SetDelivery(ctx context.Context, providerID string, status message.DeliveryState, errorCode string) error {
	key, err := s.rdb.Get(ctx, keyspace.Provider(providerID)).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	return setDeliveryScript.Run(ctx, s.rdb, []string{key}, string(status), errorCode, providerID).Err()
}

// Count adds to a tenant's daily tally.
func (s *Store) Count(ctx context.Context, tenant, day string, fields map[string]int64) error {
	args := make([]any, 0, 2*len(fields))
	for f, n := range fields {
		args = append(args, f, n)
	}
	if len(args) == 0 {
		return nil
	}
	return countScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(tenant).Tally(day)}, args...).Err()
}

// Tally reads a tenant's daily tally, with what this process counted and
// had not sent yet.
func (s *Store) Tally(ctx context.Context, tenant, day string) (map[string]int64, error) {
	if err := s.stats.Flush(ctx, tenant); err != nil {
		return nil, err
	}
	m, err := s.rdb.HGetAll(ctx, keyspace.TenantOf(tenant).Tally(day)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for f, v := range m {
		out[f], _ = strconv.ParseInt(v, 10, 64)
	}
	return out, nil
}

// Enqueue queues jobs that record no change (digests) in the tenant's
// home shard.
func (s *Store) Enqueue(ctx context.Context, tenant string, jobs []engine.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	args := []any{tenant}
	for _, j := range jobs {
		args = append(args, string(j.Kind), base64.StdEncoding.EncodeToString(j.Payload))
	}
	return enqueueScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(tenant).Queue()}, args...).Err()
}
