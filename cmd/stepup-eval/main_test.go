package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/internal/evalset"
)

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a set through the engine")
	}
	c, err := parseFlags([]string{"-users", "50", "-seed", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evaluate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.runs) != len(variants) {
		t.Fatalf("%d runs, want %d", len(rep.runs), len(variants))
	}
	for _, run := range rep.runs {
		if run.mismatches != 0 {
			t.Errorf("%s: %d engine decisions the threshold sweep does not reproduce", run.title, run.mismatches)
		}
		naive := tally(run.outcomes, run.defaultTh, ofKind(evalset.Naive))
		returning := tally(run.outcomes, run.defaultTh, legitWith(1, 1<<30))
		if naive.n == 0 || returning.n == 0 {
			t.Fatalf("%s: %d naive attempts, %d returning logins", run.title, naive.n, returning.n)
		}
		if naive.share() <= returning.share() {
			t.Errorf("%s: naive attackers blocked %s, returning users challenged %s; want more blocked than challenged",
				run.title, naive, returning)
		}
	}

	for _, markdown := range []bool{false, true} {
		var buf bytes.Buffer
		rep.write(&buf, markdown)
		out := buf.String()
		for _, v := range variants {
			if strings.Count(out, v.title) != 1 {
				t.Errorf("markdown=%v: variant %q printed %d times", markdown, v.title, strings.Count(out, v.title))
			}
		}
		for _, title := range []string{titleLegit, titleAttackers, titleContexts, titleSweep, titleCalibration, "Verdict:"} {
			if n := strings.Count(out, title); n != len(variants) {
				t.Errorf("markdown=%v: %q appears %d times, want %d", markdown, title, n, len(variants))
			}
		}
		for _, row := range []string{"0 (cold start)", "1–4", "5–12", "13–40", "> 40", "naive", "vpn", "targeted", "~50 %", "~25 %", "5–7 %"} {
			if !strings.Contains(out, row) {
				t.Errorf("markdown=%v: no %q row", markdown, row)
			}
		}
		if markdown && !strings.Contains(out, "|---|") {
			t.Errorf("markdown output has no table:\n%s", out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    config
		wantErr string
	}{
		{nil, config{seed: 1, users: 1500, days: 180, attacks: 1}, ""},
		{[]string{"-seed", "9", "-users", "10", "-days", "30", "-asn", "-markdown"}, config{seed: 9, users: 10, days: 30, attacks: 1, asn: true, markdown: true}, ""},
		{[]string{"-users", "0"}, config{}, "must be positive"},
		{[]string{"extra"}, config{}, "unexpected arguments"},
		{[]string{"-nope"}, config{}, "not defined"},
	}
	for _, tt := range tests {
		got, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseFlags(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestBlockingThreshold(t *testing.T) {
	// Scores of 100 attempts: 1, 2, …, 100.
	var outs []outcome
	for s := 1; s <= 100; s++ {
		outs = append(outs, outcome{Kind: evalset.Naive, Past: 5, Score: s}, outcome{Kind: evalset.Targeted, Past: 5, Score: s / 2})
	}
	tests := []struct {
		target float64
		kinds  []evalset.Kind
		want   int
	}{
		{1, []evalset.Kind{evalset.Naive}, 1},       // everything: at most the lowest score
		{0.9, []evalset.Kind{evalset.Naive}, 11},    // 90 of 100 have scores ≥ 11
		{0.5, []evalset.Kind{evalset.Naive}, 51},    // 50 have ≥ 51
		{0.5, []evalset.Kind{evalset.Targeted}, 25}, // s/2 ≥ 25 for s ≥ 50: 51 attempts
		{0.5, []evalset.Kind{evalset.Naive, evalset.Targeted}, 25},
	}
	for _, tt := range tests {
		if got := blockingThreshold(outs, tt.target, tt.kinds...); got != tt.want {
			t.Errorf("blockingThreshold(%v, %v) = %d, want %d", tt.target, tt.kinds, got, tt.want)
		}
	}
}

func TestChallenged(t *testing.T) {
	tests := []struct {
		o    outcome
		th   int
		want bool
	}{
		{outcome{Past: 0, Score: 0}, 50, true}, // cold start
		{outcome{Past: 3, Score: 49}, 50, false},
		{outcome{Past: 3, Score: 50}, 50, true},
		{outcome{Past: 3, Score: 100}, 101, false},
	}
	for _, tt := range tests {
		if got := tt.o.challenged(tt.th); got != tt.want {
			t.Errorf("%+v.challenged(%d) = %v, want %v", tt.o, tt.th, got, tt.want)
		}
	}
}

func TestTableWrite(t *testing.T) {
	tb := table{title: "T", head: []string{"a", "b"}, rows: [][]string{{"x|y", "1 %"}}}
	tests := []struct {
		markdown bool
		want     string
	}{
		{true, "T\n\n| a | b |\n|---|---:|\n| x\\|y | 1 % |\n\n"},
		{false, "T\n    a    b\n  x|y  1 %\n\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		tb.write(&buf, tt.markdown)
		if buf.String() != tt.want {
			t.Errorf("markdown=%v:\n%q\nwant\n%q", tt.markdown, buf.String(), tt.want)
		}
	}
}

// TestWhatIfOnly: -whatif-only prints the what-if tables for both runs,
// one row per variant, and the first variant (the engine's own options)
// scores exactly as risk.Score does with the default options, without a
// replay.
func TestWhatIfOnly(t *testing.T) {
	c, err := parseFlags([]string{"-users", "40", "-seed", "3", "-whatif-only"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evaluate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range rep.runs {
		if run.outcomes != nil {
			t.Errorf("%s: replayed through the engine under -whatif-only", run.title)
		}
		if len(run.shadow) == 0 {
			t.Fatalf("%s: no shadow scores", run.title)
		}
	}
	var buf bytes.Buffer
	rep.write(&buf, false)
	out := buf.String()
	if n := strings.Count(out, titleWhatIf); n != 2*len(variants) {
		t.Errorf("%q appears %d times, want %d", titleWhatIf, n, 2*len(variants))
	}
	for _, v := range scorerVariants {
		if n := strings.Count(out, v.name); n != 2*len(variants) {
			t.Errorf("variant %q printed %d times, want %d", v.name, n, 2*len(variants))
		}
	}
	if strings.Contains(out, titleLegit) {
		t.Errorf("-whatif-only printed the replay's tables")
	}
	// Variants differ from the engine's scores somewhere, or they show
	// nothing.
	for i := 1; i < len(scorerVariants); i++ {
		same := true
		for _, l := range rep.runs[0].shadow {
			if l.logS[i] != l.logS[0] {
				same = false
				break
			}
		}
		if same {
			t.Errorf("variant %q scores every login exactly as the engine", scorerVariants[i].name)
		}
	}
}
