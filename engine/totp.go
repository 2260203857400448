package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"image/png"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const totpPeriod = 30

// newTOTPKey makes a new authenticator secret with its otpauth:// URI and a
// QR code (PNG, base64).
func (e *core) newTOTPKey(issuer, account string) (secret, uri, qr string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: totpPeriod, Digits: otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1, SecretSize: 20, Rand: e.opt.Rand,
	})
	if err != nil {
		return "", "", "", err
	}
	qr, err = qrPNG(key.URL())
	return key.Secret(), key.URL(), qr, err
}

// totpURI rebuilds the otpauth:// URI of an existing base32 secret.
func totpURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: v.Encode()}
	return u.String()
}

// qrPNG renders an otpauth:// URI as a base64 PNG QR code.
func qrPNG(uri string) (string, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// checkTOTP validates code against a sealed secret within ±1 step, refusing
// steps at or before last (replay). It returns the step that matched.
func (e *core) checkTOTP(sealedHex, code string, last int64) (int64, bool) {
	b, err := hex.DecodeString(sealedHex)
	if err != nil {
		return 0, false
	}
	secret, err := e.totpBox.Open(b)
	if err != nil {
		return 0, false
	}
	now := e.now()
	cur := now.Unix() / totpPeriod
	for _, step := range []int64{cur, cur - 1, cur + 1} {
		if step <= last {
			continue
		}
		ok, err := totp.ValidateCustom(code, string(secret), time.Unix(step*totpPeriod, 0).UTC(), totp.ValidateOpts{
			Period: totpPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err == nil && ok {
			return step, true
		}
	}
	return 0, false
}
