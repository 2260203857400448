package console

import (
	"fmt"
	"strconv"

	"github.com/stepup-auth/stepup/engine"
)

// Charts are drawn on the server as inline SVG: no script, no library.
// Every chart comes with a table of its counts for screen readers.

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600.0, 180.0
	padL, padB     = 56.0, 22.0
	barRowH        = 22.0
)

// series is one colour of a chart, with its class in the style sheet.
type series struct {
	Name, Class string
}

// rect is one bar (or part of a stacked bar).
type rect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// axisLabel is a text label placed on the chart.
type axisLabel struct {
	X, Y   float64
	Text   string
	Anchor string
}

// chart is a rendered chart: its bars, labels, legend and an optional
// reference line (the SMS cap).
type chart struct {
	ID, Title, Desc string
	W, H            float64
	Bars            []rect
	Labels          []axisLabel
	Legend          []series
	Line            *axisLabel // a horizontal line at Y with its text
	Head            []string   // the table's column heads
	Rows            [][]string // the table's rows
}

// dayBars stacks one value per series for each day, oldest left.
// ceiling raises the scale to at least it; a positive capLine draws it as
// a line (the SMS cap).
func dayBars(id, title string, days []engine.DayStats, ss []series, val func(engine.DayStats, int) int64, ceiling int64, capLine bool) chart {
	c := chart{ID: id, Title: title, W: chartW, H: chartH, Legend: ss, Head: []string{"Day"}}
	for _, s := range ss {
		c.Head = append(c.Head, s.Name)
	}
	top := ceiling
	for _, d := range days {
		var sum int64
		for i := range ss {
			sum += val(d, i)
		}
		top = max(top, sum)
	}
	top = max(top, 1)
	plotH := chartH - padB - 8
	slot := (chartW - padL) / float64(max(len(days), 1))
	for i, d := range days {
		x := padL + float64(i)*slot + 1
		y := chartH - padB
		row := []string{d.Day}
		for j, s := range ss {
			n := val(d, j)
			row = append(row, strconv.FormatInt(n, 10))
			if n == 0 {
				continue
			}
			h := plotH * float64(n) / float64(top)
			y -= h
			c.Bars = append(c.Bars, rect{X: x, Y: y, W: slot - 2, H: h, Class: s.Class, Title: fmt.Sprintf("%s: %s %d", d.Day, s.Name, n)})
		}
		c.Rows = append(c.Rows, row)
		if (i%7 == 0 && i < len(days)-4) || i == len(days)-1 {
			c.Labels = append(c.Labels, axisLabel{X: x + slot/2, Y: chartH - 6, Text: d.Day[5:], Anchor: "middle"})
		}
	}
	c.Labels = append(c.Labels, axisLabel{X: padL - 6, Y: 14, Text: strconv.FormatInt(top, 10), Anchor: "end"},
		axisLabel{X: padL - 6, Y: chartH - padB, Text: "0", Anchor: "end"})
	if capLine && ceiling > 0 {
		y := chartH - padB - plotH*float64(ceiling)/float64(top)
		c.Line = &axisLabel{X: chartW, Y: y, Text: "cap " + strconv.FormatInt(ceiling, 10) + " a day", Anchor: "end"}
	}
	return c
}

// rankBars draws named counts as horizontal bars, most first.
func rankBars(id, title, what string, ts []engine.Tally, name func(string) string) chart {
	c := chart{ID: id, Title: title, W: chartW, H: max(barRowH*float64(len(ts))+4, barRowH), Head: []string{what, "Logins"}}
	var top int64 = 1
	for _, t := range ts {
		top = max(top, t.Count)
	}
	const labelW = 230.0
	for i, t := range ts {
		y := float64(i)*barRowH + 2
		w := (chartW - labelW - 50) * float64(t.Count) / float64(top)
		c.Bars = append(c.Bars, rect{X: labelW, Y: y, W: max(w, 1), H: barRowH - 6, Class: "s1", Title: fmt.Sprintf("%s: %d", name(t.Name), t.Count)})
		c.Labels = append(c.Labels, axisLabel{X: labelW - 8, Y: y + barRowH - 10, Text: name(t.Name), Anchor: "end"},
			axisLabel{X: labelW + w + 6, Y: y + barRowH - 10, Text: strconv.FormatInt(t.Count, 10), Anchor: "start"})
		c.Rows = append(c.Rows, []string{name(t.Name), strconv.FormatInt(t.Count, 10)})
	}
	return c
}
