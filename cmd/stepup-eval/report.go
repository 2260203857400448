package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/stepup-auth/stepup/internal/evalset"
)

// blockTarget is the share of naive and targeted attackers the comparison
// threshold must block, as in Wiefling et al.'s reference point.
const blockTarget = 0.995

// historyBucket is a range of past logins (n_u) reported as one row.
type historyBucket struct {
	name   string
	lo, hi int
}

var historyBuckets = []historyBucket{
	{"1–4", 1, 4},
	{"5–12", 5, 12},
	{"13–40", 13, 40},
	{"> 40", 41, math.MaxInt},
}

// referencePoint is one point of Wiefling et al.'s curve: the share of a
// user's logins that are challenged after n logins, at 99.5 % of naive and
// targeted attackers blocked (ACM TOPS 2022, IP and user agent only).
type referencePoint struct {
	n        int
	ref      string
	refUpper float64 // the reference's upper bound, for the verdict
}

var referenceCurve = []referencePoint{
	{4, "~50 %", 0.50},
	{12, "~25 %", 0.25},
	{40, "5–7 %", 0.07},
}

// stats counts outcomes and those challenged at one threshold.
type stats struct{ n, hit int }

func (s stats) share() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return float64(s.hit) / float64(s.n)
}

func (s stats) String() string {
	if s.n == 0 {
		return "–"
	}
	return pct(s.share())
}

func pct(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) }

// tally counts the outcomes accepted by keep, and those challenged at th.
func tally(outs []outcome, th int, keep func(outcome) bool) stats {
	var s stats
	for _, o := range outs {
		if keep(o) {
			s.n++
			if o.challenged(th) {
				s.hit++
			}
		}
	}
	return s
}

func ofKind(k evalset.Kind) func(outcome) bool {
	return func(o outcome) bool { return o.Kind == k }
}

func legitWith(lo, hi int) func(outcome) bool {
	return func(o outcome) bool { return o.Kind == evalset.Legit && o.Past >= lo && o.Past <= hi }
}

// blockingThreshold returns the highest challenge threshold at which at
// least target of each attacker kind is blocked (challenged or denied).
// The blocked share only falls as the threshold rises, so the answer is
// the last threshold before any kind drops below the target; 0 blocks
// everything.
func blockingThreshold(outs []outcome, target float64, kinds ...evalset.Kind) int {
	for th := 101; th > 0; th-- {
		ok := true
		for _, k := range kinds {
			if tally(outs, th, ofKind(k)).share() < target {
				ok = false
				break
			}
		}
		if ok {
			return th
		}
	}
	return 0
}

// runReport is one replay's results, ready to print.
type runReport struct {
	title       string
	outcomes    []outcome
	defaultTh   int
	blockingTh  int
	mismatches  int
	legitPerCtx bool
}

// table is a titled table printed as aligned text or as Markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (t table) write(w io.Writer, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "**%s**\n\n", t.title)
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.head, " | "))
		seps := make([]string, len(t.head))
		for i := range seps {
			seps[i] = "---:"
		}
		seps[0] = "---"
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "%s\n", t.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{t.head}, t.rows...) {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(r, "\t"))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// write prints a run's tables: legitimate users by history length and the
// reference points, attackers by kind, and legitimate logins of
// experienced users by where they came from; each at the default threshold
// and at the threshold that blocks blockTarget of naive and targeted
// attackers.
func (r runReport) write(w io.Writer, markdown bool) {
	d, b := r.defaultTh, r.blockingTh
	colD := fmt.Sprintf("at %d (default)", d)
	colB := fmt.Sprintf("at %d (%.1f %% blocked)", b, 100*blockTarget)
	if markdown {
		fmt.Fprintf(w, "### %s\n\n", r.title)
	} else {
		fmt.Fprintf(w, "== %s ==\n\n", r.title)
	}
	fmt.Fprintf(w, "Threshold blocking %.1f %% of naive and targeted attackers: %d (default %d).\n", 100*blockTarget, b, d)
	if r.mismatches > 0 {
		fmt.Fprintf(w, "WARNING: %d decisions differ from score ≥ threshold; the sweep below does not reproduce the engine.\n", r.mismatches)
	}
	fmt.Fprintln(w)

	legit := table{
		title: "Legitimate logins challenged, by the user's past logins",
		head:  []string{"past logins", "logins", colD, colB, "Wiefling et al."},
	}
	legit.rows = append(legit.rows, []string{"0 (cold start)", count(tally(r.outcomes, d, legitWith(0, 0)).n),
		tally(r.outcomes, d, legitWith(0, 0)).String(), tally(r.outcomes, b, legitWith(0, 0)).String(), "–"})
	for _, hb := range historyBuckets {
		sd, sb := tally(r.outcomes, d, legitWith(hb.lo, hb.hi)), tally(r.outcomes, b, legitWith(hb.lo, hb.hi))
		legit.rows = append(legit.rows, []string{hb.name, count(sd.n), sd.String(), sb.String(), ""})
	}
	for _, p := range referenceCurve {
		sd, sb := tally(r.outcomes, d, legitWith(p.n, p.n)), tally(r.outcomes, b, legitWith(p.n, p.n))
		legit.rows = append(legit.rows, []string{fmt.Sprintf("exactly %d", p.n), count(sd.n), sd.String(), sb.String(), p.ref})
	}
	legit.write(w, markdown)

	att := table{title: "Attackers blocked (challenged or denied)", head: []string{"attacker", "attempts", colD, colB}}
	for _, k := range evalset.Attackers {
		sd, sb := tally(r.outcomes, d, ofKind(k)), tally(r.outcomes, b, ofKind(k))
		att.rows = append(att.rows, []string{k.String(), count(sd.n), sd.String(), sb.String()})
	}
	att.write(w, markdown)

	if r.legitPerCtx {
		ctx := table{
			title: "Legitimate logins after more than 12 past logins, challenged by where they came from",
			head:  []string{"context", "logins", colD, colB},
		}
		for _, c := range evalset.Contexts {
			keep := func(o outcome) bool { return o.Kind == evalset.Legit && o.Past > 12 && o.Context == c }
			sd, sb := tally(r.outcomes, d, keep), tally(r.outcomes, b, keep)
			ctx.rows = append(ctx.rows, []string{c.String(), count(sd.n), sd.String(), sb.String()})
		}
		ctx.write(w, markdown)
	}

	fmt.Fprintf(w, "%s\n\n", r.verdict())
}

// verdict compares the run at the blocking threshold with the reference
// curve's points.
func (r runReport) verdict() string {
	var parts []string
	beats := true
	for _, p := range referenceCurve {
		s := tally(r.outcomes, r.blockingTh, legitWith(p.n, p.n))
		if s.n == 0 || s.share() > p.refUpper {
			beats = false
		}
		parts = append(parts, fmt.Sprintf("after %d: %s vs %s", p.n, s, p.ref))
	}
	word := "beats"
	if !beats {
		word = "does NOT beat"
	}
	return fmt.Sprintf("At %.1f %% of naive and targeted attackers blocked this %s the reference curve (%s).",
		100*blockTarget, word, strings.Join(parts, "; "))
}

func count(n int) string { return fmt.Sprint(n) }
