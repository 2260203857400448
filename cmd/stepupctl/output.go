package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// recorder keeps the body of the last answer, so -o json prints exactly
// the JSON the API sent while the commands themselves use the typed
// client.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	last []byte
}

// maxRecorded bounds what is kept of one answer (the API's largest, a page
// of 1000 audit events, is far smaller).
const maxRecorded = 32 << 20

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRecorded))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.last = b
	r.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res, nil
}

// lastBody returns the last answer's body.
func (r *recorder) lastBody() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// json reports whether -o json was asked for.
func (c *cli) json() bool { return c.output == "json" }

// printRaw prints the last answer's JSON, indented; nothing for an empty
// answer (204).
func (c *cli) printRaw() error {
	raw := bytes.TrimSpace(c.rec.lastBody())
	if len(raw) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// table prints a header and rows, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// kv prints name/value pairs as two aligned columns.
func kv(w io.Writer, pairs [][2]string) error {
	tw := newTabWriter(w)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}

// when formats a time for tables, in UTC; "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// list formats a list field; empty says what an empty list means.
func list[T ~string](xs []T, empty string) string {
	if len(xs) == 0 {
		return empty
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details formats an event's details as sorted key=value pairs on one
// line, quoting values that hold spaces or quotes.
func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		// A policy change carries the whole policy before and after for
		// the JSON output; its "changes" says what the table needs.
		if _, ok := d["changes"]; ok && (k == "before" || k == "after") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := strings.ReplaceAll(strings.TrimSpace(d[k]), "\n", "; ")
		switch {
		case !strings.ContainsAny(v, " \t\"'"):
		case !strings.Contains(v, `"`):
			v = `"` + v + `"`
		case !strings.Contains(v, "'"):
			v = "'" + v + "'" // JSON inside (a policy change): keep it readable
		default:
			v = strconv.Quote(v)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, " ")
}
