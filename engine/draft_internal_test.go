package engine

import (
	"strings"
	"testing"
	"time"
)

// TestCodeMessagesSayWhatFor: every code message names what the code is
// for, so a user who only meant to sign in can tell a code asked to turn
// 2FA off (by someone phishing it) from his own.
func TestCodeMessagesSayWhatFor(t *testing.T) {
	e := &core{opt: Options{CodeTTL: 10 * time.Minute}}
	tn := Tenant{SenderName: "Acme"}
	for p := range purposes {
		if p == PurposeEnrollTOTP {
			continue // an authenticator app's code is never sent
		}
		use, ok := codeUse[p]
		if !ok {
			t.Errorf("%s: the code's message does not say what it is for", p)
			continue
		}
		sms := e.smsText(tn, p, "123456")
		if !strings.HasPrefix(sms, "123456 is your Acme verification code "+use+".") {
			t.Errorf("%s: SMS %q", p, sms)
		}
		mail := e.codeMail(tn, p, "ann@example.test", "123456")
		if !strings.Contains(mail.Text, "verification code is 123456. It is "+use+".") {
			t.Errorf("%s: mail %q", p, mail.Text)
		}
	}
	if sms := e.smsText(tn, PurposeEnrollTOTP, "123456"); sms != "123456 is your Acme verification code." {
		t.Errorf("a purpose without a use: %q", sms)
	}
}
