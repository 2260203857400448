package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
)

// lcStartDevices starts a stepupd that knows the countries of the
// documentation ranges, challenges every login that is not from a
// remembered device, and does not limit the many login codes these tests
// send.
func lcStartDevices(t *testing.T) *lcEnv {
	t.Helper()
	geo := geoiptest.Write(t, geoiptest.DemoNetworks)
	e := lcStart(t, apptest.Options{Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = geo.Country
		lcRoomyLimits(c)
	}})
	e.policy(t, map[string]any{"challenge": "every_login"})
	return e
}

// remembered reports whether a login of user from d with token skips the
// challenge.
func (e *lcEnv) remembered(t testing.TB, user string, d lcDevice, token string) bool {
	t.Helper()
	ev := e.evaluate(t, user, d, token)
	skip := ev["decision"] == "allow" && ev["challenge"] == nil
	if skip != slices.Contains(lcSignals(ev), "remembered_device") {
		t.Errorf("decision %v with signals %v", ev["decision"], lcSignals(ev))
	}
	return skip
}

func (e *lcEnv) devices(t testing.TB, user string) ([]map[string]any, string) {
	t.Helper()
	r := e.do(t, "GET", "/v1/users/"+user+"/devices", nil)
	if r.Status != 200 {
		t.Fatalf("devices of %s: %d %s", user, r.Status, r.Raw)
	}
	var out []map[string]any
	for _, d := range r.Body["devices"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out, string(r.Raw)
}

// TestDevicesListAndForget: remembered devices are listed without raw ids or
// IPs and forgotten one by one or all at once.
func TestDevicesListAndForget(t *testing.T) {
	t.Parallel()
	e := lcStartDevices(t)
	phone := lcPhone(331)
	e.enrollSMS(t, "zoe", phone)
	if ds, _ := e.devices(t, "zoe"); len(ds) != 0 {
		t.Fatalf("devices before any remembered login: %v", ds)
	}
	start := time.Now().Add(-time.Minute)
	laptopTok := e.rememberDevice(t, "zoe", phone, lcLaptop)
	phoneTok := e.rememberDevice(t, "zoe", phone, lcPhoneDevice)

	ds, raw := e.devices(t, "zoe")
	if len(ds) != 2 {
		t.Fatalf("devices: %s, want 2", raw)
	}
	for _, secret := range []string{lcLaptop.IP, lcPhoneDevice.IP, lcLaptop.ID, lcPhoneDevice.ID, laptopTok, phoneTok} {
		if strings.Contains(raw, secret) {
			t.Errorf("the device list shows %q: %s", secret, raw)
		}
	}
	if raw := string(e.do(t, "GET", "/v1/users/zoe", nil).Raw); strings.Contains(raw, lcLaptop.IP) || strings.Contains(raw, lcPhoneDevice.IP) {
		t.Errorf("the user's status shows a raw IP: %s", raw)
	}
	byBrowser := map[string]map[string]any{}
	for _, d := range ds {
		first, err1 := time.Parse(time.RFC3339, lcStr(d, "first_seen"))
		last, err2 := time.Parse(time.RFC3339, lcStr(d, "last_seen"))
		if !strings.HasPrefix(lcStr(d, "id"), "dv_") || err1 != nil || err2 != nil || first.Before(start) || last.Before(first) || time.Since(last) > time.Minute {
			t.Errorf("device %v: id, first_seen or last_seen wrong", d)
		}
		byBrowser[strings.Fields(lcStr(d, "browser") + " ?")[0]] = d
	}
	laptop, mobile := byBrowser["Chrome"], byBrowser["Mobile"]
	if laptop == nil || !strings.HasPrefix(lcStr(laptop, "os"), "Linux") || laptop["country"] != "US" {
		t.Errorf("laptop: %v, want Chrome on Linux in US", laptop)
	}
	if mobile == nil || !strings.HasPrefix(lcStr(mobile, "os"), "iOS") || mobile["country"] != "GB" {
		t.Errorf("phone: %v, want Mobile Safari on iOS in GB", mobile)
	}
	if laptop == nil || mobile == nil {
		t.FailNow()
	}
	if u := e.user(t, "zoe"); u["remembered_devices"] != 2.0 {
		t.Errorf("remembered_devices %v, want 2", u["remembered_devices"])
	}

	// Each token skips the challenge on its own device only.
	if !e.remembered(t, "zoe", lcLaptop, laptopTok) || !e.remembered(t, "zoe", lcPhoneDevice, phoneTok) {
		t.Errorf("a remembered device is challenged")
	}
	if e.remembered(t, "zoe", lcPhoneDevice, laptopTok) {
		t.Errorf("the laptop's token skips the challenge on the phone")
	}

	// Forget the laptop by id.
	if n := e.must(t, 200, "DELETE", "/v1/users/zoe/devices/"+lcStr(laptop, "id"), nil)["forgotten"]; n != 1.0 {
		t.Errorf("forgot %v devices, want 1", n)
	}
	if ds, raw := e.devices(t, "zoe"); len(ds) != 1 || ds[0]["id"] != mobile["id"] {
		t.Errorf("devices after forgetting the laptop: %s", raw)
	}
	if e.remembered(t, "zoe", lcLaptop, laptopTok) {
		t.Errorf("the forgotten laptop still skips the challenge")
	}
	if !e.remembered(t, "zoe", lcPhoneDevice, phoneTok) {
		t.Errorf("forgetting the laptop forgot the phone")
	}
	lcWantErr(t, e.do(t, "DELETE", "/v1/users/zoe/devices/"+lcStr(laptop, "id"), nil), 404, "device_not_found")
	lcWantErr(t, e.do(t, "DELETE", "/v1/users/zoe/devices/dv_nosuchdevice", nil), 404, "device_not_found")
	if u := e.user(t, "zoe"); u["remembered_devices"] != 1.0 {
		t.Errorf("remembered_devices %v, want 1", u["remembered_devices"])
	}

	// Forget all.
	e.rememberDevice(t, "zoe", phone, lcLaptop)
	if n := e.must(t, 200, "DELETE", "/v1/users/zoe/devices", nil)["forgotten"]; n != 2.0 {
		t.Errorf("forgot %v devices, want 2", n)
	}
	if ds, raw := e.devices(t, "zoe"); len(ds) != 0 {
		t.Errorf("devices after forgetting all: %s", raw)
	}
	if e.remembered(t, "zoe", lcPhoneDevice, phoneTok) {
		t.Errorf("a device forgotten with all the others still skips the challenge")
	}
	u := e.user(t, "zoe")
	if u["remembered_devices"] != 0.0 || u["enrolled"] != true {
		t.Errorf("after forgetting all devices: %v", u)
	}

	lcWantErr(t, e.do(t, "GET", "/v1/users/nobody/devices", nil), 404, "user_not_found")
	lcWantErr(t, e.do(t, "DELETE", "/v1/users/nobody/devices", nil), 404, "user_not_found")
}

// TestDevicesForgottenOnSessionEvents: a password change or a sign-out
// everywhere forgets every remembered device.
func TestDevicesForgottenOnSessionEvents(t *testing.T) {
	t.Parallel()
	e := lcStartDevices(t)
	for i, event := range []string{"password-changed", "signed-out-everywhere"} {
		t.Run(event, func(t *testing.T) {
			t.Parallel()
			user, phone := "user-"+event, lcPhone(341+i)
			e.enrollSMS(t, user, phone)
			laptopTok := e.rememberDevice(t, user, phone, lcLaptop)
			phoneTok := e.rememberDevice(t, user, phone, lcPhoneDevice)
			if !e.remembered(t, user, lcLaptop, laptopTok) {
				t.Fatalf("the remembered laptop is challenged")
			}

			if n := e.must(t, 200, "POST", "/v1/users/"+user+"/events/"+event, map[string]any{"ip": lcLaptop.IP, "user_agent": lcLaptop.UA})["forgotten"]; n != 2.0 {
				t.Errorf("%s forgot %v devices, want 2", event, n)
			}
			if ds, raw := e.devices(t, user); len(ds) != 0 {
				t.Errorf("devices after %s: %s", event, raw)
			}
			if u := e.user(t, user); u["remembered_devices"] != 0.0 || u["enrolled"] != true || u["backup_codes_left"] != 10.0 {
				t.Errorf("after %s: %v", event, u)
			}
			if e.remembered(t, user, lcLaptop, laptopTok) || e.remembered(t, user, lcPhoneDevice, phoneTok) {
				t.Errorf("a device token still skips the challenge after %s", event)
			}
			// Nothing to forget is not an error.
			if n := e.must(t, 200, "POST", "/v1/users/"+user+"/events/"+event, nil)["forgotten"]; n != 0.0 {
				t.Errorf("second %s forgot %v devices", event, n)
			}
		})
	}
	lcWantErr(t, e.do(t, "POST", "/v1/users/nobody/events/password-changed", nil), 404, "user_not_found")
}
