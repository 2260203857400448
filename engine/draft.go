package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// newCode returns a random decimal code of the configured length.
func (e *core) newCode() string {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e.opt.CodeLength)), nil)
	n, err := rand.Int(e.opt.Rand, max)
	if err != nil {
		panic(fmt.Sprintf("engine: random code: %v", err))
	}
	return fmt.Sprintf("%0*d", e.opt.CodeLength, n)
}

func (e *core) codeHash(id, code string) string {
	return hex.EncodeToString(e.codeMAC.Sum("challenge", id, code))
}

// draft is a challenge about to be created, with its code and message.
type draft struct {
	ch   Challenge
	code string
	jobs []Job
}

// newChallenge prepares a challenge on channel for u; to is the phone
// number or e-mail address the code goes to ("" for TOTP).
func (e *core) newChallenge(t Tenant, u UserRef, purpose Purpose, channel Channel, to string, data ChallengeData) draft {
	now := e.now()
	c := Challenge{
		ID: e.newID("ch_", e.store.Placement(u)), Tenant: u.Tenant, User: u.User, Purpose: purpose, Channel: channel,
		Status: StatusPending, CreatedAt: now, ExpiresAt: now.Add(e.opt.CodeTTL), MaxAttempts: e.opt.CodeAttempts,
		Data: data,
	}
	d := draft{ch: c}
	switch channel {
	case ChannelSMS, ChannelEmail:
		d.code = e.newCode()
		d.ch.CodeHash = e.codeHash(c.ID, d.code)
		d.ch.Data.To = e.sealString(to)
		d.ch.Sends, d.ch.LastSentAt, d.ch.Delivery = 1, now, message.DeliveryQueued
		d.ch.Destination = MaskPhone(to)
		if channel == ChannelEmail {
			d.ch.Destination = MaskEmail(to)
		}
		j := e.codeJob(t, channel, purpose, c.ID, to, d.code)
		j.User = e.userSubject(u)
		d.jobs = []Job{j}
	case ChannelTOTP:
		d.ch.Destination = "authenticator app"
	case ChannelPasskey:
		d.ch.Destination = "passkey"
	}
	return d
}

// codeJob is the message that carries a code of challenge id, for
// purpose, to `to`: an SMS, or a mail for the e-mail channel.
func (e *core) codeJob(t Tenant, channel Channel, purpose Purpose, id, to, code string) Job {
	if channel == ChannelEmail {
		return e.job(message.KindMail, id, e.codeMail(t, purpose, to, code))
	}
	return e.job(message.KindSMS, id, message.SMS{To: to, Body: e.smsText(t, purpose, code)})
}

// codeUse says what a code of each purpose is for, in the message that
// carries it: a user asked for a code to turn 2FA off while he was only
// signing in can tell that someone else asked (the code is being phished).
var codeUse = map[Purpose]string{
	PurposeLogin:       "to sign in",
	PurposeEnrollSMS:   "to set up codes by text message",
	PurposeEnrollEmail: "to set up codes by e-mail",
	PurposeStepUp:      "to confirm a change to your two-factor authentication",
	PurposePhoneOld:    "to change your phone number",
	PurposePhoneNew:    "to confirm your new phone number",
	PurposeEmailOld:    "to change your e-mail address",
	PurposeEmailNew:    "to confirm your new e-mail address",
	PurposeDisable:     "to turn off two-factor authentication",
	PurposeBackupCodes: "to get new backup codes",
	PurposeManage:      "to manage your two-factor authentication",
}

// codeFor is " <what the code is for>", or "" for a purpose without one.
func codeFor(p Purpose) string {
	if use, ok := codeUse[p]; ok {
		return " " + use
	}
	return ""
}

// smsText is the code message, saying what the code is for, with the Web
// OTP line when the public URL is known so browsers can fill the code in.
func (e *core) smsText(t Tenant, purpose Purpose, code string) string {
	s := fmt.Sprintf("%s is your %s verification code%s.", code, t.SenderName, codeFor(purpose))
	if host := publicHost(e.opt.PublicURL); host != "" {
		s += fmt.Sprintf("\n\n@%s #%s", host, code)
	}
	return s
}

func (e *core) codeMail(t Tenant, purpose Purpose, to, code string) message.Mail {
	use := ""
	if u := codeFor(purpose); u != "" {
		use = " It is" + u + "."
	}
	return message.Mail{
		To: []string{to}, FromName: t.SenderName,
		Subject: fmt.Sprintf("Your %s verification code", t.SenderName),
		Text: fmt.Sprintf("Your %s verification code is %s.%s\n\nIt is valid for %d minutes. If you did not ask for it, someone may know your password: change it.\n",
			t.SenderName, code, use, int(e.opt.CodeTTL/time.Minute)),
	}
}

func (e *core) sealString(s string) string { return hex.EncodeToString(e.piiBox.Seal([]byte(s))) }

func (e *core) openString(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", err
	}
	p, err := e.piiBox.Open(b)
	return string(p), err
}
