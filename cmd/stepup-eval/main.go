package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/evalset"
)

func main() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// miniredis runs every script in a fresh Lua state, so the replay
		// allocates fast and keeps little: collecting only as the heap
		// nears a gigabyte saves a third of the CPU of the default
		// collector.
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(1 << 30)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "stepup-eval:", err)
		}
		os.Exit(2)
	}
}

// config is the command line.
type config struct {
	seed     uint64
	users    int
	days     int
	attacks  int
	asn      bool
	redis    string
	markdown bool
	whatIf   bool
	// shadowOnly skips the engine replay: only the what-if tables.
	shadowOnly bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("stepup-eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated login set (and of the engine's ids)")
	fs.IntVar(&c.users, "users", 1500, "number of legitimate users (each adds about 15 ms to each replay)")
	fs.IntVar(&c.days, "days", 180, "length of the replayed period in days")
	fs.IntVar(&c.attacks, "attacks", 1, "attempts of each attacker kind per user")
	fs.BoolVar(&c.asn, "asn", false, "also load an ASN database (the network level becomes the AS instead of the /24 or /64)")
	fs.StringVar(&c.redis, "redis", "", "address of a Redis server to use instead of an in-process miniredis")
	fs.BoolVar(&c.markdown, "markdown", false, "print the tables as Markdown")
	fs.BoolVar(&c.whatIf, "whatif", false, "also score the set with changed scorers (exact in-memory counts) and compare their curves")
	fs.BoolVar(&c.shadowOnly, "whatif-only", false, "print only the what-if tables, skipping the replay through the engine (seconds instead of minutes)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.whatIf = c.whatIf || c.shadowOnly
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.users < 1 || c.days < 1 || c.attacks < 1 {
		return c, errors.New("-users, -days and -attacks must be positive")
	}
	return c, nil
}

// variant is one of the two ways the set is replayed.
type variant struct {
	title        string
	ignoreDevice bool
}

var variants = []variant{
	{"With device ids", false},
	{"Without device ids (IP and user agent only)", true},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := evaluate(ctx, c)
	if err != nil {
		return err
	}
	rep.write(stdout, c.markdown)
	return nil
}

// report is everything stepup-eval prints.
type report struct {
	head string
	runs []runReport
}

// evaluate generates the set of c and replays it once per variant.
func evaluate(ctx context.Context, c config) (report, error) {
	began := time.Now()
	set := evalset.Generate(evalset.Options{Seed: c.seed, Users: c.users, Days: c.days, AttacksPerUser: c.attacks})
	geo, err := set.World.OpenGeoIP(c.asn)
	if err != nil {
		return report{}, err
	}
	defer geo.Close()

	// The two replays share nothing but the read-only set and GeoIP
	// reader, so they run side by side.
	results := make([]replayResult, len(variants))
	shadows := make([][]shadowLogin, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() {
			if !c.shadowOnly {
				results[i], errs[i] = replay(ctx, set, replayOptions{
					IgnoreDevice: v.ignoreDevice, RedisAddr: c.redis, Geo: geo, Seed: c.seed,
				})
			}
			if c.whatIf && errs[i] == nil {
				shadows[i] = shadowReplay(set, geo, v.ignoreDevice)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return report{}, err
	}

	network := "IPv4 /24 or IPv6 /64 (Country database only)"
	if c.asn {
		network = "autonomous system (Country and ASN databases)"
	}
	rep := report{head: fmt.Sprintf("stepup-eval: seed %d, %d users, %d days from %s; %d legitimate logins, %d naive, %d VPN, %d targeted and %d targeted-in-the-ISP attempts; network level: %s; replayed in %s.",
		c.seed, c.users, c.days, set.Options.Start.Format("2006-01-02"),
		set.Count(evalset.Legit), set.Count(evalset.Naive), set.Count(evalset.VPNAttacker), set.Count(evalset.Targeted), set.Count(evalset.TargetedISP),
		network, time.Since(began).Round(100*time.Millisecond))}
	def := engine.DefaultPolicy().Thresholds.Challenge
	for i, v := range variants {
		outs := results[i].Outcomes
		rep.runs = append(rep.runs, runReport{
			title:      v.title,
			outcomes:   outs,
			defaultTh:  def,
			blockingTh: blockingThreshold(outs, blockTarget, evalset.Naive, evalset.Targeted),
			mismatches: results[i].Mismatches,
			noDevice:   v.ignoreDevice,
			shadow:     shadows[i],
			shadowOnly: c.shadowOnly,
		})
	}
	return rep, nil
}

func (r report) write(w io.Writer, markdown bool) {
	fmt.Fprintf(w, "%s\n\n", r.head)
	for _, run := range r.runs {
		run.write(w, markdown)
	}
}
