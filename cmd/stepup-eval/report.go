package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/stepup-auth/stepup/internal/evalset"
)

// blockTarget is the share of naive and targeted attackers the comparison
// threshold must block, as at Wiefling et al.'s reference point.
const blockTarget = 0.995

// Calibration targets of RISK.md section 2.
const (
	familiarBelow = 10 // a returning user on a known IP, device and browser scores under this
	novelAtLeast  = 70 // a new country with a new device scores at least this
)

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
// user's logins that are challenged after n logins at 99.5 % of naive and
// targeted attackers blocked (ACM TOPS 2022, IP and user agent only). The
// set's logins with lo to hi past logins estimate it (a window, so that
// the point at 40 rests on more than the few users who reach exactly 40).
type referencePoint struct {
	name     string
	lo, hi   int
	ref      string
	refUpper float64 // the reference's upper end, for the verdict
}

var referenceCurve = []referencePoint{
	{"at 4", 4, 4, "~50 %", 0.50},
	{"at 12 (11–13)", 11, 13, "~25 %", 0.25},
	{"at 40 (36–44)", 36, 44, "5–7 %", 0.07},
}

// sweepThresholds are the thresholds of the sweep table, besides the
// default and the blocking one.
var sweepThresholds = []int{10, 20, 25, 30, 35, 40, 42, 44, 45, 46, 48, 50, 55, 60, 70}

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
	title      string
	outcomes   []outcome
	defaultTh  int
	blockingTh int
	mismatches int
	// noDevice: the run scored without device ids.
	noDevice bool
	shadow   []shadowLogin // nil unless -whatif
	// shadowOnly: there was no replay, only the what-if tables.
	shadowOnly bool
}

// table is a titled table printed as aligned text or as Markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (t table) write(w io.Writer, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "%s\n\n", t.title)
		esc := func(cells []string) string {
			out := make([]string, len(cells))
			for i, c := range cells {
				out[i] = strings.ReplaceAll(c, "|", `\|`)
			}
			return strings.Join(out, " | ")
		}
		fmt.Fprintf(w, "| %s |\n", esc(t.head))
		seps := make([]string, len(t.head))
		for i := range seps {
			seps[i] = "---:"
		}
		seps[0] = "---"
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", esc(r))
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

// Table titles; the command's test looks for them.
const (
	titleLegit       = "Legitimate logins challenged, by the user's past logins"
	titleAttackers   = "Attackers blocked (challenged or denied)"
	titleContexts    = "Legitimate logins after more than 12 past logins, challenged, by where they came from"
	titleSweep       = "Every threshold: legitimate logins challenged by past logins, attackers blocked"
	titleCalibration = "Calibration (RISK.md section 2)"
	titleWhatIf      = "What if the scorer changed"
)

// write prints a run's tables: legitimate users by history length next to
// the reference curve, attackers by kind, legitimate logins of experienced
// users by where they came from (each at the default threshold and at the
// one that blocks blockTarget of naive and targeted attackers), then a
// sweep over thresholds and the calibration checks.
func (r runReport) write(w io.Writer, markdown bool) {
	d, b := r.defaultTh, r.blockingTh
	colD := fmt.Sprintf("at %d (default)", d)
	colB := fmt.Sprintf("at %d (%.1f %% blocked)", b, 100*blockTarget)
	if markdown {
		fmt.Fprintf(w, "### %s\n\n", r.title)
	} else {
		fmt.Fprintf(w, "== %s ==\n\n", r.title)
	}
	if r.shadowOnly {
		for _, t := range whatIfTables(titleWhatIf, r.shadow, d) {
			t.write(w, markdown)
		}
		return
	}
	fmt.Fprintf(w, "Highest threshold blocking %.1f %% of naive and of targeted attackers: %d (the default is %d).\n\n", 100*blockTarget, b, d)
	if r.mismatches > 0 {
		fmt.Fprintf(w, "WARNING: %d engine decisions differ from \"no history or score ≥ threshold\"; the tables do not reproduce the engine.\n\n", r.mismatches)
	}

	legit := table{title: titleLegit, head: []string{"past logins", "logins", colD, colB, "Wiefling et al."}}
	row := func(name string, keep func(outcome) bool, ref string) []string {
		sd, sb := tally(r.outcomes, d, keep), tally(r.outcomes, b, keep)
		return []string{name, fmt.Sprint(sd.n), sd.String(), sb.String(), ref}
	}
	legit.rows = append(legit.rows, row("0 (cold start)", legitWith(0, 0), "–"))
	for _, hb := range historyBuckets {
		legit.rows = append(legit.rows, row(hb.name, legitWith(hb.lo, hb.hi), ""))
	}
	for _, p := range referenceCurve {
		legit.rows = append(legit.rows, row(p.name, legitWith(p.lo, p.hi), p.ref))
	}
	legit.write(w, markdown)

	att := table{title: titleAttackers, head: []string{"attacker", "attempts", colD, colB}}
	for _, k := range evalset.Attackers {
		att.rows = append(att.rows, row(k.String(), ofKind(k), "")[:4])
	}
	att.write(w, markdown)

	ctx := table{title: titleContexts, head: []string{"context", "logins", colD, colB}}
	for _, c := range evalset.Contexts {
		keep := func(o outcome) bool { return o.Kind == evalset.Legit && o.Past > 12 && o.Context == c }
		ctx.rows = append(ctx.rows, row(c.String(), keep, "")[:4])
	}
	ctx.write(w, markdown)

	fmt.Fprintf(w, "%s\n\n", r.verdict())

	r.sweep().write(w, markdown)
	r.calibration().write(w, markdown)
	if r.shadow != nil {
		title := fmt.Sprintf("%s (the in-memory shadow scores %.1f %% of logins within one point of the engine)",
			titleWhatIf, 100*agreement(r.shadow, r.outcomes))
		for _, t := range whatIfTables(title, r.shadow, d) {
			t.write(w, markdown)
		}
	}
}

// sweep is the table of every interesting threshold.
func (r runReport) sweep() table {
	t := table{title: titleSweep, head: []string{"threshold"}}
	for _, hb := range historyBuckets {
		t.head = append(t.head, "legit "+hb.name)
	}
	// RISK.md: the default challenges legitimate users with 12 or more past
	// logins on under 10 % of their logins.
	t.head = append(t.head, "legit ≥ 12 (RISK.md: < 10 %)")
	for _, k := range evalset.Attackers {
		t.head = append(t.head, k.String())
	}
	ths := append([]int{r.defaultTh, r.blockingTh}, sweepThresholds...)
	slices.Sort(ths)
	for _, th := range slices.Compact(ths) {
		name := fmt.Sprint(th)
		switch th {
		case r.defaultTh:
			name += " (default)"
		case r.blockingTh:
			name += fmt.Sprintf(" (%.1f %%)", 100*blockTarget)
		}
		cells := []string{name}
		for _, hb := range historyBuckets {
			cells = append(cells, tally(r.outcomes, th, legitWith(hb.lo, hb.hi)).String())
		}
		cells = append(cells, tally(r.outcomes, th, legitWith(12, math.MaxInt)).String())
		for _, k := range evalset.Attackers {
			cells = append(cells, tally(r.outcomes, th, ofKind(k)).String())
		}
		t.rows = append(t.rows, cells)
	}
	return t
}

// calibration checks the score's anchors: familiar logins score under
// familiarBelow, logins from a new country on a new device at least
// novelAtLeast.
func (r runReport) calibration() table {
	t := table{title: titleCalibration, head: []string{"logins", "count", "target", "met by", "median score"}}
	add := func(name string, keep func(outcome) bool, target string, ok func(int) bool) {
		var scores []int
		met := 0
		for _, o := range r.outcomes {
			if keep(o) {
				scores = append(scores, o.Score)
				if ok(o.Score) {
					met++
				}
			}
		}
		if len(scores) == 0 {
			t.rows = append(t.rows, []string{name, "0", target, "–", "–"})
			return
		}
		slices.Sort(scores)
		t.rows = append(t.rows, []string{name, fmt.Sprint(len(scores)), target,
			pct(float64(met) / float64(len(scores))), fmt.Sprint(scores[len(scores)/2])})
	}
	familiar, novel := "returning user, known IP, browser and device", "new country and new device"
	if r.noDevice {
		familiar, novel = "returning user, known IP and browser", "new country and new browser"
	}
	add(familiar, func(o outcome) bool { return o.Kind == evalset.Legit && o.Familiar },
		fmt.Sprintf("< %d", familiarBelow), func(s int) bool { return s < familiarBelow })
	add(novel+", legitimate", func(o outcome) bool { return o.Kind == evalset.Legit && o.Novel },
		fmt.Sprintf("≥ %d", novelAtLeast), func(s int) bool { return s >= novelAtLeast })
	add(novel+", attackers", func(o outcome) bool { return o.Kind != evalset.Legit && o.Novel },
		fmt.Sprintf("≥ %d", novelAtLeast), func(s int) bool { return s >= novelAtLeast })
	return t
}

// verdict compares the run at the blocking threshold with the reference
// curve's points.
func (r runReport) verdict() string {
	var parts []string
	beats := true
	for _, p := range referenceCurve {
		s := tally(r.outcomes, r.blockingTh, legitWith(p.lo, p.hi))
		if s.n == 0 || s.share() > p.refUpper {
			beats = false
		}
		parts = append(parts, fmt.Sprintf("%s: %s vs %s", p.name, s, p.ref))
	}
	word := "beats"
	if !beats {
		word = "does NOT beat"
	}
	return fmt.Sprintf("Verdict: at %.1f %% of naive and targeted attackers blocked, this %s Wiefling et al.'s curve (%s).",
		100*blockTarget, word, strings.Join(parts, "; "))
}
