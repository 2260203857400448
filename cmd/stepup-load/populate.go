package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// populator gives the seeded users what a typical enrolled user has beside
// a history: a profile with an e-mail address, an SMS factor with its
// backup codes and, for a share of them, a device remembered after a
// challenged login. It reads the codes from the fake Twilio it serves.
type populator struct {
	client      *http.Client
	base, key   string
	concurrency int
	remember    float64 // share of users who remember a device
	seed        uint64
	sms         *fakeTwilio
}

// run enrols every user, concurrency at a time, and stops at the first
// error. It returns how many users remembered a device.
func (p populator) run(ctx context.Context, users []loadUser) (remembered int64, err error) {
	var rem atomic.Int64
	err = eachUser(ctx, users, p.concurrency, p.seed^0xe1201, "populate", func(ctx context.Context, r *rand.Rand, i int) error {
		ok, err := p.enrol(ctx, r, users[i], i)
		if ok && err == nil {
			rem.Add(1)
		}
		return err
	})
	return rem.Load(), err
}

// phone is user i's mobile number: +61 40 and seven digits, a valid
// Australian mobile number for each i below ten million.
func phone(i int) string { return fmt.Sprintf("+6140%07d", i) }

// enrol gives u a profile and an SMS factor, and with probability
// p.remember a remembered device; it reports whether the device was
// remembered.
func (p populator) enrol(ctx context.Context, r *rand.Rand, u loadUser, i int) (bool, error) {
	uid := url.PathEscape(u.id)
	if _, err := p.call(ctx, http.MethodPut, "/v1/users/"+uid, map[string]any{"email": u.id + "@example.test"}, http.StatusOK); err != nil {
		return false, fmt.Errorf("profile: %w", err)
	}
	num := phone(i)
	codes := p.sms.expect(num)
	defer p.sms.forget(num)
	st, err := p.call(ctx, http.MethodPost, "/v1/users/"+uid+"/sms", map[string]any{"phone": num}, http.StatusCreated)
	if err != nil {
		return false, fmt.Errorf("start SMS enrolment: %w", err)
	}
	if err := p.verify(ctx, st, codes, false); err != nil {
		return false, fmt.Errorf("verify SMS enrolment: %w", err)
	}
	if r.Float64() >= p.remember {
		return false, nil
	}
	// A login from an address and a device the history does not know is
	// challenged; verifying it remembers the device.
	login := u.login(r, 0)
	login.DeviceID = u.id + "-new"
	ev, err := p.call(ctx, http.MethodPost, "/v1/logins/evaluate", login, http.StatusOK)
	if err != nil {
		return false, fmt.Errorf("evaluate: %w", err)
	}
	if ev["decision"] != "challenge" {
		return false, nil
	}
	if err := p.verify(ctx, ev, codes, true); err != nil {
		return false, fmt.Errorf("verify login: %w", err)
	}
	return true, nil
}

// verify waits for the code of the challenge in answer and verifies it.
func (p populator) verify(ctx context.Context, answer map[string]any, codes <-chan string, remember bool) error {
	ch, _ := answer["challenge"].(map[string]any)
	id, _ := ch["id"].(string)
	if id == "" {
		return fmt.Errorf("no challenge in %v", answer)
	}
	var code string
	select {
	case code = <-codes:
	case <-time.After(30 * time.Second):
		return errors.New("no SMS within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := p.call(ctx, http.MethodPost, "/v1/challenges/"+id+"/verify", map[string]any{"code": code, "remember_device": remember}, http.StatusOK)
	return err
}

// call sends a JSON request with the app key and decodes the answer,
// which must have status want.
func (p populator) call(ctx context.Context, method, path string, body any, want int) (map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out map[string]any
	if len(raw) > 0 {
		err = json.Unmarshal(raw, &out)
	}
	return out, err
}

// fakeTwilio answers Twilio's Messages API on a loopback address and hands
// each message's code to whoever expects a message to its number.
type fakeTwilio struct {
	srv     *http.Server
	mu      sync.Mutex
	waiting map[string]chan string
	n       atomic.Int64
}

// twilioCode is the one-time code of a stepup message.
var twilioCode = regexp.MustCompile(`\b\d{4,10}\b`)

// startFakeTwilio serves on addr, which must be a loopback address.
func startFakeTwilio(addr string) (*fakeTwilio, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-twilio-listen %q: want a loopback host:port", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &fakeTwilio{waiting: map[string]chan string{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(l) }()
	return f, nil
}

func (f *fakeTwilio) close() { _ = f.srv.Close() }

// expect returns the channel on which the codes sent to num arrive.
func (f *fakeTwilio) expect(num string) <-chan string {
	c := make(chan string, 4)
	f.mu.Lock()
	f.waiting[num] = c
	f.mu.Unlock()
	return c
}

func (f *fakeTwilio) forget(num string) {
	f.mu.Lock()
	delete(f.waiting, num)
	f.mu.Unlock()
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, `{"code":20001,"message":"bad request","status":400}`, http.StatusBadRequest)
		return
	}
	to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
	f.mu.Lock()
	c := f.waiting[to]
	f.mu.Unlock()
	if c != nil {
		select {
		case c <- twilioCode.FindString(body):
		default:
		}
	}
	sid := fmt.Sprintf("SM%032x", f.n.Add(1))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": sid, "status": "queued", "to": to, "from": r.PostForm.Get("From"),
		"body": body, "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
	})
}
