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
		d.jobs = []Job{e.codeJob(t, channel, c.ID, to, d.code)}
	case ChannelTOTP:
		d.ch.Destination = "authenticator app"
	case ChannelPasskey:
		d.ch.Destination = "passkey"
	}
	return d
}

// codeJob is the message that carries a code of challenge id to `to`: an
// SMS, or a mail for the e-mail channel.
func (e *core) codeJob(t Tenant, channel Channel, id, to, code string) Job {
	if channel == ChannelEmail {
		return e.job(message.KindMail, id, e.codeMail(t, to, code))
	}
	return e.job(message.KindSMS, id, message.SMS{To: to, Body: e.smsText(t, code)})
}

// smsText is the code message, with the Web OTP line when the public URL is
// known so browsers can fill the code in.
func (e *core) smsText(t Tenant, code string) string {
	s := fmt.Sprintf("%s is your %s verification code.", code, t.SenderName)
	if host := publicHost(e.opt.PublicURL); host != "" {
		s += fmt.Sprintf("\n\n@%s #%s", host, code)
	}
	return s
}

func (e *core) codeMail(t Tenant, to, code string) message.Mail {
	return message.Mail{
		To: []string{to}, FromName: t.SenderName,
		Subject: fmt.Sprintf("Your %s verification code", t.SenderName),
		Text: fmt.Sprintf("Your %s verification code is %s.\n\nIt is valid for %d minutes. If you did not ask for it, someone may know your password: change it.\n",
			t.SenderName, code, int(e.opt.CodeTTL/time.Minute)),
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
