package console

import (
	"maps"
	"slices"

	"github.com/stepup-auth/stepup/message"
	"github.com/stepup-auth/stepup/risk"
)

// The plain words the console shows for the engine's vocabularies.

var signals = map[string]string{
	risk.SignalNewIP:                  "a new IP address",
	risk.SignalNewNetwork:             "a new network",
	risk.SignalNewCountry:             "a new country",
	risk.SignalNewDevice:              "a new device",
	risk.SignalNewBrowser:             "a new browser",
	risk.SignalNewOS:                  "a new operating system",
	risk.SignalSharedIP:               "an address other users share",
	risk.SignalSharedDevice:           "a device other users share",
	risk.SignalImpossibleTravel:       "impossible travel",
	risk.SignalFailedPasswordBurst:    "many wrong passwords",
	risk.SignalIPFailedManyUsers:      "an address failing for many users",
	risk.SignalRecentFailedChallenges: "recent wrong codes",
	risk.SignalBlockedCountry:         "a blocked country",
	risk.SignalBlockedNetwork:         "a blocked network",
	risk.SignalTrustedNetwork:         "a trusted network",
	risk.SignalNoHistory:              "no login history yet",
	risk.SignalReportedNetwork:        "a network reported for fraud",
	risk.SignalRememberedDevice:       "a remembered device",
	risk.SignalIPList:                 "an address on a reputation list",
}

// signalWords names a risk signal in plain words.
func signalWords(name string) string {
	if w, ok := signals[name]; ok {
		return w
	}
	return name
}

var events = map[message.EventType]string{
	message.EvSMSEnrolled:          "SMS enrolled",
	message.EvTOTPEnabled:          "Authenticator app enabled",
	message.EvTOTPReset:            "Authenticator app reset",
	message.EvEmailEnabled:         "E-mail codes enabled",
	message.EvDisabled:             "2FA turned off",
	message.EvPhoneChanged:         "Phone number changed",
	message.EvEmailChanged:         "E-mail address changed",
	message.EvBackupRegen:          "Backup codes regenerated",
	message.EvBackupUsed:           "Backup code used",
	message.EvDevicesForgotten:     "Remembered devices forgotten",
	message.EvAdminReset:           "2FA reset by a manager",
	message.EvModeOff:              "2FA switched off by policy",
	message.EvLoginDenied:          "Login denied",
	message.EvPolicyChanged:        "Policy changed",
	message.EvReport:               "\"This wasn't me\" report",
	message.EvUserErased:           "User erased",
	message.EvHistoryImported:      "Login history imported",
	message.EvConsoleSignIn:        "Manager signed in to the console",
	message.EvConsoleSignOut:       "Manager signed out of the console",
	message.EvLoginReported:        "Login reported as fraud",
	message.EvDailyDigest:          "Daily digest",
	message.EvLoginMonitored:       "Login watched in monitor mode",
	message.EvAlertSMSLimit:        "Alert: SMS limit reached",
	message.EvAlertEmailLimit:      "Alert: e-mail limit reached",
	message.EvAlertAttemptLimit:    "Alert: wrong-code limit reached",
	message.EvAlertKillSwitch:      "Alert: SMS kill switch hit",
	message.EvAlertDeliveryFailing: "Alert: deliveries failing",
	message.EvAlertLoginSpike:      "Alert: spike of blocked logins",
	message.EvAlertLoginReported:   "Alert: login reported",
}

// eventWords names an audit event type in plain words.
func eventWords(t message.EventType) string {
	if w, ok := events[t]; ok {
		return w
	}
	return string(t)
}

// eventTypes are the types the audit log's filter offers, in order.
func eventTypes() []message.EventType {
	return slices.Sorted(maps.Keys(events))
}
