// Package uafamily is the safe vocabulary of browser and operating-system
// names that may reach a mail or an audit event: families from a fixed
// allow-list with an optional numeric major version. Anything else becomes
// a neutral word.
//
// The user-agent parser's families are regex captures that can echo request
// text ("Click https://evil.example/… CFNetwork/1.0" yields the family
// "Click https://evil.example/…"), so nothing taken from a request may be
// shown to a person without passing through here. The package must not
// parse user agents itself, and must stay free of dependencies.
package uafamily
