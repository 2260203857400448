package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "stepup-load:", err)
		}
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	url         string
	key         string
	users       int
	history     int
	concurrency int
	rate        float64 // requests per second offered (open loop), 0 for back to back
	duration    time.Duration
	warmup      time.Duration
	familiar    float64
	baseline    string
	ceiling     string // Redis address of the read+write ceiling, "" for none
	prefix      string
	seed        uint64
	skipSeed    bool
	populate    bool
	remember    float64
	twilio      string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("stepup-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "base URL of a running stepupd (loopback only)")
	fs.StringVar(&c.key, "key", "", "app key of the tenant to load (required)")
	fs.IntVar(&c.users, "users", 10000, "users to seed and evaluate")
	fs.IntVar(&c.history, "history", 20, "past logins imported per user")
	fs.IntVar(&c.concurrency, "c", 32, "concurrent requests")
	fs.Float64Var(&c.rate, "rate", 0, "offer this many requests per second to every phase (open loop, at most -c in flight; latency counts from each request's scheduled time) instead of sending back to back")
	fs.DurationVar(&c.duration, "d", 20*time.Second, "measured duration of each phase")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each phase")
	fs.Float64Var(&c.familiar, "familiar", 0.9, "share of evaluations from an address the user's history knows")
	fs.StringVar(&c.baseline, "baseline-url", "", "baseline POST endpoint (loopback only); default: an in-process gin server's /echo")
	fs.StringVar(&c.ceiling, "ceiling-redis", "", "loopback host:port of a Redis: also drive the read+write ceiling, the baseline plus one read and one write Lua round trip to it")
	fs.StringVar(&c.prefix, "prefix", "", "user id prefix (default: load-<unix time>-, so that runs never share users)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the users and the request mix")
	fs.BoolVar(&c.skipSeed, "skip-seed", false, "do not import histories (the users of -prefix were seeded before)")
	fs.BoolVar(&c.populate, "populate", false, "after seeding, enrol every user with SMS (and remember a device for -remember of them), then stop without driving load")
	fs.Float64Var(&c.remember, "remember", 0.3, "with -populate, share of users who remember a device after a challenged login")
	fs.StringVar(&c.twilio, "twilio-listen", "127.0.0.1:18099", "with -populate, loopback address of the fake Twilio API stepupd sends to (sms.twilio.api_base_url)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.key == "":
		return c, errors.New("-key is required (an app key of the tenant to load)")
	case c.users < 1 || c.concurrency < 1 || c.history < 1 || c.history > 1000:
		return c, errors.New("-users and -c must be positive, -history between 1 and 1000")
	case c.rate < 0:
		return c, errors.New("-rate must not be negative")
	case c.duration <= 0 || c.warmup < 0:
		return c, errors.New("-d must be positive and -warmup not negative")
	case c.familiar < 0 || c.familiar > 1:
		return c, errors.New("-familiar must be between 0 and 1")
	case c.remember < 0 || c.remember > 1:
		return c, errors.New("-remember must be between 0 and 1")
	case c.users > 1<<20:
		return c, errors.New("-users is at most 1048576 (one home /24 each)")
	}
	if err := requireLoopback(c.url); err != nil {
		return c, fmt.Errorf("-url: %w", err)
	}
	if c.baseline != "" {
		if err := requireLoopback(c.baseline); err != nil {
			return c, fmt.Errorf("-baseline-url: %w", err)
		}
	}
	if c.ceiling != "" {
		if err := requireLoopback("http://" + c.ceiling); err != nil { // the host check, for a host:port
			return c, fmt.Errorf("-ceiling-redis: %w", err)
		}
	}
	c.url = strings.TrimRight(c.url, "/")
	return c, nil
}

// requireLoopback accepts only http(s) URLs whose host is localhost or a
// loopback address: a load test must never reach another machine.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: host %q is not a loopback address", raw, host)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.prefix == "" {
		c.prefix = fmt.Sprintf("load-%d-", time.Now().Unix())
	}
	client := newClient(c.concurrency)
	defer client.CloseIdleConnections()

	users := make([]loadUser, c.users)
	for i := range users {
		users[i] = newLoadUser(c.seed, c.prefix, i)
	}
	var sms *fakeTwilio
	if c.populate {
		if sms, err = startFakeTwilio(c.twilio); err != nil {
			return err
		}
		defer sms.close()
	}
	if !c.skipSeed {
		began := time.Now()
		s := seeder{client: client, base: c.url, key: c.key, concurrency: c.concurrency, logins: c.history, seed: c.seed, now: time.Now()}
		if err := s.run(ctx, users); err != nil {
			return err
		}
		took := time.Since(began)
		fmt.Fprintf(stdout, "seeded %d users with %d past logins each in %s (%.0f users/s)\n",
			c.users, c.history, took.Round(10*time.Millisecond), float64(c.users)/took.Seconds())
	}
	if c.populate {
		began := time.Now()
		p := populator{client: client, base: c.url, key: c.key, concurrency: c.concurrency, remember: c.remember, seed: c.seed, sms: sms}
		remembered, err := p.run(ctx, users)
		if err != nil {
			return err
		}
		took := time.Since(began)
		fmt.Fprintf(stdout, "enrolled %d users with SMS, %d of them with a remembered device, in %s (%.0f users/s)\n",
			c.users, remembered, took.Round(10*time.Millisecond), float64(c.users)/took.Seconds())
		return nil
	}

	baseURL, ceilingURL := c.baseline, ""
	if baseURL == "" || c.ceiling != "" {
		u, stop, err := startBaseline(ctx, c.ceiling)
		if err != nil {
			return err
		}
		defer stop()
		if baseURL == "" {
			baseURL = u + "/echo"
		}
		if c.ceiling != "" {
			ceilingURL = u + "/ceiling"
		}
	}

	load := fmt.Sprintf("%d concurrent", c.concurrency)
	if c.rate > 0 {
		load = fmt.Sprintf("%.0f req/s offered, at most %d in flight", c.rate, c.concurrency)
	}
	fmt.Fprintf(stdout, "driving %s/v1/logins/evaluate, then %s: %s, %s each after %s warm-up\n",
		c.url, baseURL, load, c.duration, c.warmup)
	evaluate := phase{
		name: "stepup evaluate", client: client, url: c.url + "/v1/logins/evaluate", key: c.key,
		concurrency: c.concurrency, rate: c.rate, warmup: c.warmup, duration: c.duration, seed: c.seed,
		body: func(r *rand.Rand) any { return users[r.IntN(len(users))].login(r, c.familiar) },
	}
	echo := evaluate
	echo.name, echo.url, echo.key = "baseline echo", baseURL, ""
	phases := []phase{evaluate, echo}
	if ceilingURL != "" {
		rdb := redis.NewClient(&redis.Options{Addr: c.ceiling})
		defer rdb.Close()
		// The evaluation and the ceiling share the Redis server: what
		// each costs it per request is the gap the scripts make.
		phases[0].redis = redisUsage(rdb)
		ceiling := echo
		ceiling.name, ceiling.url, ceiling.redis = "read+write ceiling", ceilingURL, phases[0].redis
		phases = append(phases, ceiling)
	}
	var results []result
	for _, p := range phases {
		res := p.run(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		results = append(results, res)
	}
	report(stdout, results)
	if results[0].requests == 0 || results[0].errors == results[0].requests {
		return errors.New("no evaluation succeeded")
	}
	return nil
}

// report prints the phases side by side and their ratios.
func report(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trequests\treq/s\tp50\tp99\terrors\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t\n", r.name, r.requests, r.rps(), ms(r.quantile(0.50)), ms(r.quantile(0.99)), r.errors)
	}
	tw.Flush()
	for _, r := range rs {
		if u := r.redis; u.CPU > 0 && r.requests > 0 {
			fmt.Fprintf(w, "%s: Redis CPU %.1f s, %.0f µs per request", r.name, u.CPU, 1e6*u.CPU/float64(r.requests))
			if u.ScriptCalls > 0 {
				fmt.Fprintf(w, "; scripts %.2f per request, %.1f µs each", float64(u.ScriptCalls)/float64(r.requests), float64(u.ScriptUsec)/float64(u.ScriptCalls))
			}
			fmt.Fprintln(w)
		}
	}
	for _, r := range rs {
		for _, e := range r.firstErrs {
			fmt.Fprintf(w, "%s error: %s\n", r.name, e)
		}
	}
	if len(rs[0].decisions) > 0 {
		fmt.Fprintf(w, "decisions: %v\n", rs[0].decisions)
	}
	for i, name := range []string{"baseline", "read+write ceiling"} {
		if len(rs) < i+2 || rs[i+1].rps() == 0 || rs[i+1].quantile(0.5) == 0 {
			continue
		}
		a, b := rs[0], rs[i+1]
		fmt.Fprintf(w, "stepup / %s: throughput %.2f×, p50 %.1f×, p99 %.1f×\n",
			name, a.rps()/b.rps(), ratio(a.quantile(0.5), b.quantile(0.5)), ratio(a.quantile(0.99), b.quantile(0.99)))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
