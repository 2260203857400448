package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stepup-auth/stepup/engine"
)

// policyForm is the policy page's form: the values as shown (from the
// stored policy, or as the manager typed them when the engine refused
// them) and the error of the field the engine named.
type policyForm struct {
	Mode, Enforcement, Challenge, ColdStart string
	GraceLogins, ChallengeAt, DenyAt        string
	RememberDays, SMSPerHour                string
	Channels                                []channelBox
	SMSCountries, BlockedCountries          string
	TrustedNetworks, BlockedNetworks        string
	ManagerEmails, Groups                   string
	ReturnURLs, LogoURL, AccentColor        string
	SMSDisabled, DailyDigest                bool
	// Version names the policy the form was filled from (policyVersion):
	// a save from a page older than the policy is refused, not applied
	// over a change made since.
	Version string
	Errors  map[string]string // form field → message
}

// channelBox is one allowed-channel checkbox.
type channelBox struct {
	Value, Label string
	Checked      bool
}

var channelLabels = map[engine.Channel]string{engine.ChannelTOTP: "Authenticator app", engine.ChannelSMS: "SMS",
	engine.ChannelEmail: "E-mail", engine.ChannelPasskey: "Passkey"}

// channelBoxes lists the allowed channels in the policy's order (its order
// of preference, kept when the form is sent back), then the others.
func channelBoxes(allowed []engine.Channel) []channelBox {
	var out []channelBox
	for _, c := range allowed {
		if l, ok := channelLabels[c]; ok {
			out = append(out, channelBox{Value: string(c), Label: l, Checked: true})
		}
	}
	for _, c := range engine.AllChannels {
		if !slices.Contains(allowed, c) {
			out = append(out, channelBox{Value: string(c), Label: channelLabels[c]})
		}
	}
	return out
}

// formOf shows a stored policy.
func formOf(v engine.PolicyView) policyForm {
	p := v.Policy
	groups := "{}"
	if len(v.Groups) > 0 {
		b, _ := json.MarshalIndent(v.Groups, "", "  ")
		groups = string(b)
	}
	return policyForm{
		Version: policyVersion(v),
		Mode:    string(p.Mode), Enforcement: string(p.Enforcement), Challenge: string(p.Challenge), ColdStart: string(p.ColdStart),
		GraceLogins: strconv.Itoa(p.GraceLogins), ChallengeAt: strconv.Itoa(p.Thresholds.Challenge), DenyAt: strconv.Itoa(p.Thresholds.Deny),
		RememberDays: strconv.Itoa(p.RememberDeviceDays), SMSPerHour: strconv.Itoa(p.SMSPerHour),
		Channels:     channelBoxes(p.AllowedChannels),
		SMSCountries: strings.Join(p.SMSCountries, ", "), BlockedCountries: strings.Join(p.BlockedCountries, ", "),
		TrustedNetworks: strings.Join(p.TrustedNetworks, "\n"), BlockedNetworks: strings.Join(p.BlockedNetworks, "\n"),
		ManagerEmails: strings.Join(p.ManagerEmails, "\n"), Groups: groups,
		SMSDisabled: p.SMSDisabled, DailyDigest: p.DailyDigest,
		ReturnURLs: strings.Join(p.ReturnURLs, "\n"), LogoURL: p.LogoURL, AccentColor: p.AccentColor,
	}
}

// policyVersion is a digest of a stored policy and its groups: it changes
// with any of their fields.
func policyVersion(v engine.PolicyView) string {
	b, _ := json.Marshal(struct {
		P engine.Policy
		G map[string]json.RawMessage
	}{v.Policy, v.Groups})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}

// formFrom reads the submitted form as typed.
func formFrom(f url.Values) policyForm {
	var chans []engine.Channel
	for _, c := range f["allowed_channels"] {
		chans = append(chans, engine.Channel(c))
	}
	return policyForm{
		Version: f.Get("version"),
		Mode:    f.Get("mode"), Enforcement: f.Get("enforcement"), Challenge: f.Get("challenge"), ColdStart: f.Get("cold_start"),
		GraceLogins: f.Get("grace_logins"), ChallengeAt: f.Get("thresholds.challenge"), DenyAt: f.Get("thresholds.deny"),
		RememberDays: f.Get("remember_device_days"), SMSPerHour: f.Get("sms_per_hour"),
		Channels:     channelBoxes(chans),
		SMSCountries: f.Get("sms_countries"), BlockedCountries: f.Get("blocked_countries"),
		TrustedNetworks: f.Get("trusted_networks"), BlockedNetworks: f.Get("blocked_networks"),
		ManagerEmails: f.Get("manager_emails"), Groups: f.Get("groups"),
		SMSDisabled: f.Get("sms_disabled") == "on", DailyDigest: f.Get("daily_digest") == "on",
		ReturnURLs: f.Get("return_urls"), LogoURL: f.Get("logo_url"), AccentColor: f.Get("accent_color"),
	}
}

// update turns the form into the engine's update of every field. A value
// that is not even of the right kind is refused here, named by its field
// like the engine's own validation, which judges everything else.
func (f policyForm) update() (engine.PolicyUpdate, error) {
	var p engine.PolicyPatch
	th := engine.ThresholdsPatch{}
	ints := []intField{{"grace_logins", f.GraceLogins, &p.GraceLogins}, {"thresholds.challenge", f.ChallengeAt, &th.Challenge},
		{"thresholds.deny", f.DenyAt, &th.Deny}, {"remember_device_days", f.RememberDays, &p.RememberDeviceDays},
		{"sms_per_hour", f.SMSPerHour, &p.SMSPerHour}}
	for _, n := range ints {
		v, err := strconv.Atoi(strings.TrimSpace(n.val))
		if err != nil {
			return engine.PolicyUpdate{}, engine.Invalid(n.field, "must be a whole number")
		}
		*n.dst = &v
	}
	p.Thresholds = &th
	mode, enf, ch, cold := engine.Mode(f.Mode), engine.Enforcement(f.Enforcement), engine.ChallengeMode(f.Challenge), engine.ColdStart(f.ColdStart)
	p.Mode, p.Enforcement, p.Challenge, p.ColdStart = &mode, &enf, &ch, &cold
	chans := []engine.Channel{}
	for _, c := range f.Channels {
		if c.Checked {
			chans = append(chans, engine.Channel(c.Value))
		}
	}
	p.AllowedChannels = &chans
	p.SMSCountries, p.BlockedCountries = list(f.SMSCountries), list(f.BlockedCountries)
	p.TrustedNetworks, p.BlockedNetworks, p.ManagerEmails = list(f.TrustedNetworks), list(f.BlockedNetworks), list(f.ManagerEmails)
	p.SMSDisabled, p.DailyDigest = &f.SMSDisabled, &f.DailyDigest
	// One URL a line: a URL may hold a comma, never a space.
	returnURLs := strings.Fields(f.ReturnURLs)
	if returnURLs == nil {
		returnURLs = []string{}
	}
	logo, accent := strings.TrimSpace(f.LogoURL), strings.TrimSpace(f.AccentColor)
	p.ReturnURLs, p.LogoURL, p.AccentColor = &returnURLs, &logo, &accent
	groups, err := parseGroups(f.Groups)
	if err != nil {
		return engine.PolicyUpdate{}, err
	}
	return engine.PolicyUpdate{Policy: p, Groups: &groups}, nil
}

// intField is a whole-number control and the patch field it sets.
type intField struct {
	field, val string
	dst        **int
}

// list splits a list typed with commas, spaces or one item a line.
func list(s string) *[]string {
	out := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if out == nil {
		out = []string{}
	}
	return &out
}

// parseGroups reads the groups' overrides, a JSON object of group name to
// the fields it overrides (as in the API).
func parseGroups(s string) (map[string]engine.PolicyPatch, error) {
	groups := map[string]engine.PolicyPatch{}
	if strings.TrimSpace(s) == "" {
		return groups, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&groups); err != nil {
		return nil, engine.Invalid("groups", "must be a JSON object of group name to the policy fields it overrides, e.g. {\"clinicians\": {\"mode\": \"required\"}}: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return groups, nil
}

// formField is the form control an engine error's field belongs to (a
// group's field belongs to the groups box).
func formField(field string) string {
	if strings.HasPrefix(field, "groups") {
		return "groups"
	}
	return field
}
