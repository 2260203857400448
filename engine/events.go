package engine

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/internal/uafamily"
	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
)

// Actor is who asked for a change and from where.
type Actor struct {
	Kind      message.ActorKind
	IP        string // the end user's IP as the host app reports it, or the caller's
	UserAgent string
	// Label names the manager key a change was made with (Principal.Label),
	// recorded on the audit event.
	Label string
}

// event builds an audit event for a user (user may be "").
func (e *core) event(tenant, user string, typ message.EventType, a Actor) Event {
	ev := Event{Tenant: tenant, User: user, Type: typ, At: e.now(), Actor: a.Kind, ActorLabel: a.Label, Details: map[string]string{}}
	if ev.Actor == "" {
		ev.Actor = message.ActorUser
	}
	if ip, err := netip.ParseAddr(a.IP); err == nil {
		ev.IP = maskIP(ip)
		if e.opt.Geo != nil {
			ev.Country = e.opt.Geo.Lookup(ip).Country
		}
	}
	if a.UserAgent != "" {
		ev.Browser, ev.OS = uaLabels(risk.ParseUserAgent(a.UserAgent))
	}
	return ev
}

// uaLabels names a parsed user agent's browser and OS in the safe
// vocabulary: the parser's families are regex captures that can echo the
// request's text into a mail, so only known families pass.
func uaLabels(ua risk.UserAgent) (browser, os string) {
	return uafamily.Browser(ua.BrowserFamily, ua.BrowserMajor), uafamily.OS(ua.OSFamily, ua.OSMajor)
}

// deviceInfo describes a login's client in the safe vocabulary.
func deviceInfo(ua risk.UserAgent, country string) DeviceInfo {
	b, o := uaLabels(ua)
	return DeviceInfo{Browser: b, OS: o, Country: country}
}

// maskIP keeps the network, never the host: 203.0.113.x, 2001:db8:1:2::x.
func maskIP(ip netip.Addr) string {
	if ip.Is4() || ip.Is4In6() {
		b := ip.Unmap().As4()
		return fmt.Sprintf("%d.%d.%d.x", b[0], b[1], b[2])
	}
	p, _ := ip.Prefix(64)
	return strings.TrimSuffix(p.Addr().String(), "::") + "::x"
}

func (e *core) job(kind message.Kind, challenge string, payload any) Job {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err) // payloads are plain structs
	}
	return Job{Kind: kind, Challenge: challenge, Payload: e.queueBox.Seal(b)}
}

// userNotice queues the user's mail about ev, when the user has an address.
// It records on the event whether a mail was sent.
func (e *core) userNotice(t Tenant, a Account, ev *Event) []Job {
	if a.Profile.Email == "" {
		ev.Details["mail"] = "no_address"
		return nil
	}
	ev.Details["mail"] = string(message.DeliveryQueued)
	j := e.job(message.KindNotify, "", message.Notice{
		Audience: message.AudienceUser, Event: *ev, To: []string{a.Profile.Email}, Name: a.Profile.DisplayName,
		Locale: a.Profile.Locale, TimeZone: a.Profile.TimeZone, SenderName: t.SenderName,
		ReportURL: e.reportURL(ev.Tenant, ev.User, ev.At),
	})
	j.User = e.userSubject(UserRef{Tenant: ev.Tenant, User: ev.User})
	return []Job{j}
}

// managerJobs queues the managers' mail about ev: one job per manager, so
// a refused address never holds back (or, on retry, duplicates) the others'.
func (e *core) managerJobs(t Tenant, managers []string, ev Event) []Job {
	jobs := make([]Job, 0, len(managers))
	for _, to := range managers {
		jobs = append(jobs, e.job(message.KindNotify, "", message.Notice{Audience: message.AudienceManagers, Event: ev, To: []string{to}, SenderName: t.SenderName}))
	}
	return jobs
}

// decodeJob opens a job payload.
func (e *core) decodeJob(sealed []byte, v any) error {
	b, err := e.queueBox.Open(sealed)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
