package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/stepup-auth/stepup/client"
)

func eventsCmd() command {
	return command{
		path:    "events",
		flags:   "[--user ID] [--type T] [--since T] [--limit N] [-f]",
		summary: "read the tenant's audit log, newest first; -f follows it",
		help: `Without -f, prints the newest events (at most --limit), newest first; when
more match, the cursor of the next page is printed on stderr.

With -f, prints the newest --limit events oldest first, then every new event
as it is recorded (polling every --interval) until interrupted (Ctrl-C). With
-o json, -f prints one JSON object per line.

Event types include sms_enrolled, totp_enabled, email_factor_enabled,
2fa_disabled, phone_changed, email_changed, backup_codes_regenerated, backup_code_used,
devices_forgotten, admin_reset, tenant_mode_off, login_denied, login_monitored, login_reported,
policy_changed, report_received, user_erased, history_imported,
console_signed_in, console_signed_out and the
managers' alerts (alert_sms_limit, alert_email_limit, alert_attempt_limit,
alert_kill_switch, alert_delivery_failing, alert_login_spike,
alert_login_reported).

Examples:
  stepupctl events --user alice --since 24h
  stepupctl events --type admin_reset --since 2026-01-01T00:00:00Z
  stepupctl events -f`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			user := fs.String("user", "", "only this user's events (user `id`)")
			typ := fs.String("type", "", "only events of this `type`, e.g. admin_reset")
			since := fs.String("since", "", "only events from this `time` on: RFC 3339, or an age such as 30m, 24h, 7d")
			limit := fs.Int("limit", 50, "at most `n` events (1-1000)")
			cursor := fs.String("cursor", "", "continue from this `cursor` (printed when more events match)")
			followF := fs.Bool("f", false, "follow: keep printing new events until interrupted")
			fs.BoolVar(followF, "follow", false, "same as -f")
			interval := fs.Duration("interval", 2*time.Second, "with -f, how often to poll")
			return func(ctx context.Context, c *cli, _ []string) error {
				q := client.EventQuery{UserID: *user, Type: *typ, Limit: *limit, Cursor: *cursor}
				if *limit < 1 || *limit > 1000 {
					return usagef("events", "--limit %d: want 1 to 1000", *limit)
				}
				if *since != "" {
					t, err := parseSince(*since, time.Now())
					if err != nil {
						return usagef("events", "%v", err)
					}
					q.Since = t
				}
				if *followF {
					if *cursor != "" {
						return usagef("events", "-f follows the newest events; it takes no --cursor")
					}
					if *interval < 10*time.Millisecond {
						return usagef("events", "--interval %v: too short", *interval)
					}
					return c.follow(ctx, q, *interval)
				}
				p, err := c.api.Events(ctx, q)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printRaw()
				}
				rows := make([][]string, len(p.Events))
				for i, ev := range p.Events {
					rows[i] = eventRow(ev)
				}
				if err := table(c.stdout, eventHeader, rows); err != nil {
					return err
				}
				if p.NextCursor != "" {
					fmt.Fprintf(c.stderr, "More events match: add --cursor %s\n", p.NextCursor)
				}
				return nil
			}
		},
	}
}

var eventHeader = []string{"AT", "TYPE", "USER", "ACTOR", "IP", "COUNTRY", "DETAILS"}

func eventRow(ev client.Event) []string {
	return []string{when(ev.At), ev.Type, orDash(ev.UserID), ev.Actor, orDash(ev.IP), orDash(ev.Country), details(ev.Details)}
}

// followFormat lays a followed event out in fixed columns: a stream cannot
// be aligned after the fact as text/tabwriter does for a whole table.
const followFormat = "%-20s  %-24s  %-16s  %-8s  %-13s  %-7s  %s\n"

// eventKey identifies an event for de-duplication. Ids are per log shard,
// so the rest of the event joins in.
func eventKey(ev client.Event) string {
	return ev.ID + "\x00" + ev.Type + "\x00" + ev.UserID + "\x00" + ev.At.Format(time.RFC3339Nano)
}

// pollPages bounds how far back one poll reads when events arrive faster
// than they are polled.
const pollPages = 10

// follow prints the newest q.Limit events, oldest first, then every new
// event once, polling every interval until ctx ends.
//
// A poll reads the log newest first until it meets an event the previous
// two polls read, so what is new is exactly what comes before it; this
// needs no clock agreement between this machine and the server.
func (c *cli) follow(ctx context.Context, q client.EventQuery, interval time.Duration) error {
	show := q.Limit
	q.Limit = max(show, 100)
	p, err := c.api.Events(ctx, q)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if !c.json() {
		fmt.Fprintf(c.stdout, followFormat, toAny(eventHeader)...)
	}
	cur := map[string]bool{}
	for _, ev := range p.Events {
		cur[eventKey(ev)] = true
	}
	last := map[string]bool{}
	if err := c.emit(p.Events[:min(show, len(p.Events))]); err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		known := func(k string) bool { return cur[k] || last[k] }
		fetched, fresh, err := c.poll(ctx, q, known)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *client.APIError
			if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				return err // the key was revoked, say: retrying will not help
			}
			fmt.Fprintf(c.stderr, "stepupctl: %v (retrying)\n", err)
			continue
		}
		if err := c.emit(fresh); err != nil {
			return err
		}
		last, cur = cur, fetched
	}
}

// poll reads the log newest first until it meets a known event; it
// returns the keys of everything read and the new events, newest first.
func (c *cli) poll(ctx context.Context, q client.EventQuery, known func(string) bool) (map[string]bool, []client.Event, error) {
	fetched := map[string]bool{}
	var fresh []client.Event
	q.Cursor = ""
	for range pollPages {
		p, err := c.api.Events(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		met := false
		for _, ev := range p.Events {
			k := eventKey(ev)
			if known(k) {
				met = true
			} else if !fetched[k] {
				fresh = append(fresh, ev)
			}
			fetched[k] = true
		}
		if met || p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	return fetched, fresh, nil
}

// emit prints events given newest first, oldest first.
func (c *cli) emit(evs []client.Event) error {
	evs = slices.Clone(evs)
	slices.Reverse(evs)
	for _, ev := range evs {
		if c.json() {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(c.stdout, "%s\n", b); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(c.stdout, followFormat, toAny(eventRow(ev))...); err != nil {
			return err
		}
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
