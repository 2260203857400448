package engine

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// accentRe is a CSS hex colour: the only form the prompt pages accept, so
// a policy value can never carry anything else into their style sheet.
var accentRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// logoHostRe is a logo's host[:port]: a DNS name or IPv4 address, or a
// bracketed IPv6 address. The pages write the logo's origin into their
// Content-Security-Policy, so nothing else (';', quotes, '*', ',') may
// pass.
var logoHostRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// validateBranding checks the hosted prompt's fields: the return URLs and
// the logo are absolute http(s) URLs without credentials or fragments.
func (p Policy) validateBranding(f func(string) string) error {
	if len(p.ReturnURLs) > 20 {
		return Invalid(f("return_urls"), "at most 20")
	}
	for _, r := range p.ReturnURLs {
		if _, err := parseReturnURL(r); err != nil {
			return Invalid(f("return_urls"), fmt.Sprintf("%q: %v", r, err))
		}
	}
	if p.LogoURL != "" {
		if u, err := parseReturnURL(p.LogoURL); err != nil || !logoHostRe.MatchString(u.Host) {
			return Invalid(f("logo_url"), "must be an absolute http or https URL")
		}
	}
	if p.AccentColor != "" && !accentRe.MatchString(p.AccentColor) {
		return Invalid(f("accent_color"), "must be a hex colour such as #1a73e8")
	}
	return nil
}

// parseReturnURL parses an absolute http(s) URL without user info or
// fragment, at most 2048 bytes.
func parseReturnURL(s string) (*url.URL, error) {
	if len(s) > 2048 {
		return nil, fmt.Errorf("longer than 2048 bytes")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("must be http or https")
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("must name a host")
	case u.User != nil:
		return nil, fmt.Errorf("must not carry a user name or password")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("must not carry a fragment")
	}
	return u, nil
}

// returnURLAllowed reports whether target is under one of the registered
// return URLs: the same scheme, host and port, and a path that starts with
// the registered path at a segment boundary.
func returnURLAllowed(registered []string, target string) bool {
	t, err := parseReturnURL(target)
	if err != nil {
		return false
	}
	for _, r := range registered {
		u, err := parseReturnURL(r)
		if err != nil || !strings.EqualFold(u.Scheme, t.Scheme) || !strings.EqualFold(u.Host, t.Host) {
			continue
		}
		if !dotFree(t.Path) {
			return false
		}
		if pathUnder(t.EscapedPath(), u.EscapedPath()) {
			return true
		}
	}
	return false
}

// dotFree reports whether a decoded path has no "." or ".." segment and
// no backslash: a browser resolves "%2e%2e" as ".." (and some servers a
// backslash as "/", and Tomcat or Jetty "..;x" as ".."), which would
// climb out of the registered path.
func dotFree(path string) bool {
	if strings.Contains(path, `\`) {
		return false
	}
	for _, seg := range strings.Split(path, "/") {
		if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// pathUnder reports whether path is base or below it ("/cb" admits
// "/cb" and "/cb/x", not "/cbx"; "/" and "" admit everything).
func pathUnder(path, base string) bool {
	if base == "" || base == "/" {
		return true
	}
	if strings.Contains(path, "/../") || strings.HasSuffix(path, "/..") {
		return false
	}
	if path == base {
		return true
	}
	if strings.HasSuffix(base, "/") {
		return strings.HasPrefix(path, base)
	}
	return strings.HasPrefix(path, base+"/")
}
