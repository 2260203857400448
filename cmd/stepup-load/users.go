package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// userAgents are the browsers the load users log in with.
var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 Edg/133.0.0.0",
}

// device is one of a load user's browsers.
type device struct {
	id, ua string
}

// loadUser is a synthetic user: a home /24 whose addresses the history
// knows, and one or two devices.
type loadUser struct {
	id      string
	home    netip.Prefix
	hosts   []byte // the addresses of home the history knows
	devices []device
}

// newLoadUser returns user i of the run; the same seed, prefix and index
// give the same user. Every user has their own /24 (for up to 2²⁰ users),
// so users' addresses are distinct.
func newLoadUser(seed uint64, prefix string, i int) loadUser {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	u := loadUser{
		id:   fmt.Sprintf("%s%06d", prefix, i),
		home: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(32 + i>>16&15), byte(i >> 8), byte(i), 0}), 24),
	}
	for range 1 + r.IntN(3) { // DHCP moved the home a few times
		u.hosts = append(u.hosts, byte(2+r.IntN(250)))
	}
	for k := range 1 + r.IntN(2) {
		u.devices = append(u.devices, device{
			id: fmt.Sprintf("%s-d%d", u.id, k),
			ua: userAgents[r.IntN(len(userAgents))],
		})
	}
	return u
}

// pastLogin is one login of POST /v1/users/{id}/history.
type pastLogin struct {
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	DeviceID  string    `json:"device_id"`
	At        time.Time `json:"at"`
}

// history returns n past logins, ascending, spread over the 60 days (and a
// little) before now, from the user's home addresses and devices.
func (u loadUser) history(r *rand.Rand, n int, now time.Time) []pastLogin {
	out := make([]pastLogin, n)
	step := 60 * 24 * time.Hour / time.Duration(n)
	for k := range out {
		d := u.devices[r.IntN(len(u.devices))]
		out[k] = pastLogin{
			IP:        u.addr(u.hosts[r.IntN(len(u.hosts))]).String(),
			UserAgent: d.ua,
			DeviceID:  d.id,
			At:        now.Add(-time.Duration(n-k)*step - time.Duration(r.Int64N(int64(step/2)))).UTC().Truncate(time.Second),
		}
	}
	return out
}

func (u loadUser) addr(host byte) netip.Addr {
	b := u.home.Addr().As4()
	b[3] = host
	return netip.AddrFrom4(b)
}

// evaluateReq is the body of POST /v1/logins/evaluate, and of the
// baseline's POST /echo.
type evaluateReq struct {
	UserID    string `json:"user_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	DeviceID  string `json:"device_id"`
}

// login returns an evaluation request for the user: with probability
// familiar from an address and device the history knows, else from an
// address in the benchmarking range 198.18.0.0/15 it has never seen.
func (u loadUser) login(r *rand.Rand, familiar float64) evaluateReq {
	d := u.devices[r.IntN(len(u.devices))]
	req := evaluateReq{UserID: u.id, UserAgent: d.ua, DeviceID: d.id}
	if r.Float64() < familiar {
		req.IP = u.addr(u.hosts[r.IntN(len(u.hosts))]).String()
	} else {
		req.IP = netip.AddrFrom4([4]byte{198, 18 + byte(r.IntN(2)), byte(r.IntN(256)), byte(1 + r.IntN(254))}).String()
	}
	return req
}
