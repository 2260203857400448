package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// Options configures a Worker. Zero fields take the defaults noted.
type Options struct {
	// Shards is the number of queue shards, keyspace.Shards (64).
	Shards int
	// Workers is the number of jobs sent concurrently, 4.
	Workers int
	// Group is the consumer group, DefaultGroup ("workers").
	Group string
	// Consumer names this worker in the group and must be unique among
	// running processes; default hostname-pid-random.
	Consumer string
	// MaxAttempts is how often a job is tried before it is dead-lettered, 8.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the wait before a retry, which is
	// random in [0, min(BackoffMax, BackoffBase·2^attempt)); 2s and 5m.
	BackoffBase, BackoffMax time.Duration
	// ClaimIdle is how long a job may stay unacknowledged before another
	// worker takes it over, 30s. It is also how often a worker looks for
	// such jobs (every ClaimIdle/2), how long a worker holds back from
	// taking jobs over after it saw Redis fail, and how long it keeps
	// trying to record a job's outcome while Redis does not answer. On a
	// Redis Cluster it must exceed the failover time (cluster-node-timeout
	// plus a few seconds), or a code sent just before a master died is
	// sent again.
	ClaimIdle time.Duration
	// SendTimeout bounds one Handler call, ClaimIdle/2. It must stay below
	// ClaimIdle so a job still being sent is never claimed by another
	// worker; a larger value is lowered to ClaimIdle/2.
	SendTimeout time.Duration
	// PollInterval is the wait between two reads of the shards, 100ms; it
	// grows to 4 times that while the queue stays empty.
	PollInterval time.Duration
	// Batch is the most jobs read from one shard at once, 16.
	Batch int
	// DeadMaxLen caps each shard's dead-letter stream (approximately), 10000.
	DeadMaxLen int64
	// Clock tells the time for due dates and challenge expiry, time.Now.
	Clock func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter and must be safe
	// for concurrent use; math/rand/v2's Float64.
	Rand func() float64
	// Logger receives one line per job outcome, slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the worker's metrics.
	Registerer prometheus.Registerer
	// Box is the "queue" seal.Box that opens payloads. Required.
	Box *seal.Box
}

// Timings of housekeeping that need no tuning.
const (
	opTimeout     = 5 * time.Second // one Redis step of a job
	promoteLimit  = 100             // delayed jobs moved per shard and poll
	reapEvery     = time.Hour       // how often dead consumers are looked for
	reapIdle      = 24 * time.Hour  // idle time after which a consumer is dead
	errorLogEvery = 10 * time.Second
	settleWaitMin = 50 * time.Millisecond // between tries of an outcome script, doubling…
	settleWaitMax = time.Second           // …up to this
	idleFactor    = 4                     // an idle worker polls every PollInterval·idleFactor at the slowest
)

func (o *Options) defaults() error {
	if o.Box == nil {
		return errors.New("delivery: Options.Box is required")
	}
	if o.Shards == 0 {
		o.Shards = keyspace.Shards
	}
	if o.Shards < 1 || o.Shards > keyspace.MaxShards {
		return fmt.Errorf("delivery: Options.Shards must be 1..%d", keyspace.MaxShards)
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Consumer == "" {
		o.Consumer = defaultConsumer()
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 2 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 30 * time.Second
	}
	if o.SendTimeout <= 0 || o.SendTimeout >= o.ClaimIdle {
		o.SendTimeout = o.ClaimIdle / 2
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 16
	}
	if o.DeadMaxLen <= 0 {
		o.DeadMaxLen = 10000
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = mrand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "stepup"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Worker reads jobs from the shard streams and hands them to a Handler.
type Worker struct {
	rdb redis.UniversalClient
	h   Handler
	o   Options
	log *slog.Logger
	m   *metrics

	running atomic.Bool
	busy    atomic.Int64 // jobs being processed

	mu       sync.Mutex
	inflight map[entryKey]struct{} // entries taken by this process

	// owned by the polling goroutine
	cursors   []string    // XAUTOCLAIM cursor per shard
	faults    []time.Time // last Redis error seen on each shard
	lastClaim time.Time
	lastReap  time.Time
	lastErr   time.Time
}

// New returns a Worker that sends jobs read through rdb with h.
func New(rdb redis.UniversalClient, h Handler, opts Options) (*Worker, error) {
	if rdb == nil || h == nil {
		return nil, errors.New("delivery: New needs a redis client and a handler")
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	w := &Worker{
		rdb:      rdb,
		h:        h,
		o:        opts,
		log:      opts.Logger.With("component", "delivery", "consumer", opts.Consumer),
		m:        newMetrics(opts.Registerer),
		inflight: make(map[entryKey]struct{}),
		cursors:  make([]string, opts.Shards),
		faults:   make([]time.Time, opts.Shards),
	}
	for i := range w.cursors {
		w.cursors[i] = "0-0"
	}
	return w, nil
}

// Consumer returns the worker's consumer name.
func (w *Worker) Consumer() string { return w.o.Consumer }

// entry is a stream entry read by this worker.
type entry struct {
	shard int
	msg   redis.XMessage
}

// Run reads and sends jobs until ctx is done, then stops reading, lets the
// sends in flight finish and record their outcome, and returns nil. Redis
// errors are logged and retried; they do not end Run. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("delivery: worker already running")
	}
	// Sends and their bookkeeping outlive ctx: a message handed to the
	// provider must have its outcome recorded.
	base := context.WithoutCancel(ctx)
	jobs := make(chan entry)
	var wg sync.WaitGroup
	for range w.o.Workers {
		wg.Go(func() {
			for e := range jobs {
				w.process(base, e)
			}
		})
	}
	w.log.Info("delivery worker started", "shards", w.o.Shards, "workers", w.o.Workers)
	w.poll(ctx, jobs)
	close(jobs)
	wg.Wait()
	w.log.Info("delivery worker stopped")
	return nil
}

// poll reads the shards every PollInterval, and at once again after a read
// that filled a batch, until ctx is done.
func (w *Worker) poll(ctx context.Context, jobs chan<- entry) {
	// An idle worker polls less and less often, down to one poll each
	// idleFactor intervals, so idle processes cost Redis little; the first
	// job found brings the interval back.
	wait := w.o.PollInterval
	timer := time.NewTimer(wait)
	defer timer.Stop()
	ready := false
	for ctx.Err() == nil {
		if !ready {
			if err := w.ensureGroups(ctx); err != nil {
				w.pollError("create consumer groups", err)
			} else {
				ready = true
			}
		}
		more := false
		if ready {
			var batch []entry
			var ok bool
			if time.Since(w.lastClaim) >= w.claimEvery() {
				batch, ok = w.claim(ctx)
				ready = ready && ok
			}
			got, full, ok := w.read(ctx)
			ready = ready && ok
			batch = append(batch, got...)
			more = full
			if len(batch) > 0 {
				wait = w.o.PollInterval
			} else {
				wait = min(2*wait, idleFactor*w.o.PollInterval)
			}
			for _, e := range batch {
				select {
				case jobs <- e:
				case <-ctx.Done():
					// Entries read but not handed out stay pending and are
					// claimed after ClaimIdle.
					return
				}
			}
			if time.Since(w.lastReap) >= reapEvery {
				w.lastReap = time.Now()
				w.reap(ctx)
			}
		}
		if more {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
	}
}

func (w *Worker) claimEvery() time.Duration {
	return max(w.o.ClaimIdle/2, w.o.PollInterval)
}

// pollError logs errors of the polling loop at most every errorLogEvery, so
// a Redis outage does not flood the log.
func (w *Worker) pollError(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if time.Since(w.lastErr) < errorLogEvery {
		return
	}
	w.lastErr = time.Now()
	w.log.Error("delivery: "+what, "err", err)
}

// ensureGroups creates the consumer group of every shard. It starts at the
// beginning of the stream so jobs queued before the first worker ran are
// delivered.
func (w *Worker) ensureGroups(ctx context.Context) error {
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, w.o.Shards)
	for s := range w.o.Shards {
		cmds[s] = pipe.XGroupCreateMkStream(ctx, keyspace.Queue(s), w.o.Group, "0")
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return err
		}
	}
	return nil
}

// free is how many more jobs the worker can take now.
func (w *Worker) free() int {
	return max(0, w.o.Workers-int(w.busy.Load()))
}

// read moves due retries back into the streams and reads new entries from
// every shard, no more per shard than the worker can start now: an entry
// read waits in this process, and it must not wait so long that another
// worker claims it. full reports that some shard had more. ok is false
// when a consumer group is missing.
func (w *Worker) read(ctx context.Context) (got []entry, full, ok bool) {
	ok = true
	count := min(w.o.Batch, w.free())
	now := w.o.Clock().UnixMilli()
	calls := make([]scriptCall, w.o.Shards)
	for s := range w.o.Shards {
		calls[s] = scriptCall{
			keys: []string{keyspace.Delay(s), keyspace.Queue(s), keyspace.Dead(s)},
			args: []any{now, promoteLimit, w.o.DeadMaxLen},
		}
	}
	pipe := w.rdb.Pipeline()
	promotes := queueScripts(ctx, pipe, promoteScript, calls)
	var reads []*redis.XStreamSliceCmd
	if count > 0 {
		reads = make([]*redis.XStreamSliceCmd, w.o.Shards)
		for s := range w.o.Shards {
			reads[s] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group:    w.o.Group,
				Consumer: w.o.Consumer,
				Streams:  []string{keyspace.Queue(s), ">"},
				Count:    int64(count),
				Block:    -1, // never block: it would pin a pooled connection
			})
		}
	}
	_, _ = pipe.Exec(ctx)
	for s, c := range retryNoScript(ctx, w.rdb, promoteScript, calls, promotes) {
		if err := c.Err(); err != nil {
			w.fault(s)
			w.pollError("promote delayed jobs", err)
		}
	}
	for s, c := range reads {
		streams, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			if redis.HasErrorPrefix(err, "NOGROUP") {
				ok = false
			}
			w.fault(s)
			w.pollError("read jobs", err)
			continue
		}
		for _, st := range streams {
			for _, m := range st.Messages {
				got = append(got, entry{shard: s, msg: m})
			}
			if len(st.Messages) >= count {
				full = true
			}
		}
	}
	return got, full, ok
}

// claim takes over entries that other (dead or stuck) consumers left
// unacknowledged for longer than ClaimIdle, and on the same round trip
// refreshes the dead-letter gauge.
func (w *Worker) claim(ctx context.Context) (got []entry, ok bool) {
	ok = true
	count := min(w.o.Batch, w.free())
	if count == 0 {
		return nil, true
	}
	w.lastClaim = time.Now()
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.XAutoClaimCmd, w.o.Shards)
	for s := range w.o.Shards {
		if !w.claimable(s) {
			continue
		}
		cmds[s] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   keyspace.Queue(s),
			Group:    w.o.Group,
			Consumer: w.o.Consumer,
			MinIdle:  w.o.ClaimIdle,
			Start:    w.cursors[s],
			Count:    int64(count),
		})
	}
	lens := make([]*redis.IntCmd, w.o.Shards)
	for s := range w.o.Shards {
		lens[s] = pipe.XLen(ctx, keyspace.Dead(s))
	}
	_, _ = pipe.Exec(ctx)
	var dead int64
	for s, c := range cmds {
		dead += lens[s].Val()
		if c == nil {
			continue
		}
		msgs, next, err := c.Result()
		if err != nil {
			if redis.HasErrorPrefix(err, "NOGROUP") {
				ok = false
			}
			w.fault(s)
			w.pollError("claim idle jobs", err)
			continue
		}
		w.cursors[s] = next
		for _, m := range msgs {
			got = append(got, entry{shard: s, msg: m})
		}
	}
	w.m.dead.Set(float64(dead))
	return got, ok
}

// fault notes a Redis error on shard s.
func (w *Worker) fault(s int) { w.faults[s] = time.Now() }

// claimable reports whether jobs of shard s may be taken over from other
// workers: not until ClaimIdle has passed since this worker last saw
// Redis fail on the shard. A job's idle time counts on while its master
// is down or failing over, and the worker that sent it may be waiting to
// record the outcome (step keeps trying for ClaimIdle); taking the job
// over as soon as Redis answers again would send it a second time.
func (w *Worker) claimable(s int) bool {
	return time.Since(w.faults[s]) >= w.o.ClaimIdle
}

// reap deletes long-idle consumers without pending entries.
func (w *Worker) reap(ctx context.Context) {
	calls := make([]scriptCall, w.o.Shards)
	for s := range w.o.Shards {
		calls[s] = scriptCall{keys: []string{keyspace.Queue(s)}, args: []any{w.o.Group, reapIdle.Milliseconds()}}
	}
	pipe := w.rdb.Pipeline()
	cmds := queueScripts(ctx, pipe, reapScript, calls)
	_, _ = pipe.Exec(ctx)
	n := int64(0)
	for _, c := range retryNoScript(ctx, w.rdb, reapScript, calls, cmds) {
		v, err := c.Int64()
		if err != nil {
			w.pollError("reap consumers", err)
			continue
		}
		n += v
	}
	if n > 0 {
		w.log.Info("delivery: removed idle consumers", "count", n)
	}
}

// job fields as read from a stream entry.
type fields struct {
	kind, tenant, ch, data string
	attempt                int
	gates                  []string // limit verdict keys the send waits for
	send                   string   // which send of its challenge the code is; "" unknown (queued by an older version)
	user                   string   // keyed hash of the user it is addressed to (keyspace.FieldUser), or ""
	malformed              string   // why the entry is not a job, or ""
}

func parseFields(values map[string]any) fields {
	str := func(k string) string {
		s, _ := values[k].(string)
		return s
	}
	f := fields{kind: str(keyspace.FieldKind), tenant: str(keyspace.FieldTenant), ch: str(keyspace.FieldChallenge), data: str(keyspace.FieldData)}
	a, err := strconv.Atoi(str(keyspace.FieldAttempt))
	switch {
	case f.kind == "":
		f.malformed = "job has no kind"
	case f.data == "":
		f.malformed = "job has no data"
	case err != nil || a < 0:
		f.malformed = "job has no valid attempt"
	}
	f.attempt = max(a, 0)
	f.send = str(keyspace.FieldSend)
	f.user = str(keyspace.FieldUser)
	if n, err := strconv.Atoi(f.send); f.send != "" && (err != nil || n < 1) {
		f.malformed = "job has no valid send number"
	}
	f.gates = strings.Fields(str(keyspace.FieldGates))
	for _, g := range f.gates {
		if !keyspace.IsLimitVerdict(g) {
			f.malformed = "job has a gate that is not a limit's verdict"
		}
	}
	return f
}

// entryKey names an entry: ids are unique only within one stream.
type entryKey struct {
	shard int
	id    string
}

// take marks e as being processed by this process; false if it already is
// (an entry this worker reclaimed from itself).
func (w *Worker) take(e entryKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.inflight[e]; ok {
		return false
	}
	w.inflight[e] = struct{}{}
	return true
}

func (w *Worker) release(e entryKey) {
	w.mu.Lock()
	delete(w.inflight, e)
	w.mu.Unlock()
}

// process runs one entry through check, send and outcome. ctx is not
// cancelled at shutdown.
func (w *Worker) process(ctx context.Context, e entry) {
	key := entryKey{e.shard, e.msg.ID}
	if !w.take(key) {
		w.log.Debug("delivery: job already in progress here", "job", e.msg.ID, "shard", e.shard)
		return
	}
	defer w.release(key)
	w.busy.Add(1)
	defer w.busy.Add(-1)

	f := parseFields(e.msg.Values)
	log := w.log.With("job", e.msg.ID, "shard", e.shard, "kind", f.kind, "tenant", f.tenant)
	if f.malformed != "" {
		w.dead(ctx, log, e, f, f.attempt, f.malformed)
		return
	}
	if f.ch != "" && !keyspace.InShard(f.ch, e.shard) {
		// The script may not touch a key of another slot; never mark it.
		bad := f
		bad.ch = ""
		w.dead(ctx, log, e, bad, f.attempt, "challenge key is not in the job's shard")
		return
	}

	st, err := w.begin(ctx, e, f.ch)
	if err != nil {
		// Left pending: another try claims it after ClaimIdle.
		log.Error("delivery: begin job", "err", err)
		return
	}
	if !st.owned {
		log.Debug("delivery: job taken over by another worker")
		return
	}
	attempt := f.attempt + max(st.deliveries-1, 0)
	log = log.With("attempt", attempt)
	if attempt >= w.o.MaxAttempts {
		w.dead(ctx, log, e, f, attempt, fmt.Sprintf("abandoned after %d attempts (sends failed or workers died)", attempt))
		return
	}
	now := w.o.Clock()
	if f.ch != "" && !st.challengeOpen(now) {
		w.finish(ctx, log, e, f, OutcomeDropped, "")
		return
	}
	if f.ch != "" && st.resentSince(f.send) {
		// The challenge was sent again (a resend) while this job waited
		// out a retry: its code no longer works, and sent late it would
		// only cost the user a wrong attempt.
		log.Info("delivery: not sent: a later send replaced its code", "outcome", OutcomeDropped)
		w.finish(ctx, log, e, f, OutcomeDropped, "")
		return
	}
	if len(f.gates) > 0 {
		refused, err := w.gated(ctx, log, f.gates)
		if err != nil {
			// Left pending, as when begin fails.
			log.Error("delivery: read send limits", "err", err)
			return
		}
		if refused != "" {
			log.Info("delivery: not sent: "+refused, "outcome", OutcomeDropped)
			w.finish(ctx, log, e, f, OutcomeDropped, "")
			return
		}
	}
	payload, err := openPayload(w.o.Box, f.data)
	if err != nil {
		w.dead(ctx, log, e, f, attempt, "payload cannot be opened")
		return
	}

	job := Job{
		Shard: e.shard, ID: e.msg.ID, Kind: message.Kind(f.kind), Tenant: f.tenant,
		Challenge: f.ch, Payload: payload, Attempt: attempt,
	}
	start := time.Now()
	res, herr := w.handle(ctx, job)
	w.m.send(f.kind, time.Since(start), herr)
	switch {
	case herr == nil:
		w.finish(ctx, log, e, f, OutcomeSent, res.ProviderID)
	case IsPermanent(herr):
		w.dead(ctx, log, e, f, attempt, scrub(herr.Error()))
	case attempt+1 >= w.o.MaxAttempts:
		w.dead(ctx, log, e, f, attempt, fmt.Sprintf("gave up after %d attempts: %s", attempt+1, scrub(herr.Error())))
	default:
		w.retry(ctx, log, e, f, attempt, scrub(herr.Error()))
	}
}

// gated checks the send limits a code job waits for: the verdicts the
// limits recorded when the login's write took them, in the same round
// trip. It returns why the code must not be sent, or "" when it may. On a
// cluster the write and the limits run on different nodes at once, so a
// verdict may not be written yet when the job is read: it is waited for,
// for gateWait. One that never comes was lost with a failed master
// (Redis replicates asynchronously) or never written because its limit's
// node failed; in the second case the engine, answering the login with
// an error, cancelled the challenge, so the job was dropped before this.
// Either way the code is sent: a code lost in a failover is worse than
// one send a limit did not meter. An error reading them is returned.
func (w *Worker) gated(ctx context.Context, log *slog.Logger, gates []string) (string, error) {
	deadline := time.Now().Add(w.gateWait())
	pause := 5 * time.Millisecond
	for {
		vs, err := w.verdicts(ctx, gates)
		if err == nil {
			switch {
			case slices.Contains(vs, "0"):
				return "a send limit refused it", nil
			case !slices.ContainsFunc(vs, func(v string) bool { return v != "1" }):
				return "", nil // every limit allowed it
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return "", err
			}
			log.Warn("delivery: a send limit gave no verdict; sending", "waited", w.gateWait())
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// gateWait is how long gated waits for a verdict: at most five seconds,
// well inside ClaimIdle so no other worker claims the job meanwhile.
func (w *Worker) gateWait() time.Duration { return min(5*time.Second, w.o.ClaimIdle/4) }

// verdicts reads the verdict keys, "" for one not written.
func (w *Worker) verdicts(ctx context.Context, keys []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vs := make([]string, len(keys))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		vs[i] = v
	}
	return vs, nil
}

// handle calls the handler with the send timeout and turns a panic into a
// retryable error, so a job that crashes its handler ends as a dead letter
// instead of taking the process down.
func (w *Worker) handle(ctx context.Context, j Job) (res Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.SendTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("delivery: handler panicked", "job", j.ID, "kind", j.Kind, "shard", j.Shard)
			res, err = Result{}, errors.New("handler panicked")
		}
	}()
	return w.h.Handle(ctx, j)
}

// jobState is what beginScript found.
type jobState struct {
	owned      bool
	deliveries int
	exists     bool // the challenge hash exists
	status     string
	expiresAt  string
	sends      int // the challenge's sends so far
}

// resentSince reports whether the challenge was sent again after the send
// numbered send ("" for the first).
func (s jobState) resentSince(send string) bool {
	n, err := strconv.Atoi(send)
	if err != nil {
		// No send number: a job queued before jobs carried one, which
		// may be a resend's; it is sent, as it was then.
		return false
	}
	return s.sends > n
}

// challengeOpen reports whether the job's challenge still wants its code.
func (s jobState) challengeOpen(now time.Time) bool {
	if !s.exists || s.status != "pending" {
		return false
	}
	if s.expiresAt == "" {
		return true
	}
	ms, err := strconv.ParseInt(s.expiresAt, 10, 64)
	if err != nil {
		return true // status is authoritative; a garbled expiry does not drop a code
	}
	return ms > now.UnixMilli()
}

func (w *Worker) begin(ctx context.Context, e entry, ch string) (jobState, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	keys := []string{keyspace.Queue(e.shard)}
	if ch != "" {
		keys = append(keys, ch)
	}
	v, err := beginScript.Run(ctx, w.rdb, keys, w.o.Group, w.o.Consumer, e.msg.ID).Slice()
	if errors.Is(err, redis.Nil) {
		return jobState{}, nil
	}
	if err != nil {
		return jobState{}, err
	}
	if len(v) != 5 {
		return jobState{}, fmt.Errorf("begin: unexpected reply of %d values", len(v))
	}
	n, _ := v[0].(int64)
	ex, _ := v[1].(int64)
	status, _ := v[2].(string)
	exp, _ := v[3].(string)
	sends, _ := v[4].(string)
	ns, _ := strconv.Atoi(sends)
	return jobState{owned: true, deliveries: int(n), exists: ex == 1, status: status, expiresAt: exp, sends: ns}, nil
}

// finish acknowledges a sent or dropped job.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, e entry, f fields, outcome, providerID string) {
	keys := []string{keyspace.Queue(e.shard)}
	if f.ch != "" {
		keys = append(keys, f.ch)
	}
	if w.settle(ctx, log, f, outcome, "record outcome", finishScript, keys, w.o.Group, e.msg.ID, outcome, providerID, f.send) {
		log.Info("delivery: job "+outcome, "outcome", outcome)
	}
}

// delayed is the member of a delay set: the job as promoteScript re-adds it.
type delayed struct {
	Origin  string `json:"id"` // keeps members unique
	Kind    string `json:"kind"`
	Tenant  string `json:"tenant"`
	Ch      string `json:"ch,omitempty"`
	Data    string `json:"data"`
	Attempt string `json:"attempt"`
	Send    string `json:"send,omitempty"`
	User    string `json:"user,omitempty"` // keyspace.FieldUser: an erasure finds his jobs by it
}

// retry parks a failed job until its backoff has passed.
func (w *Worker) retry(ctx context.Context, log *slog.Logger, e entry, f fields, attempt int, reason string) {
	wait := backoff(attempt, w.o.BackoffBase, w.o.BackoffMax, w.o.Rand())
	due := w.o.Clock().Add(wait).UnixMilli()
	member, err := json.Marshal(delayed{
		Origin: e.msg.ID, Kind: f.kind, Tenant: f.tenant, Ch: f.ch, Data: f.data,
		Attempt: strconv.Itoa(attempt + 1), Send: f.send, User: f.user,
	})
	if err != nil { // strings only: cannot happen
		log.Error("delivery: encode retry", "err", err)
		return
	}
	if !w.settle(ctx, log, f, OutcomeRetried, "schedule retry", retryScript, []string{keyspace.Queue(e.shard), keyspace.Delay(e.shard)},
		w.o.Group, e.msg.ID, due, string(member)) {
		return
	}
	log.Warn("delivery: job retried", "outcome", OutcomeRetried, "retry_in", wait.Round(time.Millisecond), "error", reason)
}

// dead moves a job to the dead-letter stream and marks its challenge failed.
func (w *Worker) dead(ctx context.Context, log *slog.Logger, e entry, f fields, attempt int, reason string) {
	keys := []string{keyspace.Queue(e.shard), keyspace.Dead(e.shard)}
	if f.ch != "" {
		keys = append(keys, f.ch)
	}
	if !w.settle(ctx, log, f, OutcomeDead, "dead-letter job", deadScript, keys, w.o.Group, e.msg.ID, w.o.DeadMaxLen,
		f.kind, f.tenant, f.ch, f.data, attempt, reason, w.o.Clock().UnixMilli(), f.send, f.user) {
		return
	}
	log.Error("delivery: job dead-lettered", "outcome", OutcomeDead, "error", reason)
}

// settle runs an outcome script for f's job (see step) and counts the
// outcome. It reports false, having logged why, when Redis failed or
// another worker had already finished the job.
func (w *Worker) settle(ctx context.Context, log *slog.Logger, f fields, outcome, what string, s *redis.Script, keys []string, args ...any) bool {
	done, err := w.step(ctx, s, keys, args...)
	if err != nil {
		log.Error("delivery: "+what, "outcome", outcome, "err", err)
		return false
	}
	if !done {
		log.Info("delivery: job already finished elsewhere", "outcome", outcome)
		return false
	}
	w.m.job(f.kind, outcome)
	return true
}

// step runs an outcome script until it succeeds: until then the job
// stays in the stream and would be sent again once another worker takes
// it over. Redis not answering — a master that died, while its replica is
// promoted — is waited for, with tries at most settleWaitMax apart, for
// ClaimIdle: no worker that saw the outage takes the job over sooner (see
// claimable), so an outcome recorded within that time is recorded once.
// An error of Redis about the script itself is not retried.
func (w *Worker) step(ctx context.Context, s *redis.Script, keys []string, args ...any) (bool, error) {
	deadline := time.Now().Add(w.o.ClaimIdle)
	wait := settleWaitMin
	for {
		c, cancel := context.WithTimeout(ctx, opTimeout)
		n, err := s.Run(c, w.rdb, keys, args...).Int64()
		cancel()
		if err == nil {
			return n == 1, nil
		}
		if !transient(err) || time.Now().Add(wait).After(deadline) {
			return false, err
		}
		time.Sleep(wait)
		wait = min(2*wait, settleWaitMax)
	}
}

// transient reports whether a failed Redis call may succeed when tried
// again: the connection failed, or the cluster is down, failing over or
// loading.
func transient(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return true // network, timeout, closed connection
	}
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "LOADING", "READONLY", "MASTERDOWN", "MOVED", "ASK"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// scriptCall is one script invocation in a pipeline.
type scriptCall struct {
	keys []string
	args []any
}

// queueScripts adds an EVALSHA per call to pipe.
func queueScripts(ctx context.Context, pipe redis.Pipeliner, s *redis.Script, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = pipe.EvalSha(ctx, s.Hash(), c.keys, c.args...)
	}
	return cmds
}

// retryNoScript runs again, with EVALSHA-then-EVAL, the calls whose
// pipelined EVALSHA found the script not loaded (a restarted or failed-over
// node), and returns the final commands.
func retryNoScript(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, calls []scriptCall, cmds []*redis.Cmd) []*redis.Cmd {
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmds[i] = s.Run(ctx, rdb, calls[i].keys, calls[i].args...)
		}
	}
	return cmds
}
