package engine

import (
	"crypto/rand"
	"testing"

	"github.com/stepup-auth/stepup/internal/seal"
	"github.com/stepup-auth/stepup/message"
)

// The notices addressed to a user carry his keyed hash, never his id, so an erasure can find them in
// the dead-letter stream and retry set; the managers' mail about him is
// the tenant's and carries none.
func TestJobsToTheUserCarryHisHash(t *testing.T) {
	secret := []byte("jobuser-test-secret-0123456789abcdef")
	e := &core{opt: Options{CodeLength: 6, Rand: rand.Reader}, featMAC: seal.NewMAC(secret, "features"), queueBox: seal.New(secret, "queue", rand.Reader)}
	u := UserRef{Tenant: "tn_1", User: "ann"}
	want := e.userSubject(u)
	if want == "" || want == u.User {
		t.Fatalf("user hash %q", want)
	}
	tn := Tenant{ID: u.Tenant, SenderName: "Acme"}
	ev := Event{Tenant: u.Tenant, User: u.User, Type: message.EvAdminReset, Details: map[string]string{}}
	a := Account{Profile: Profile{Email: "ann@example.test"}}
	notice := e.userNotice(tn, a, &ev)
	if len(notice) != 1 {
		t.Fatalf("%d user notices, want 1", len(notice))
	}
	if notice[0].User != want {
		t.Errorf("user notice's user = %q, want %q", notice[0].User, want)
	}
	for _, j := range e.managerJobs(tn, []string{"boss@example.test"}, ev) {
		if j.User != "" {
			t.Errorf("manager mail carries user %q", j.User)
		}
	}
}
