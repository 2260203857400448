package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// seeder imports the load users' histories.
type seeder struct {
	client      *http.Client
	base        string // stepupd's base URL
	key         string
	concurrency int
	logins      int // past logins per user
	seed        uint64
	now         time.Time
}

// run imports the history of every user, concurrency at a time, and
// stops at the first error.
func (s seeder) run(ctx context.Context, users []loadUser) error {
	return eachUser(ctx, users, s.concurrency, s.seed^0x5eed, "seed", func(ctx context.Context, r *rand.Rand, i int) error {
		return s.importOne(ctx, r, users[i])
	})
}

// eachUser calls fn for every user index, concurrency at a time, each
// worker with a random source of its own from seed; the first error stops
// them all and is returned, naming the user with what (as "seed user x").
func eachUser(ctx context.Context, users []loadUser, concurrency int, seed uint64, what string,
	fn func(ctx context.Context, r *rand.Rand, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(users) {
					return
				}
				if err := fn(ctx, r, i); err != nil {
					cancel(fmt.Errorf("%s user %s: %w", what, users[i].id, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func (s seeder) importOne(ctx context.Context, r *rand.Rand, u loadUser) error {
	body, err := json.Marshal(map[string]any{"logins": u.history(r, s.logins, s.now)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/users/"+url.PathEscape(u.id)+"/history", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
