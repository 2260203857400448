package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepup-auth/stepup/internal/redisinfo"
)

// phase is one measured load phase: a target driven by c workers.
type phase struct {
	name        string
	client      *http.Client
	url         string // full URL of the endpoint
	key         string // bearer key, "" for none
	concurrency int
	// rate, when positive, is the open loop's offered load: request k is
	// due at start + k/rate, taken by the next free worker, and timed from
	// when it was due, so a server that falls behind is charged for the
	// queue it causes.
	rate     float64
	warmup   time.Duration
	duration time.Duration
	seed     uint64
	// body returns the next request body; each worker gets its own random
	// stream.
	body func(r *rand.Rand) any
	// redis, when set, reads what the Redis server has spent so far; the
	// result then holds what the measured window used.
	redis func(context.Context) (redisinfo.Usage, bool)
}

// result is a phase's measurements.
type result struct {
	name      string
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // of successful requests, sorted
	errors    int
	firstErrs []string // a few distinct error descriptions
	decisions map[string]int
	redis     redisinfo.Usage // what Redis spent in the measured window; zero when unknown
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// quantile returns the q-quantile of the successful requests' latencies
// (nearest rank), 0 when there are none.
func (r result) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latencies))+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// workerStats is one worker's tally, merged at the end.
type workerStats struct {
	n         int
	lat       []time.Duration
	errors    int
	errs      []string
	decisions map[string]int
}

// run drives the phase: every worker sends requests back to back until
// the warm-up and then the measured duration are over. Requests that end
// during the warm-up are not counted.
func (p phase) run(ctx context.Context) result {
	start := time.Now()
	measureFrom := start.Add(p.warmup)
	stop := measureFrom.Add(p.duration)
	ctx, cancel := context.WithDeadline(ctx, stop.Add(5*time.Second))
	defer cancel()

	stats := make([]workerStats, p.concurrency)
	var due atomic.Int64 // the next open-loop request's number
	var wg sync.WaitGroup
	used := make(chan redisinfo.Usage, 1)
	if p.redis != nil {
		go func() { used <- p.redisBetween(ctx, measureFrom, stop) }()
	} else {
		used <- redisinfo.Usage{}
	}
	for w := range p.concurrency {
		wg.Go(func() {
			st := &stats[w]
			st.decisions = map[string]int{}
			st.lat = make([]time.Duration, 0, 4096)
			r := rand.New(rand.NewPCG(p.seed, uint64(w)))
			var buf bytes.Buffer
			for {
				buf.Reset()
				_ = json.NewEncoder(&buf).Encode(p.body(r))
				t0 := time.Now()
				if p.rate > 0 {
					t0 = start.Add(time.Duration(float64(due.Add(1)-1) / p.rate * float64(time.Second)))
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				}
				if !t0.Before(stop) || ctx.Err() != nil {
					return
				}
				decision, err := p.send(ctx, buf.Bytes())
				t1 := time.Now()
				if t1.Before(measureFrom) {
					continue
				}
				if t1.After(stop) {
					return // finished after the window: neither counted nor timed
				}
				st.n++
				if err != nil {
					st.errors++
					if len(st.errs) < 3 && !slices.Contains(st.errs, err.Error()) {
						st.errs = append(st.errs, err.Error())
					}
					continue
				}
				st.lat = append(st.lat, t1.Sub(t0))
				if decision != "" {
					st.decisions[decision]++
				}
			}
		})
	}
	wg.Wait()

	res := result{name: p.name, elapsed: p.duration, decisions: map[string]int{}, redis: <-used}
	for _, st := range stats {
		res.requests += st.n
		res.errors += st.errors
		res.latencies = append(res.latencies, st.lat...)
		for _, e := range st.errs {
			if len(res.firstErrs) < 5 && !slices.Contains(res.firstErrs, e) {
				res.firstErrs = append(res.firstErrs, e)
			}
		}
		for d, n := range st.decisions {
			res.decisions[d] += n
		}
	}
	slices.Sort(res.latencies)
	return res
}

// redisBetween returns what p.redis reports Redis spent between from and
// to, zero when it cannot tell.
func (p phase) redisBetween(ctx context.Context, from, to time.Time) redisinfo.Usage {
	read := func(at time.Time) (redisinfo.Usage, bool) {
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			return redisinfo.Usage{}, false
		}
		return p.redis(ctx)
	}
	a, ok := read(from)
	if !ok {
		return redisinfo.Usage{}
	}
	b, ok := read(to)
	if !ok || b.CPU < a.CPU {
		return redisinfo.Usage{}
	}
	return b.Sub(a)
}

// send posts one body and returns the evaluation's decision, if the answer
// has one. Any status but 200 is an error.
func (p phase) send(ctx context.Context, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %.120s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var ans struct {
		Decision string `json:"decision"`
	}
	_ = json.Unmarshal(b, &ans)
	return ans.Decision, nil
}

// newClient returns an HTTP client that keeps one connection per worker
// alive.
func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only: never through a proxy
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}
