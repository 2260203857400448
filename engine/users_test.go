package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// A user stepup knows only from logins (no profile, no factor) is shown
// to the host app and the managers — with the grace logins it has left —
// and can be reset; a user it has never seen is not found.
func TestUserKnownByLoginsOnly(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	st := redisstore.New(redis.NewClient(&redis.Options{Addr: mr.Addr()}), redisstore.Options{})
	t.Cleanup(st.Close)
	eng, err := engine.New(st, engine.Options{Secret: []byte("users-test-secret-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := eng.Tenants.CreateTenant(ctx, "acme", "Acme")
	if _, err := eng.Policies.PutPolicy(ctx, tn.ID, engine.PolicyUpdate{Policy: engine.PolicyPatch{Mode: new(engine.ModeRequired), GraceLogins: new(3)}}, engine.Actor{Kind: message.ActorManager}); err != nil {
		t.Fatal(err)
	}
	bob := engine.UserRef{Tenant: tn.ID, User: "bob"}
	if _, err := eng.Lifecycle.GetUser(ctx, bob); !errors.Is(err, engine.ErrUserNotFound) {
		t.Fatalf("unseen user: %v, want user_not_found", err)
	}
	if _, err := eng.Logins.Evaluate(ctx, tn.ID, engine.EvaluateInput{UserID: "bob", IP: "192.0.2.5", UserAgent: "curl/8"}); err != nil {
		t.Fatal(err)
	}
	v, err := eng.Lifecycle.GetUser(ctx, bob)
	if err != nil {
		t.Fatalf("user known by a login: %v", err)
	}
	if v.Enrolled || v.GraceLoginsLeft == nil || *v.GraceLoginsLeft != 2 {
		t.Fatalf("view = %+v, want not enrolled with 2 grace logins left", v)
	}
	if _, err := eng.Policies.AdminReset(ctx, bob, "lost phone", engine.Actor{Kind: message.ActorManager}); err != nil {
		t.Fatalf("reset of a user known by logins: %v", err)
	}
	if _, err := eng.Policies.AdminReset(ctx, engine.UserRef{Tenant: tn.ID, User: "nobody"}, "x", engine.Actor{Kind: message.ActorManager}); !errors.Is(err, engine.ErrUserNotFound) {
		t.Fatalf("reset of an unseen user: %v, want user_not_found", err)
	}
}
