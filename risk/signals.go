package risk

import (
	"cmp"
	"slices"
)

// Signal names, in words a support agent understands (RISK.md section 2).
const (
	SignalNewIP      = "new_ip"
	SignalNewNetwork = "new_network"
	SignalNewCountry = "new_country"
	SignalNewDevice  = "new_device"
	SignalNewBrowser = "new_browser"
	SignalNewOS      = "new_os"
	// SignalSharedIP and SignalSharedDevice: an address or device id the
	// user has logged in from before, but that is more common among the
	// tenant's logins than among his (an office or carrier NAT, a kiosk),
	// so by Freeman's ratio it counts against him.
	SignalSharedIP               = "shared_ip"
	SignalSharedDevice           = "shared_device"
	SignalImpossibleTravel       = "impossible_travel"
	SignalFailedPasswordBurst    = "failed_password_burst"
	SignalIPFailedManyUsers      = "ip_failed_many_users"
	SignalRecentFailedChallenges = "recent_failed_challenges"
	SignalBlockedCountry         = "blocked_country"
	SignalBlockedNetwork         = "blocked_network"
	SignalTrustedNetwork         = "trusted_network"
	SignalNoHistory              = "no_history"
	// SignalReportedNetwork: the tenant reported a login from this network
	// (prefix or AS) as fraud in the last days.
	SignalReportedNetwork = "reported_network"
	// SignalRememberedDevice is never produced by [Score]; the engine adds
	// it when a remembered-device token skips the challenge.
	SignalRememberedDevice = "remembered_device"
	// SignalIPList names an operator's IP reputation list holding the
	// login's address; the detail is the list's name.
	SignalIPList = "ip_list"
)

// Signal is one reason behind a score.
type Signal struct {
	// Name is one of the Signal constants.
	Name string `json:"name"`
	// Detail is a short, non-identifying qualifier: a country code, an AS
	// number, a browser or OS name, a count. Never an IP address.
	Detail string `json:"detail,omitempty"`
	// Weight is how much the signal raised log10 S: 1 means the signal
	// multiplied the risk by ten. Signals that force a decision or only
	// inform (blocked_*, trusted_network, no_history) weigh 0.
	Weight float64 `json:"-"`
	// denies marks a signal that forces a deny whatever its name (an
	// ip_list of action deny).
	denies bool
}

// forcing reports whether the signal forces a deny; such signals sort first
// because they decide the outcome whatever their weight.
func (s Signal) forcing() bool {
	return s.denies || s.Name == SignalBlockedCountry || s.Name == SignalBlockedNetwork
}

// sortSignals orders signals: deny-forcing first, then by descending
// weight, then by name so equal weights keep a stable order.
func sortSignals(s []Signal) {
	slices.SortStableFunc(s, func(a, b Signal) int {
		if a.forcing() != b.forcing() {
			if a.forcing() {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}
