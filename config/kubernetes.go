package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Kubernetes gives every container variables naming each Service of its
// namespace (the kubelet's "service links"). A Service named "stepup" with
// cluster IP 10.0.0.1 and a TCP port 8080 named "http" yields:
//
//	STEPUP_SERVICE_HOST=10.0.0.1
//	STEPUP_SERVICE_PORT=8080
//	STEPUP_SERVICE_PORT_HTTP=8080
//	STEPUP_PORT=tcp://10.0.0.1:8080
//	STEPUP_PORT_8080_TCP=tcp://10.0.0.1:8080
//	STEPUP_PORT_8080_TCP_PROTO=tcp
//	STEPUP_PORT_8080_TCP_PORT=8080
//	STEPUP_PORT_8080_TCP_ADDR=10.0.0.1
//
// They share our prefix but are no settings, so Load skips them. The
// value must have the shape Kubernetes writes as well as the name: an
// operator's STEPUP_PORT=8080 (a guess at the listen port) is still
// refused as unknown, rather than silently ignored.

// serviceLinkProtocols are the Service port protocols, as Kubernetes
// spells them in the variables' names.
var serviceLinkProtocols = []string{"TCP", "UDP", "SCTP"}

// ServiceLinkVariables returns the entries of environ (in the form of
// [os.Environ]) that Kubernetes injects for a Service named "stepup" and
// that [Load] therefore ignores, as NAME=VALUE, in their order. stepupd
// logs them at debug level.
func ServiceLinkVariables(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if isServiceLink(name, value) {
			out = append(out, kv)
		}
	}
	return out
}

// isServiceLink reports whether name=value is one of the variables the
// kubelet writes for the Service "stepup".
func isServiceLink(name, value string) bool {
	rest, ok := strings.CutPrefix(name, envPrefix)
	if !ok {
		return false
	}
	switch {
	case rest == "SERVICE_HOST":
		return isIP(value)
	case rest == "SERVICE_PORT":
		return isPort(value)
	case strings.HasPrefix(rest, "SERVICE_PORT_"):
		return isPortName(rest[len("SERVICE_PORT_"):]) && isPort(value)
	case rest == "PORT":
		_, _, ok := parseLinkURL(value)
		return ok
	case strings.HasPrefix(rest, "PORT_"):
		return isPortVariable(rest[len("PORT_"):], value)
	}
	return false
}

// isPortVariable checks the variables of one port, "<port>_<PROTO>" and
// that plus "_PROTO", "_PORT" or "_ADDR", with the part after
// "STEPUP_PORT_" in rest.
func isPortVariable(rest, value string) bool {
	port, rest, ok := strings.Cut(rest, "_")
	if !ok || !isPort(port) {
		return false
	}
	proto, suffix, _ := strings.Cut(rest, "_")
	if !isProtocol(proto) {
		return false
	}
	switch suffix {
	case "":
		p, pt, ok := parseLinkURL(value)
		return ok && p == strings.ToLower(proto) && pt == port
	case "PROTO":
		return value == strings.ToLower(proto)
	case "PORT":
		return value == port
	case "ADDR":
		return isIP(value)
	}
	return false
}

// parseLinkURL parses "tcp://10.0.0.1:8080" (or "tcp://[fd00::1]:8080",
// and the unbracketed IPv6 form older kubelets wrote) into its protocol and
// port.
func parseLinkURL(s string) (proto, port string, ok bool) {
	proto, hostPort, ok := strings.Cut(s, "://")
	if !ok || !isProtocol(strings.ToUpper(proto)) || proto != strings.ToLower(proto) {
		return "", "", false
	}
	i := strings.LastIndexByte(hostPort, ':')
	if i < 0 {
		return "", "", false
	}
	host, port := hostPort[:i], hostPort[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if !isIP(host) || !isPort(port) {
		return "", "", false
	}
	return proto, port, true
}

func isProtocol(s string) bool { return slices.Contains(serviceLinkProtocols, s) }

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isPort accepts 1-65535 written as Kubernetes writes it (no sign, no
// leading zero).
func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == s
}

// isPortName accepts a Service port name as the kubelet spells it: an
// IANA service name (lower-case letters, digits and '-', at most 15) upper-
// cased with '-' turned into '_'. It must hold a letter.
func isPortName(s string) bool {
	if s == "" || len(s) > 15 || s[0] == '_' || s[len(s)-1] == '_' {
		return false
	}
	letter := false
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			letter = true
		case r >= '0' && r <= '9', r == '_':
		default:
			return false
		}
	}
	return letter
}
