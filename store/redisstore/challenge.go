package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/keyspace"
)

func challengeFields(c engine.Challenge) []string {
	data, _ := json.Marshal(c.Data)
	return []string{
		"tenant", c.Tenant, "user", c.User, "purpose", string(c.Purpose), "channel", string(c.Channel),
		"dest", c.Destination, "code", c.CodeHash, "status", string(c.Status),
		"created_at", strconv.FormatInt(ms(c.CreatedAt), 10), "expires_at", strconv.FormatInt(ms(c.ExpiresAt), 10),
		"attempts", strconv.Itoa(c.Attempts), "max_attempts", strconv.Itoa(c.MaxAttempts),
		"sends", strconv.Itoa(c.Sends), "last_sent_at", strconv.FormatInt(msOrZero(c.LastSentAt), 10),
		"delivery", string(c.Delivery), "login", c.LoginID, "data", string(data),
	}
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

func fromMs(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func parseChallenge(id string, m map[string]string) engine.Challenge {
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	c := engine.Challenge{
		ID: id, Tenant: m["tenant"], User: m["user"], Purpose: engine.Purpose(m["purpose"]),
		Channel: engine.Channel(m["channel"]), Destination: m["dest"], CodeHash: m["code"], Status: engine.Status(m["status"]),
		CreatedAt: fromMs(m["created_at"]), ExpiresAt: fromMs(m["expires_at"]),
		Attempts: atoi(m["attempts"]), MaxAttempts: atoi(m["max_attempts"]), Sends: atoi(m["sends"]),
		LastSentAt: fromMs(m["last_sent_at"]), Delivery: message.DeliveryState(m["delivery"]), DeliveryErr: m["delivery_error"], LoginID: m["login"],
	}
	_ = json.Unmarshal([]byte(m["data"]), &c.Data)
	return c
}

// AttemptChallenge counts one attempt, within the user's attempt budget,
// and returns the challenge. The challenge's user is read first to name
// the budget's key (it never changes; the script checks it again).
func (s *Store) AttemptChallenge(ctx context.Context, tenant, id string, now time.Time, b engine.AttemptBudget) (engine.Challenge, error) {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	ck := keyspace.Challenge(sh, id)
	user, err := s.rdb.HGet(ctx, ck, "user").Result()
	if errors.Is(err, redis.Nil) {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	if err != nil {
		return engine.Challenge{}, err
	}
	us := space(engine.UserRef{Tenant: tenant, User: user})
	if us.Shard() != sh {
		return engine.Challenge{}, engine.ErrChallengeNotFound
	}
	res, err := attemptScript.Run(ctx, s.rdb, []string{ck, us.Attempts()}, tenant, ms(now), user,
		max(b.Max, 0), b.Window.Milliseconds()).StringSlice()
	if err != nil {
		return engine.Challenge{}, err
	}
	switch res[0] {
	case "nf":
		return engine.Challenge{}, engine.ErrChallengeNotFound
	case "st":
		return engine.Challenge{}, engine.ChallengeStatusError(engine.Status(res[1]))
	case "cap":
		wait, _ := strconv.ParseInt(res[1], 10, 64)
		return engine.Challenge{}, engine.ErrAttemptBudget(time.Duration(wait) * time.Millisecond)
	}
	m := make(map[string]string, len(res)/2)
	for i := 1; i+1 < len(res); i += 2 {
		m[res[i]] = res[i+1]
	}
	return parseChallenge(id, m), nil
}

// ReleaseAttempt takes a right code's attempt out of the user's budget.
func (s *Store) ReleaseAttempt(ctx context.Context, u engine.UserRef, id string, attempt int) error {
	us := space(u)
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok || sh != us.Shard() {
		return nil
	}
	return releaseAttemptScript.Run(ctx, s.rdb, []string{us.Attempts(), us.Challenge(id)}, attempt).Err()
}

// Challenge reads a challenge of a tenant.
func (s *Store) Challenge(ctx context.Context, tenant, id string) (engine.Challenge, bool, error) {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.Challenge{}, false, nil
	}
	m, err := s.rdb.HGetAll(ctx, keyspace.Challenge(sh, id)).Result()
	if err != nil {
		return engine.Challenge{}, false, err
	}
	if len(m) == 0 || m["tenant"] != tenant {
		return engine.Challenge{}, false, nil
	}
	return parseChallenge(id, m), true, nil
}

// Rekey sets a new code hash, counts a send and queues its job.
func (s *Store) Rekey(ctx context.Context, tenant, id, codeHash string, now time.Time, cooldown time.Duration, maxSends int, job engine.Job) error {
	sh, ok := keyspace.ParseID("ch_", id)
	if !ok {
		return engine.ErrChallengeNotFound
	}
	res, err := sendScript.Run(ctx, s.rdb, []string{keyspace.Challenge(sh, id), keyspace.Queue(sh)},
		tenant, ms(now), cooldown.Milliseconds(), maxSends, string(job.Kind), base64.StdEncoding.EncodeToString(job.Payload), codeHash).StringSlice()
	if err != nil {
		return err
	}
	switch res[0] {
	case "ok":
		return nil
	case "nf":
		return engine.ErrChallengeNotFound
	case "st":
		return engine.ChallengeStatusError(engine.Status(res[1]))
	case "wait":
		n, _ := strconv.ParseInt(res[1], 10, 64)
		return engine.ErrResendTooSoon(time.Duration(n) * time.Millisecond)
	case "max":
		return engine.ErrTooManySends
	}
	return errors.New("redisstore: send: unexpected answer " + res[0])
}

// KeptLogins lists the ids of the user's kept login records.
func (s *Store) KeptLogins(ctx context.Context, u engine.UserRef, now time.Time) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, space(u).Logins(), &redis.ZRangeBy{Min: strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
}

// OpenChallenges lists the ids of a user's challenges that have not
// expired (in whatever status).
func (s *Store) OpenChallenges(ctx context.Context, u engine.UserRef, now time.Time) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, space(u).OpenChallenges(), &redis.ZRangeBy{Min: strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
}
