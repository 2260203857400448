package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/store/keyspace"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// A passkey ceremony is answered once: the change that clears it is a
// compare-and-set on the ceremony the caller read, so of two answers to
// one ceremony (a replayed or doubled request) only the first goes on.
func TestPromptCeremonyAnsweredOnce(t *testing.T) {
	onEachStore(t, "prompt", func(t *testing.T, s *redisstore.Store, _ redis.UniversalClient, tenant string) {
		ctx := context.Background()
		now := time.Now()
		id := "pr_" + keyspace.Placement(tenant, "alice") + strings.Repeat("a", 24)
		p := engine.Prompt{ID: id, Tenant: tenant, User: "alice", Kind: engine.PromptLogin, ExpiresAt: now.Add(time.Minute), Status: engine.PromptNew}
		if err := s.CreatePrompt(ctx, p, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.OpenPrompt(ctx, id, "session", now); err != nil {
			t.Fatal(err)
		}
		ceremony, none := []byte("ceremony one"), []byte{}
		if err := s.UpdatePrompt(ctx, id, "session", now, engine.PromptChange{Ceremony: &ceremony}); err != nil {
			t.Fatal(err)
		}
		take := engine.PromptChange{Ceremony: &none, IfCeremony: &ceremony}
		if err := s.UpdatePrompt(ctx, id, "session", now, take); err != nil {
			t.Fatalf("first answer: %v", err)
		}
		if err := s.UpdatePrompt(ctx, id, "session", now, take); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("second answer to the same ceremony: %v, want ErrConflict", err)
		}
		if got, _, err := s.Prompt(ctx, id); err != nil || len(got.Ceremony) != 0 {
			t.Fatalf("ceremony after the answer: %q (%v), want none", got.Ceremony, err)
		}
		// Another browser session cannot take it either way.
		other := []byte("ceremony two")
		if err := s.UpdatePrompt(ctx, id, "intruder", now, engine.PromptChange{Ceremony: &other}); !errors.Is(err, engine.ErrPromptClosed) {
			t.Fatalf("another session's change: %v, want ErrPromptClosed", err)
		}
	})
}

// A claim is released only by its own session and only while the prompt
// asks no code: another browser cannot free (and so take) a page someone
// else opened, nor can a page that sent its code be opened again.
func TestPromptReleaseOnlyOwnClaimWithoutCode(t *testing.T) {
	onEachStore(t, "release", func(t *testing.T, s *redisstore.Store, _ redis.UniversalClient, tenant string) {
		ctx := context.Background()
		now := time.Now()
		open := func(suffix string) string {
			id := "pr_" + keyspace.Placement(tenant, "alice") + strings.Repeat(suffix, 24)
			p := engine.Prompt{ID: id, Tenant: tenant, User: "alice", Kind: engine.PromptManage, ExpiresAt: now.Add(time.Minute), Status: engine.PromptNew}
			if err := s.CreatePrompt(ctx, p, time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, _, claimed, err := s.OpenPrompt(ctx, id, "session", now); err != nil || !claimed {
				t.Fatalf("open: %v %v", claimed, err)
			}
			return id
		}
		status := func(id string) engine.PromptStatus {
			p, _, err := s.Prompt(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return p.Status
		}
		id := open("a")
		if err := s.ReleasePrompt(ctx, id, "intruder"); err != nil || status(id) != engine.PromptOpen {
			t.Fatalf("another session's release: %v, status %s", err, status(id))
		}
		if _, _, claimed, _ := s.OpenPrompt(ctx, id, "intruder", now); claimed {
			t.Fatal("another session claimed an open prompt")
		}
		if err := s.ReleasePrompt(ctx, id, "session"); err != nil || status(id) != engine.PromptNew {
			t.Fatalf("own release: %v, status %s", err, status(id))
		}
		if _, _, claimed, _ := s.OpenPrompt(ctx, id, "again", now); !claimed {
			t.Fatal("a released prompt cannot be opened again")
		}

		sent := open("b")
		ch := "ch_x"
		if err := s.UpdatePrompt(ctx, sent, "session", now, engine.PromptChange{Challenge: &ch}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleasePrompt(ctx, sent, "session"); err != nil || status(sent) != engine.PromptOpen {
			t.Fatalf("release of a prompt with its code: %v, status %s", err, status(sent))
		}
	})
}
