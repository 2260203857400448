package e2e_test

// What stepup leaves in Redis: helpers that read every key of a test's
// own redis-server, with its type, TTL and content as text (job payloads
// opened), to check erasure and bounded memory from the outside.
//
// Helpers of this file carry the ks prefix.

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/store/keyspace"
)

// ksKey is one key: its name, type, TTL (-1 for none) and its content as
// text, one line per field, member or stream entry.
type ksKey struct {
	Name, Type string
	TTL        time.Duration
	Lines      []string
}

// ksDump reads every key of the Env's single redis-server. Job payloads
// ("data" fields of streams and of the delay sets' JSON members) are
// opened with the queue box, so what they carry is searched too.
func ksDump(t testing.TB, env *apptest.Env) []ksKey {
	t.Helper()
	ctx := t.Context()
	rdb := env.App.Redis
	box := seal.New([]byte(apptest.Secret), "queue", nil)
	open := func(s string) string {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return ""
		}
		plain, err := box.Open(raw)
		if err != nil {
			return ""
		}
		return " payload=" + string(plain)
	}
	var names []string
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	slices.Sort(names)
	var out []ksKey
	for _, name := range names {
		k := ksKey{Name: name}
		k.Type = rdb.Type(ctx, name).Val()
		k.TTL = rdb.PTTL(ctx, name).Val()
		switch k.Type {
		case "none":
			continue // expired meanwhile
		case "string":
			k.Lines = []string{rdb.Get(ctx, name).Val()}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, name).Val() {
				k.Lines = append(k.Lines, f+"="+v)
			}
		case "set":
			k.Lines = rdb.SMembers(ctx, name).Val()
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, name, 0, -1).Val() {
				m := fmt.Sprint(z.Member)
				if i := strings.Index(m, `"data":"`); i >= 0 {
					d, _, _ := strings.Cut(m[i+len(`"data":"`):], `"`)
					m += open(d)
				}
				k.Lines = append(k.Lines, m)
			}
		case "list":
			k.Lines = rdb.LRange(ctx, name, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, name, "-", "+").Val() {
				line := m.ID
				for f, v := range m.Values {
					line += " " + f + "=" + fmt.Sprint(v)
					if f == "data" {
						line += open(fmt.Sprint(v))
					}
				}
				k.Lines = append(k.Lines, line)
			}
		default:
			t.Fatalf("key %s of type %s", name, k.Type)
		}
		slices.Sort(k.Lines)
		out = append(out, k)
	}
	return out
}

// ksUserForms are the spellings under which a tenant's user, his phone
// and his address may appear in keys and values: as given, as keyspace
// names a user (base64url), and as the engine's keyed hashes of them
// (limit subjects).
func ksUserForms(tenant, user, phone, email string) []string {
	feat := seal.NewMAC([]byte(apptest.Secret), "features")
	h := func(parts ...string) string { return hex.EncodeToString(feat.Sum(parts...)[:8]) }
	forms := []string{user, base64.RawURLEncoding.EncodeToString([]byte(user)), h(tenant, "user", user)}
	if phone != "" {
		forms = append(forms, phone, strings.TrimPrefix(phone, "+"), h(tenant, "phone", phone))
	}
	if email != "" {
		forms = append(forms, email, h(tenant, "email", strings.ToLower(email)))
	}
	return forms
}

// ksFind returns, for every key whose name or content holds one of forms,
// a line naming the key and what was found; keep(key, line) excuses a
// finding (the erasure's own audit event).
func ksFind(keys []ksKey, forms []string, keep func(k ksKey, line string) bool) []string {
	var found []string
	for _, k := range keys {
		for _, f := range forms {
			if strings.Contains(k.Name, f) && !keep(k, "") {
				found = append(found, fmt.Sprintf("%s (%s, ttl %v): name holds %q", k.Name, k.Type, k.TTL, f))
			}
			for _, l := range k.Lines {
				if strings.Contains(l, f) && !keep(k, l) {
					found = append(found, fmt.Sprintf("%s (%s, ttl %v): %q holds %q", k.Name, k.Type, k.TTL, ksShort(l), f))
				}
			}
		}
	}
	return found
}

func ksShort(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestKeyspaceStrangersLeaveNothingForever: whoever holds an app key (or
// a host app that evaluates whatever user id a login form was given) can
// evaluate and report failed passwords of any number of user ids that no
// one ever registers. Each may leave keys behind, but every one of them
// must expire: nothing naming such a user may be kept without a TTL.
func TestKeyspaceStrangersLeaveNothingForever(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	const n = 40
	var strangers []string
	for i := range n {
		strangers = append(strangers, fmt.Sprintf("stranger-%03d-q9z", i))
	}
	// Required 2FA with grace logins: a stranger's login is a grace login.
	e.policy(t, map[string]any{"mode": "required", "grace_logins": 3})
	for i, u := range strangers[:n/2] {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		e.must(t, 200, "POST", "/v1/logins/evaluate", map[string]any{"user_id": u, "ip": ip, "user_agent": lcLaptop.UA, "device_id": u})
		e.must(t, 204, "POST", "/v1/logins/failed", map[string]any{"user_id": u, "ip": ip, "user_agent": lcLaptop.UA})
	}
	// Optional 2FA: a stranger's login is allowed and learnt.
	e.policy(t, map[string]any{"mode": "optional"})
	for i, u := range strangers[n/2:] {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		e.must(t, 200, "POST", "/v1/logins/evaluate", map[string]any{"user_id": u, "ip": ip, "user_agent": lcLaptop.UA, "device_id": u})
	}
	var forms []string
	for _, u := range strangers {
		forms = append(forms, ksUserForms(e.TenantID, u, "", "")...)
	}
	// Audit streams and job streams are capped: a stranger's events may
	// stay until trimmed.
	expires := func(k ksKey, _ string) bool { return k.TTL >= 0 || k.Type == "stream" }
	found := ksFind(ksDump(t, e.Env), forms, expires)
	for _, f := range found {
		t.Errorf("kept without a TTL: %s", f)
	}

	// A stranger who then registers a profile is a user: his account,
	// grace count and all, is kept.
	e.must(t, 200, "PUT", "/v1/users/"+strangers[0], map[string]any{"display_name": "Known"})
	if ttl := e.Env.App.Redis.PTTL(t.Context(), keyspace.UserOf(e.TenantID, strangers[0]).Account()).Val(); ttl != -1 {
		t.Errorf("account of a registered user expires in %v, want kept", ttl)
	}
}
