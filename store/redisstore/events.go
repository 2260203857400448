package redisstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// AppendEvent records a tenant-level event and queues its jobs.
func (s *Store) AppendEvent(ctx context.Context, ev engine.Event, jobs []engine.Job) error {
	evb, _ := json.Marshal(ev)
	args := []any{evb, s.evmax, ev.Tenant}
	for _, j := range jobs {
		args = append(args, string(j.Kind), base64.StdEncoding.EncodeToString(j.Payload))
	}
	return appendEventScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(ev.Tenant).Events(), keyspace.TenantOf(ev.Tenant).Queue()}, args...).Err()
}

// EraseUserEvents deletes the tenant-level events (its home shard's
// stream, another slot than the user's) that name an erased user.
func (s *Store) EraseUserEvents(ctx context.Context, tenant, user string) error {
	return eraseTenantEventsScript.Run(ctx, s.rdb, []string{keyspace.TenantOf(tenant).Events()}, user).Err()
}

// Events pages through a tenant's audit log, newest first. Events of all
// shards are merged in the order of compareItems, descending: two shards'
// streams number the events of one millisecond independently, so within a
// millisecond the event's own time decides.
// The cursor names the last event returned as "<stream id>/<unix ns>/<shard>".
func (s *Store) Events(ctx context.Context, tenant string, q engine.EventQuery) ([]engine.Event, string, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	shards := make([]int, 0, keyspace.Shards)
	if q.User != "" {
		shards = append(shards, keyspace.ShardOf(tenant, q.User))
		if ts := keyspace.ShardOf(tenant, ""); ts != shards[0] {
			shards = append(shards, ts)
		}
	} else {
		for i := range keyspace.Shards {
			shards = append(shards, i)
		}
	}
	bounds := make(map[int]string, len(shards))
	for _, sh := range shards {
		bounds[sh] = "+"
	}
	var after *eventItem // the cursor: only events after it in the order
	if q.Cursor != "" {
		c, ok := parseCursor(q.Cursor)
		if !ok {
			return nil, "", engine.Invalid("cursor", "malformed cursor")
		}
		after = &c
		ms, _, _ := strings.Cut(c.id, "-")
		for _, sh := range shards {
			// Every shard may still hold events of the cursor's
			// millisecond (the bound takes it whole); those at or before
			// the cursor in the order are skipped below.
			bounds[sh] = ms
		}
	}
	lower := "-"
	if !q.Since.IsZero() {
		lower = strconv.FormatInt(ms(q.Since), 10)
	}
	// Each round reads a page of every shard not yet exhausted. Every
	// unread event of a shard is older than the oldest event read from it,
	// so once more than Limit matches are merged, the newest Limit of them
	// are certain; filters may need further rounds.
	var out []eventItem
	page := int64(q.Limit + 1)
	for len(shards) > 0 && len(out) <= q.Limit {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, len(shards))
		for i, sh := range shards {
			cmds[i] = pipe.XRevRangeN(ctx, keyspace.Events(sh, tenant), bounds[sh], lower, page)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", err
		}
		var next []int
		for i, sh := range shards {
			msgs, _ := cmds[i].Result()
			for _, m := range msgs {
				var ev engine.Event
				raw, _ := m.Values["e"].(string)
				if json.Unmarshal([]byte(raw), &ev) != nil {
					continue
				}
				ev.ID = m.ID
				it := eventItem{m.ID, sh, ev}
				if after != nil && compareItems(it, *after) >= 0 {
					continue
				}
				if (q.User == "" || ev.User == q.User) && (q.Type == "" || ev.Type == q.Type) {
					out = append(out, it)
				}
			}
			if int64(len(msgs)) == page {
				bounds[sh] = "(" + msgs[len(msgs)-1].ID
				next = append(next, sh)
			}
		}
		shards = next
	}
	slices.SortFunc(out, func(a, b eventItem) int { return compareItems(b, a) })
	cursor := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		cursor = last.id + "/" + strconv.FormatInt(last.ev.At.UnixNano(), 10) + "/" + strconv.Itoa(last.shard)
	}
	evs := make([]engine.Event, len(out))
	for i, it := range out {
		evs[i] = it.ev
	}
	return evs, cursor, nil
}

type eventItem struct {
	id    string
	shard int
	ev    engine.Event
}

// compareItems orders events by the millisecond of their stream id, then
// by the event's own time (the streams of two shards number the events of
// one millisecond independently), then by id and shard.
func compareItems(a, b eventItem) int {
	if c := cmp.Compare(idMillis(a.id), idMillis(b.id)); c != 0 {
		return c
	}
	if c := a.ev.At.Compare(b.ev.At); c != 0 {
		return c
	}
	if c := compareIDs(a.id, b.id); c != 0 {
		return c
	}
	return a.shard - b.shard
}

func idMillis(id string) uint64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(ms, 10, 64)
	return n
}

func parseCursor(c string) (eventItem, bool) {
	parts := strings.Split(c, "/")
	if len(parts) != 3 || !validStreamID(parts[0]) {
		return eventItem{}, false
	}
	at, err1 := strconv.ParseInt(parts[1], 10, 64)
	sh, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || sh < 0 || sh >= keyspace.Shards {
		return eventItem{}, false
	}
	return eventItem{id: parts[0], shard: sh, ev: engine.Event{At: time.Unix(0, at).UTC()}}, true
}

func validStreamID(id string) bool {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(a, 10, 64)
	_, e2 := strconv.ParseUint(b, 10, 64)
	return e1 == nil && e2 == nil
}

func compareIDs(a, b string) int {
	pa, sa, _ := strings.Cut(a, "-")
	pb, sb, _ := strings.Cut(b, "-")
	ia, _ := strconv.ParseUint(pa, 10, 64)
	ib, _ := strconv.ParseUint(pb, 10, 64)
	if ia != ib {
		if ia < ib {
			return -1
		}
		return 1
	}
	ja, _ := strconv.ParseUint(sa, 10, 64)
	jb, _ := strconv.ParseUint(sb, 10, 64)
	switch {
	case ja < jb:
		return -1
	case ja > jb:
		return 1
	}
	return 0
}
