package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// promptKey is the key of a prompt id, or false for an id that is not one.
func promptKey(id string) (string, int, bool) {
	sh, ok := keyspace.ParseID("pr_", id)
	if !ok {
		return "", 0, false
	}
	return keyspace.Prompt(sh, id), sh, true
}

// CreatePrompt stores a new prompt for ttl.
func (s *Store) CreatePrompt(ctx context.Context, p engine.Prompt, ttl time.Duration) error {
	key, _, ok := promptKey(p.ID)
	if !ok {
		return errors.New("redisstore: prompt id without placement")
	}
	args := []any{ttl.Milliseconds(),
		"tenant", p.Tenant, "user", p.User, "login", p.LoginID, "kind", string(p.Kind), "return_url", p.ReturnURL,
		"state", p.State, "expires_at", strconv.FormatInt(ms(p.ExpiresAt), 10), "status", string(p.Status),
		"session", "", "ch", p.Challenge, "verified", flag(p.Verified), "method", string(p.Method), "ceremony", "",
		"proof", p.Proof, "key", p.Key}
	return createPromptScript.Run(ctx, s.rdb, []string{key}, args...).Err()
}

func parsePrompt(id string, m map[string]string) engine.Prompt {
	cer, _ := base64.StdEncoding.DecodeString(m["ceremony"])
	return engine.Prompt{ID: id, Tenant: m["tenant"], User: m["user"], LoginID: m["login"], Kind: engine.PromptKind(m["kind"]),
		ReturnURL: m["return_url"], State: m["state"], ExpiresAt: fromMs(m["expires_at"]), Status: engine.PromptStatus(m["status"]),
		Session: m["session"], Challenge: m["ch"], Verified: m["verified"] == "1", Method: engine.Channel(m["method"]), Ceremony: cer,
		Proof: m["proof"], Key: m["key"]}
}

// Prompt reads a prompt.
func (s *Store) Prompt(ctx context.Context, id string) (engine.Prompt, bool, error) {
	key, _, ok := promptKey(id)
	if !ok {
		return engine.Prompt{}, false, nil
	}
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil || len(m) == 0 {
		return engine.Prompt{}, false, err
	}
	return parsePrompt(id, m), true, nil
}

// OpenPrompt claims a new prompt for a browser session.
func (s *Store) OpenPrompt(ctx context.Context, id, session string, now time.Time) (engine.Prompt, bool, bool, error) {
	key, _, ok := promptKey(id)
	if !ok {
		return engine.Prompt{}, false, false, nil
	}
	res, err := openPromptScript.Run(ctx, s.rdb, []string{key}, ms(now), session).Slice()
	if err != nil {
		return engine.Prompt{}, false, false, err
	}
	if len(res) < 2 {
		return engine.Prompt{}, false, false, nil
	}
	flat, _ := res[1].([]any)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	claimed, _ := res[0].(int64)
	return parsePrompt(id, m), true, claimed == 1, nil
}

// ReleasePrompt makes a prompt the session opened, without a code yet,
// new again.
func (s *Store) ReleasePrompt(ctx context.Context, id, session string) error {
	key, _, ok := promptKey(id)
	if !ok {
		return nil
	}
	return releasePromptScript.Run(ctx, s.rdb, []string{key}, session).Err()
}

// UpdatePrompt changes an open prompt of the session.
func (s *Store) UpdatePrompt(ctx context.Context, id, session string, now time.Time, ch engine.PromptChange) error {
	key, _, ok := promptKey(id)
	if !ok {
		return engine.ErrPromptClosed
	}
	args := []any{ms(now), session, "", ""}
	if ch.IfCeremony != nil {
		args[2], args[3] = "ceremony", base64.StdEncoding.EncodeToString(*ch.IfCeremony)
	}
	if ch.Challenge != nil {
		args = append(args, "ch", *ch.Challenge)
	}
	if ch.Verified != nil {
		args = append(args, "verified", flag(*ch.Verified))
	}
	if ch.Proof != nil {
		args = append(args, "proof", *ch.Proof)
	}
	if ch.Method != nil {
		args = append(args, "method", string(*ch.Method))
	}
	if ch.Ceremony != nil {
		args = append(args, "ceremony", base64.StdEncoding.EncodeToString(*ch.Ceremony))
	}
	if len(args) == 4 {
		return nil
	}
	res, err := updatePromptScript.Run(ctx, s.rdb, []string{key}, args...).Text()
	switch {
	case err != nil:
		return err
	case res == "stale":
		return engine.ErrConflict
	case res != "OK":
		return engine.ErrPromptClosed
	}
	return nil
}

// FinishPrompt closes an open prompt and stores its exchange code.
func (s *Store) FinishPrompt(ctx context.Context, id, session string, now time.Time, code string, result []byte, ttl time.Duration) error {
	key, sh, ok := promptKey(id)
	if !ok {
		return engine.ErrPromptClosed
	}
	p, found, err := s.Prompt(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		return engine.ErrPromptClosed
	}
	xkey := keyspace.Exchange(sh, code)
	if code != "" {
		if csh, ok := keyspace.ParseID("sc_", code); !ok || csh != sh {
			return errors.New("redisstore: exchange code not in the prompt's shard")
		}
	}
	res, err := finishPromptScript.Run(ctx, s.rdb, []string{key, xkey}, ms(now), session, p.Tenant, string(result), ttl.Milliseconds()).Text()
	if err != nil {
		return err
	}
	if res != "OK" {
		return engine.ErrPromptClosed
	}
	return nil
}

// TakeExchange returns and deletes a tenant's exchange result.
func (s *Store) TakeExchange(ctx context.Context, tenant, code string) ([]byte, bool, error) {
	sh, ok := keyspace.ParseID("sc_", code)
	if !ok {
		return nil, false, nil
	}
	v, err := takeExchangeScript.Run(ctx, s.rdb, []string{keyspace.Exchange(sh, code)}, tenant).Text()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return []byte(v), true, nil
}
