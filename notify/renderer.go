package notify

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/stepup-auth/stepup/internal/uafamily"

	// Embedded zone data, so a recipient's local time renders the same in a
	// minimal container image without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/stepup-auth/stepup/message"
)

// Clock tells the time. Tests pass a fixed one.
type Clock interface {
	Now() time.Time
}

// Options configure a Renderer. The zero value is usable.
type Options struct {
	// PublicURL is the base URL of the stepup API, used in managers' mails to
	// point at the audit log. Empty leaves the link out.
	PublicURL string
	// Clock stands in for an event without a time and dates the digest; nil
	// means the system clock.
	Clock Clock
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Renderer turns events into mails. It is safe for concurrent use.
type Renderer struct {
	publicURL string
	clock     Clock
	locales   map[string]*localeTemplates
}

// NewRenderer parses the embedded templates. An error means a template is
// broken or the English set is incomplete.
func NewRenderer(opts Options) (*Renderer, error) {
	locales, err := loadTemplates(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	clock := opts.Clock
	if clock == nil {
		clock = systemClock{}
	}
	return &Renderer{
		publicURL: strings.TrimRight(opts.PublicURL, "/"),
		clock:     clock,
		locales:   locales,
	}, nil
}

// Locales returns the locales that have templates, such as "en".
func (r *Renderer) Locales() []string {
	out := make([]string, 0, len(r.locales))
	for l := range r.locales {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// locale picks the templates for a BCP 47 tag: the exact locale, then its
// language, then English.
func (r *Renderer) locale(tag string) *localeTemplates {
	tag = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	for tag != "" {
		if lt, ok := r.locales[tag]; ok {
			return lt
		}
		i := strings.LastIndexByte(tag, '-')
		if i < 0 {
			break
		}
		tag = tag[:i]
	}
	return r.locales[fallbackLocale]
}

// UserMail renders the mail that tells the user ev concerns what happened to
// their account. reportURL is the signed, single-use "this wasn't me" link the
// engine built; when empty the mail gives advice without a link.
func (r *Renderer) UserMail(ev Event, to Recipient, from Sender, reportURL string) (Mail, error) {
	if !UserFacing(ev.Type) {
		return Mail{}, fmt.Errorf("notify: event type %q is not mailed to users", ev.Type)
	}
	if strings.TrimSpace(to.Email) == "" {
		return Mail{}, errors.New("notify: recipient has no e-mail address")
	}
	lt := r.locale(to.Locale)
	v := r.view(ev, from, lt)
	v.Name = cleanName(to.Name)
	v.ReportURL = reportURL
	v.ShowWhere = ev.Actor != message.ActorManager && ev.Actor != message.ActorOperator &&
		(v.Country != "" || v.Browser != "" || v.OS != "" || v.IP != "")
	if loc := location(to.TimeZone); loc != nil {
		v.HasLocal = true
		v.Local = v.At.In(loc)
		v.Zone = loc.String()
	}
	return r.render(lt, templateName(ev.Type, false), false, v, []string{to.Email}, from)
}

// ManagerMail renders the mail to a tenant's managers about an admin action,
// an alert or the daily digest. Managers' mails are in English.
func (r *Renderer) ManagerMail(ev Event, to []string, from Sender) (Mail, error) {
	if !ManagerFacing(ev.Type) {
		return Mail{}, fmt.Errorf("notify: event type %q is not mailed to managers", ev.Type)
	}
	if len(to) == 0 {
		return Mail{}, errors.New("notify: no manager addresses")
	}
	lt := r.locale(fallbackLocale)
	v := r.view(ev, from, lt)
	v.ShowWhere = v.Country != "" || v.Browser != "" || v.OS != "" || v.IP != ""
	v.Changes = policyDiff(ev.Details["before"], ev.Details["after"])
	if r.publicURL != "" {
		q := url.Values{}
		if ev.User != "" {
			q.Set("user_id", ev.User)
		}
		u := r.publicURL + "/v1/admin/events"
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		v.AuditURL = u
	}
	return r.render(lt, templateName(ev.Type, true), true, v, slices.Clone(to), from)
}

// view is what templates see.
type view struct {
	Type    message.EventType
	Lang    string
	Subject string
	Event   Event
	// D is Event.Details with phone numbers masked; never nil.
	D map[string]string
	// Name is the recipient's display name, cleaned of control characters.
	Name string
	// Org is the tenant's sender name.
	Org string

	// At is the event's time in UTC; Local the same instant in the
	// recipient's zone Zone when HasLocal.
	At       time.Time
	Local    time.Time
	HasLocal bool
	Zone     string

	// Where the change came from. IP is masked.
	ShowWhere   bool
	Country     string
	CountryCode string
	Browser     string
	OS          string
	IP          string

	ReportURL string
	AuditURL  string
	// Changes is the policy diff of policy_changed.
	Changes []change
}

func (r *Renderer) view(ev Event, from Sender, lt *localeTemplates) *view {
	at := ev.At
	if at.IsZero() {
		at = r.clock.Now()
	}
	// Templates quote details inside sentences: each stays on one line,
	// so a reason with line breaks cannot add paragraphs (a fake link) that
	// read as the mail's own.
	d := make(map[string]string, len(ev.Details))
	for k, val := range ev.Details {
		d[k] = oneLine(val)
	}
	for _, k := range []string{"phone", "old_phone", "new_phone"} {
		if val, ok := d[k]; ok {
			d[k] = maskPhone(val)
		}
	}
	org := cleanName(from.Name)
	if org == "" {
		org = cleanName(ev.Tenant)
	}
	v := &view{
		Type:        ev.Type,
		Lang:        lt.tag.String(),
		Event:       ev,
		D:           d,
		Org:         org,
		At:          at.UTC(),
		CountryCode: strings.ToUpper(strings.TrimSpace(ev.Country)),
		// Again here: events stored by older versions carry the parser's
		// captures unchecked.
		Browser: uafamily.CleanBrowser(cleanName(ev.Browser)),
		OS:      uafamily.CleanOS(cleanName(ev.OS)),
		IP:      maskIP(ev.IP),
	}
	if v.CountryCode != "" {
		v.Country = lt.country(v.CountryCode)
	}
	return v
}

func (r *Renderer) render(lt *localeTemplates, name string, managers bool, v *view, to []string, from Sender) (Mail, error) {
	mt, ok := lt.mails[name]
	if !ok {
		return Mail{}, fmt.Errorf("notify: no template %q", name)
	}
	var buf bytes.Buffer
	if err := mt.subject.Execute(&buf, v); err != nil {
		return Mail{}, fmt.Errorf("notify: rendering %s subject: %w", name, err)
	}
	// One line, whatever the data held: a subject is a header.
	v.Subject = strings.Join(strings.Fields(buf.String()), " ")

	buf.Reset()
	if err := mt.text.ExecuteTemplate(&buf, frame(managers), v); err != nil {
		return Mail{}, fmt.Errorf("notify: rendering %s text: %w", name, err)
	}
	text := tidyText(buf.String())

	buf.Reset()
	if err := mt.html.ExecuteTemplate(&buf, frame(managers), v); err != nil {
		return Mail{}, fmt.Errorf("notify: rendering %s html: %w", name, err)
	}
	return Mail{
		Mail: message.Mail{To: to, FromName: v.Org, Subject: v.Subject, Text: text,
			HTML: strings.TrimSpace(buf.String()) + "\n"},
		FromAddress: from.Address,
	}, nil
}

// tidyText trims trailing spaces, collapses runs of blank lines into one and
// ends the text with a single newline, so text templates can be laid out
// for reading rather than for their whitespace.
func tidyText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	out := make([]string, 0, len(lines))
	blank := true // drops leading blank lines
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n") + "\n"
}

// cleanName makes a display name safe for a single line: control characters
// become spaces, runs of space collapse, and it is cut at 100 runes.
func cleanName(s string) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "…"
	}
	return s
}

// oneLine turns control characters into spaces and collapses runs of
// space, line and paragraph separators included.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// location loads an IANA zone, or returns nil for an empty, invalid or UTC
// zone (UTC is shown anyway).
func location(name string) *time.Location {
	name = strings.TrimSpace(name)
	switch name {
	case "", "Local", "UTC", "Etc/UTC":
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}
