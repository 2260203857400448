package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/message"
)

// overviewData is the overview page: its charts and a few totals.
type overviewData struct {
	Charts                  []chart
	Logins, Challenged      int64
	SharePct                string
	SMSThisHour, SMSPerHour int64
	FromDay, ToDay          string
	SignalsEmpty, NoCountry bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s session) {
	ov, err := c.eng.Policies.Overview(r.Context(), s.Tenant)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d := overviewData{SMSThisHour: ov.SMSThisHour, SMSPerHour: int64(ov.SMSPerHour),
		FromDay: ov.Days[0].Day, ToDay: ov.Days[len(ov.Days)-1].Day, SignalsEmpty: len(ov.Signals) == 0, NoCountry: len(ov.Countries) == 0}
	for _, day := range ov.Days {
		d.Logins += day.Logins
		d.Challenged += day.Challenged
	}
	d.SharePct = percent(d.Challenged, d.Logins)
	decisions := []series{{"Allowed", "s1"}, {"Challenged", "s2"}, {"Denied", "s3"}, {"Asked to enrol", "s4"}}
	d.Charts = append(d.Charts,
		dayBars("logins", "Logins per day by decision", ov.Days, decisions, func(x engine.DayStats, i int) int64 {
			return [...]int64{x.Allowed, x.Challenged, x.Denied, x.Enrol}[i]
		}, 0, false),
		dayBars("share", "Share of logins challenged (%)", ov.Days, []series{{"Challenged %", "s2"}}, func(x engine.DayStats, _ int) int64 {
			if x.Logins == 0 {
				return 0
			}
			return (100*x.Challenged + x.Logins/2) / x.Logins
		}, 100, false),
	)
	if !d.SignalsEmpty {
		d.Charts = append(d.Charts, rankBars("signals", "Top risk signals", "Signal", ov.Signals, signalWords))
	}
	if !d.NoCountry {
		d.Charts = append(d.Charts, rankBars("countries", "Countries of logins", "Country", ov.Countries, func(s string) string { return s }))
	}
	d.Charts = append(d.Charts,
		dayBars("sms", "SMS sent per day against the cap", ov.Days, []series{{"SMS sent", "s1"}}, func(x engine.DayStats, _ int) int64 {
			return x.SMSSent
		}, 24*int64(ov.SMSPerHour), true),
		dayBars("failures", "Delivery failures per day", ov.Days, []series{{"SMS failed", "s3"}, {"E-mails failed", "s2"}}, func(x engine.DayStats, i int) int64 {
			return [...]int64{x.SMSFailed, x.MailErr}[i]
		}, 0, false),
	)
	v := c.base(r, s, "overview", "Overview")
	v.Data = d
	c.render(w, http.StatusOK, "overview", v)
}

func percent(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + "%"
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, s session) {
	p, err := c.eng.Policies.GetPolicy(r.Context(), s.Tenant)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	v := c.base(r, s, "policy", "Policy")
	v.Data = formOf(p)
	c.render(w, http.StatusOK, "policy", v)
}

// savePolicy saves the whole form; the engine's validation error is shown
// beside the field it names, with the values as typed.
func (c *Console) savePolicy(w http.ResponseWriter, r *http.Request, s session) {
	f := formFrom(r.PostForm)
	v := c.base(r, s, "policy", "Policy")
	// The form sends every field: saved over a change made since the page
	// was opened, it would undo it (another manager's, or the SMS kill
	// switch pulled in an incident). Refused, the page shows the policy as
	// it now is.
	cur, err := c.eng.Policies.GetPolicy(r.Context(), s.Tenant)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if !equal(f.Version, policyVersion(cur)) {
		v.Error = "The policy was changed since you opened this page (by another manager, stepupctl or the API), so your changes were not saved. Below is the policy as it is now: make your changes again and save."
		v.Data = formOf(cur)
		c.render(w, http.StatusConflict, "policy", v)
		return
	}
	u, err := f.update()
	if err == nil {
		var p engine.PolicyView
		p, err = c.eng.Policies.PutPolicy(r.Context(), s.Tenant, u, c.actor(r, s))
		if err == nil {
			v.Flash = "Policy saved"
			v.Data = formOf(p)
			c.render(w, http.StatusOK, "policy", v)
			return
		}
	}
	e := engine.AsError(err)
	field, _ := e.Meta["field"].(string)
	if e.Kind == engine.KindInternal || field == "" {
		if e.Kind == engine.KindInternal {
			c.internal(w, r, err)
			return
		}
		v.Error = "The policy was not saved: " + e.Msg
		v.Data = f
		c.render(w, http.StatusUnprocessableEntity, "policy", v)
		return
	}
	f.Errors = map[string]string{formField(field): e.Msg}
	v.Error = "The policy was not saved: correct the field marked below."
	v.Data = f
	c.render(w, http.StatusUnprocessableEntity, "policy", v)
}

// userData is the users page.
type userData struct {
	Query    string
	Found    bool
	User     engine.UserView
	Devices  []engine.DeviceView
	Logins   []engine.LoginView
	NotFound bool
	Reason   string
	Errors   map[string]string
	// AllGroup and AllReason are the "Turn 2FA off for everyone" form's
	// values as typed (its errors are under all_group and all_reason).
	AllGroup, AllReason string
}

// badUserID is the words for a user ID the engine refuses (ValidUserID).
const badUserID = "A user ID is 1-128 printable characters."

// recentLogins is how many of a user's logins the users page shows.
const recentLogins = 10

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, s session) {
	v := c.base(r, s, "users", "Users")
	d := userData{Query: strings.TrimSpace(r.URL.Query().Get("user"))}
	status := http.StatusOK
	if d.Query != "" {
		status = c.lookUp(r, s, &d)
		if status == http.StatusInternalServerError {
			c.internal(w, r, errors.New("console: user lookup failed"))
			return
		}
		if status == http.StatusBadRequest {
			d.Errors = map[string]string{"user": badUserID}
		}
	}
	v.Data = d
	c.render(w, status, "users", v)
}

// lookUp fills d with the user d.Query names; it returns the page's status.
func (c *Console) lookUp(r *http.Request, s session, d *userData) int {
	u := engine.UserRef{Tenant: s.Tenant, User: d.Query}
	uv, err := c.eng.Lifecycle.GetUser(r.Context(), u)
	switch engine.AsError(err).Kind {
	case engine.KindNotFound:
		d.NotFound = true
		return http.StatusNotFound
	case engine.KindInvalid:
		return http.StatusBadRequest
	}
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: get user", "err", err)
		return http.StatusInternalServerError
	}
	d.Found, d.User = true, uv
	if d.Devices, err = c.eng.Lifecycle.Devices(r.Context(), u); err != nil && engine.AsError(err).Kind != engine.KindNotFound {
		c.log.ErrorContext(r.Context(), "console: devices", "err", err)
		return http.StatusInternalServerError
	}
	if d.Logins, err = c.eng.Lifecycle.RecentLogins(r.Context(), u, recentLogins); err != nil {
		c.log.ErrorContext(r.Context(), "console: recent logins", "err", err)
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// resetUser turns a user's 2FA off, with the manager's reason.
func (c *Console) resetUser(w http.ResponseWriter, r *http.Request, s session) {
	v := c.base(r, s, "users", "Users")
	d := userData{Query: strings.TrimSpace(r.PostFormValue("user")), Reason: r.PostFormValue("reason")}
	_, err := c.eng.Policies.AdminReset(r.Context(), engine.UserRef{Tenant: s.Tenant, User: d.Query}, oneLine(d.Reason), c.actor(r, s))
	status, e, ok := c.refused(w, r, err)
	if !ok {
		return
	}
	if err != nil {
		if f, _ := e.Meta["field"].(string); f == "reason" {
			d.Errors = map[string]string{"reason": reasonError(err, "Say why you reset this user's 2FA: the reason is audited and mailed.")}
		} else {
			v.Error = "2FA was not reset: " + e.Msg
		}
	} else {
		v.Flash = "2FA was reset"
		d.Reason = ""
	}
	if st := c.lookUp(r, s, &d); st == http.StatusInternalServerError {
		c.internal(w, r, errors.New("console: user lookup failed"))
		return
	}
	v.Data = d
	c.render(w, status, "users", v)
}

// disableAll turns 2FA off for every enrolled user of the tenant, or of
// one group, with the manager's reason.
func (c *Console) disableAll(w http.ResponseWriter, r *http.Request, s session) {
	v := c.base(r, s, "users", "Users")
	d := userData{AllGroup: strings.TrimSpace(r.PostFormValue("group")), AllReason: r.PostFormValue("reason")}
	res, err := c.eng.Policies.DisableAll(r.Context(), s.Tenant, oneLine(d.AllReason), d.AllGroup, c.actor(r, s))
	status, e, ok := c.refused(w, r, err)
	if !ok {
		return
	}
	if err != nil {
		switch f, _ := e.Meta["field"].(string); f {
		case "reason":
			d.Errors = map[string]string{"all_reason": reasonError(err, "Say why you turn 2FA off: the reason is audited and mailed.")}
		case "group":
			d.Errors = map[string]string{"all_group": "The policy has no group of that name."}
		default:
			v.Error = "2FA was not turned off: " + e.Msg
		}
	} else {
		v.Flash = fmt.Sprintf("2FA was turned off for %d user%s.", res.Reset, map[bool]string{true: "", false: "s"}[res.Reset == 1])
		d.AllGroup, d.AllReason = "", ""
	}
	v.Data = d
	c.render(w, status, "users", v)
}

// refused is the status of a form's answer after the engine's err: 200
// without one, 422 with a refusal (e, for its field and words); ok is
// false when err was internal, which it has answered.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, err error) (status int, e *engine.Error, ok bool) {
	if err == nil {
		return http.StatusOK, nil, true
	}
	if e = engine.AsError(err); e.Kind == engine.KindInternal {
		c.internal(w, r, err)
		return 0, nil, false
	}
	return http.StatusUnprocessableEntity, e, true
}

// oneLine folds the lines of a reason typed in its box into one: the
// engine keeps a reason to one line (it is quoted in mails and the audit
// log), and a manager pressing Enter in the box means a space.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// reasonError is the words shown beside a reason the engine refused:
// missing, or the engine's own (too long, unprintable).
func reasonError(err error, missing string) string {
	if errors.Is(err, engine.ErrReasonRequired) {
		return missing
	}
	return "The reason must be " + strings.TrimPrefix(engine.AsError(err).Msg, "reason: ") + "."
}

// auditData is the audit log page.
type auditData struct {
	User, Type, Since string
	Types             []typeOption
	Events            []engine.Event
	Next              string // the cursor of the next (older) page
	Newest            string // the newest event's time, where the live tail starts
	TailQuery         string // the filters, as the live tail's query
	Errors            map[string]string
}

type typeOption struct {
	Value, Label string
	Selected     bool
}

// auditPageSize is how many events a page of the audit log shows.
const auditPageSize = 50

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s session) {
	v := c.base(r, s, "audit", "Audit log")
	d, q, err := auditQuery(r.URL.Query())
	if err == nil {
		q.Limit = auditPageSize
		var next string
		d.Events, next, err = c.eng.Policies.Events(r.Context(), s.Tenant, q)
		d.Next = next
	}
	status := http.StatusOK
	if e := engine.AsError(err); err != nil {
		if e.Kind == engine.KindInternal {
			c.internal(w, r, err)
			return
		}
		switch f, _ := e.Meta["field"].(string); f {
		case "user_id":
			d.Errors = map[string]string{"user": badUserID}
		case "since":
			d.Errors = map[string]string{f: e.Msg}
		default: // a link's own part (the cursor): no field to show it by
			v.Error = "The audit log could not be read: " + e.Msg
		}
		status = http.StatusBadRequest
	}
	if len(d.Events) > 0 && r.URL.Query().Get("cursor") == "" {
		d.Newest = d.Events[0].At.UTC().Format(time.RFC3339Nano)
	}
	v.Data = d
	c.render(w, status, "audit", v)
}

// auditQuery reads the audit log's filters.
func auditQuery(q url.Values) (auditData, engine.EventQuery, error) {
	d := auditData{User: strings.TrimSpace(q.Get("user")), Type: q.Get("type"), Since: q.Get("since")}
	d.TailQuery = url.Values{"user": {d.User}, "type": {d.Type}}.Encode()
	for _, t := range eventTypes() {
		d.Types = append(d.Types, typeOption{Value: string(t), Label: eventWords(t), Selected: string(t) == d.Type})
	}
	eq := engine.EventQuery{User: d.User, Type: message.EventType(d.Type), Cursor: q.Get("cursor")}
	if d.Since != "" {
		// datetime-local sends 2006-01-02T15:04, read as UTC like the page's times.
		t, err := time.Parse("2006-01-02T15:04", d.Since)
		if err != nil {
			return d, eq, engine.Invalid("since", "a date and time, e.g. 2026-01-02T15:04")
		}
		eq.Since = t
	}
	return d, eq, nil
}

// auditRows answers the live tail: the rows of events after the time
// `after`, newest first.
func (c *Console) auditRows(w http.ResponseWriter, r *http.Request, s session) {
	d, q, err := auditQuery(r.URL.Query())
	after, perr := time.Parse(time.RFC3339Nano, r.URL.Query().Get("after"))
	if err != nil || perr != nil {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	q.Cursor, q.Since, q.Limit = "", after, auditPageSize
	evs, _, err := c.eng.Policies.Events(r.Context(), s.Tenant, q)
	if err != nil {
		http.Error(w, "bad query", engineStatus(err))
		return
	}
	for _, ev := range evs {
		if ev.At.After(after) {
			d.Events = append(d.Events, ev)
		}
	}
	c.fragment(w, "audit", "rows", d.Events)
}

func engineStatus(err error) int {
	if engine.AsError(err).Kind == engine.KindInternal {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// operationsData is the operations page.
type operationsData struct {
	SMSDisabled             bool
	DeadLetters             []DeadLetter
	DeadCount               int
	SMSThisHour, SMSPerHour int64
	CapPct                  string
	Week                    []engine.DayStats // the last 7 days, newest first
	SMSFailedWeek, MailWeek int64
}

// deadLetterRows bounds the dead letters listed.
const deadLetterRows = 20

func (c *Console) operationsPage(w http.ResponseWriter, r *http.Request, s session) {
	v := c.base(r, s, "operations", "Operations")
	if err := c.operations(r, s, &v); err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "operations", v)
}

func (c *Console) operations(r *http.Request, s session, v *view) error {
	p, err := c.eng.Policies.GetPolicy(r.Context(), s.Tenant)
	if err != nil {
		return err
	}
	ov, err := c.eng.Policies.Overview(r.Context(), s.Tenant)
	if err != nil {
		return err
	}
	d := operationsData{SMSDisabled: p.SMSDisabled, SMSThisHour: ov.SMSThisHour, SMSPerHour: int64(ov.SMSPerHour)}
	d.CapPct = percent(d.SMSThisHour, d.SMSPerHour)
	for i := len(ov.Days) - 1; i >= 0 && len(d.Week) < 7; i-- {
		d.Week = append(d.Week, ov.Days[i])
		d.SMSFailedWeek += ov.Days[i].SMSFailed
		d.MailWeek += ov.Days[i].MailErr
	}
	if c.opt.DeadLetters != nil {
		dl, err := c.opt.DeadLetters(r.Context(), s.Tenant)
		if err != nil {
			return err
		}
		d.DeadCount = len(dl)
		d.DeadLetters = dl[:min(len(dl), deadLetterRows)]
	}
	v.Data = d
	return nil
}

// setSMS flips the tenant's SMS kill switch.
func (c *Console) setSMS(w http.ResponseWriter, r *http.Request, s session) {
	off := r.PostFormValue("sms") == "off"
	_, err := c.eng.Policies.PutPolicy(r.Context(), s.Tenant, engine.PolicyUpdate{Policy: engine.PolicyPatch{SMSDisabled: &off}}, c.actor(r, s))
	if err != nil {
		c.internal(w, r, err)
		return
	}
	v := c.base(r, s, "operations", "Operations")
	v.Flash = map[bool]string{true: "SMS switched off: no text messages are sent.", false: "SMS switched on."}[off]
	if err := c.operations(r, s, &v); err != nil {
		c.internal(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "operations", v)
}
