package prompt

import (
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/stepup-auth/stepup/engine"
)

// The settings page's changes (enrolment and manage): each form starts
// the engine's lifecycle call, then the page asks for its code.

func (h *Handler) startSMS(r *http.Request, id, secret string) (string, string, error) {
	return "", "", onField("phone", h.p.StartSMS(r.Context(), id, secret, r.PostFormValue("phone"), h.actorOf(r)))
}

// onField shows a refusal of what was typed into field (a number that is
// not valid, not a mobile, not allowed, already the user's) next to it;
// other errors (limits, a page not allowed to change) at the top.
func onField(field string, err error) error {
	if err == nil {
		return nil
	}
	switch engine.AsError(err).Kind {
	case engine.KindInvalid, engine.KindUnprocessable, engine.KindConflict:
		return fieldError{field: field, err: err}
	}
	return err
}

func (h *Handler) startTOTP(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.StartTOTP(r.Context(), id, secret, h.actorOf(r))
}

func (h *Handler) startPhoneChange(r *http.Request, id, secret string) (string, string, error) {
	return "", "", onField("new_phone", h.p.StartPhoneChange(r.Context(), id, secret, r.PostFormValue("new_phone"), h.actorOf(r)))
}

func (h *Handler) startBackupCodes(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.StartBackupCodes(r.Context(), id, secret, h.actorOf(r))
}

func (h *Handler) startEmail(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.StartEmail(r.Context(), id, secret, h.actorOf(r))
}

func (h *Handler) startDisable(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.StartDisable(r.Context(), id, secret, h.actorOf(r))
}

func (h *Handler) abandonChange(r *http.Request, id, secret string) (string, string, error) {
	return "", "", h.p.AbandonChange(r.Context(), id, secret)
}

// verifyChange checks a change's code, or the passkey assertion the
// page's script posts in its place. Backup codes it issued, and the
// news that 2FA is off, are shown in this answer only (never stored to
// show again); anything else goes back to the page.
func (h *Handler) verifyChange(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := h.session(w, r)
	if !ok {
		return
	}
	var done engine.ChangeDone
	var err error
	if cred := r.PostFormValue("credential"); cred != "" { // the page's script, after a passkey's assertion
		done, err = h.p.VerifyChangePasskey(r.Context(), id, secret, []byte(cred), h.actorOf(r))
	} else {
		done, err = h.p.VerifyChange(r.Context(), id, secret, r.PostFormValue("code"), h.actorOf(r))
	}
	if err != nil {
		h.refused(w, r, id, secret, err)
		return
	}
	if len(done.BackupCodes) == 0 && !done.Disabled {
		http.Redirect(w, r, "/prompt/"+id, http.StatusSeeOther)
		return
	}
	h.render(w, r, id, secret, view{status: http.StatusOK, codes: done.BackupCodes, off: done.Disabled})
}

// settingsOffers are the changes a settings page offers now.
func settingsOffers(pg engine.PromptPage) map[string]bool {
	open := pg.Verified && pg.Change == nil
	has := func(c engine.Channel) bool {
		return slices.ContainsFunc(pg.Factors, func(f engine.FactorView) bool { return f.Channel == c })
	}
	manage := open && pg.Kind == engine.PromptManage
	return map[string]bool{
		"OfferSMS":         open && !has(engine.ChannelSMS) && slices.Contains(pg.Channels, engine.ChannelSMS),
		"OfferTOTP":        open && slices.Contains(pg.Channels, engine.ChannelTOTP),
		"OfferEmail":       open && pg.Email != "" && !has(engine.ChannelEmail) && slices.Contains(pg.Channels, engine.ChannelEmail),
		"OfferDisable":     manage && len(pg.Factors) > 0,
		"OfferPhoneChange": manage && has(engine.ChannelSMS),
		"OfferBackupCodes": manage && len(pg.Factors) > 0,
		"ResetTOTP":        has(engine.ChannelTOTP),
	}
}

// fieldOffer is the offer whose form has a field an error is shown next
// to; an error for a field not on the page is shown at the top.
var fieldOffer = map[string]string{"phone": "OfferSMS", "new_phone": "OfferPhoneChange"}

// changeTitle names a pending change.
func changeTitle(c engine.ChallengeView) string {
	switch c.Purpose {
	case engine.PurposeEnrollSMS:
		return "Text message"
	case engine.PurposeEnrollTOTP:
		return "Authenticator app"
	case engine.PurposePhoneOld, engine.PurposePhoneNew:
		return "Change phone number"
	case engine.PurposeBackupCodes:
		return "New backup codes"
	case engine.PurposeEnrollEmail:
		return "E-mail"
	case engine.PurposeDisable:
		return "Turn off two-step verification"
	}
	return "Confirm it's you"
}

// changeHint says which code a pending change asks for.
func changeHint(c engine.ChallengeView) string {
	if c.Channel == engine.ChannelPasskey { // a passkey-only user
		return "Use your passkey to confirm it's you, or type one of your backup codes."
	}
	if c.Channel == engine.ChannelTOTP {
		if c.Purpose == engine.PurposeEnrollTOTP {
			return "Then type the 6-digit code the app shows."
		}
		return "Type the code your authenticator app shows."
	}
	switch c.Purpose {
	case engine.PurposeEnrollSMS:
		return "We sent a code to " + c.Destination + ". Type it to turn on text messages."
	case engine.PurposePhoneOld:
		return "First, type the code we sent to your current number, " + c.Destination + "."
	case engine.PurposePhoneNew:
		return "Now type the code we sent to your new number, " + c.Destination + "."
	case engine.PurposeBackupCodes:
		return "Type the code we sent to " + c.Destination + " to get new backup codes."
	case engine.PurposeEnrollEmail:
		return "We sent a code to " + c.Destination + ". Type it to turn on codes by e-mail."
	case engine.PurposeDisable:
		return "Type the code we sent to " + c.Destination + " to turn off two-step verification."
	}
	return "First, type the code we sent to " + c.Destination + "."
}

// pngData is a base64 PNG the engine rendered (a QR code) as an image
// source.
func pngData(b64 string) template.URL {
	return template.URL("data:image/png;base64," + b64) // trusted: base64 from the engine, never user input
}

// spaced groups a key in fours, as authenticator apps show it.
func spaced(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
