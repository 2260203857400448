package config

import (
	"slices"
	"strings"
	"testing"
)

// kubeEnv is what the kubelet gives a pod for a Service named stepup with
// cluster IP 10.0.0.1 and TCP port 8080 named "http" (pkg/kubelet/envvars).
var kubeEnv = []string{
	"STEPUP_SERVICE_HOST=10.0.0.1",
	"STEPUP_SERVICE_PORT=8080",
	"STEPUP_SERVICE_PORT_HTTP=8080",
	"STEPUP_PORT=tcp://10.0.0.1:8080",
	"STEPUP_PORT_8080_TCP=tcp://10.0.0.1:8080",
	"STEPUP_PORT_8080_TCP_PROTO=tcp",
	"STEPUP_PORT_8080_TCP_PORT=8080",
	"STEPUP_PORT_8080_TCP_ADDR=10.0.0.1",
}

func TestServiceLinkVariables(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want bool // a Kubernetes variable, skipped by Load
	}{
		{"host", "STEPUP_SERVICE_HOST=10.0.0.1", true},
		{"host ipv6", "STEPUP_SERVICE_HOST=fd00:10:96::1", true},
		{"port", "STEPUP_SERVICE_PORT=8080", true},
		{"named port", "STEPUP_SERVICE_PORT_HTTP=8080", true},
		{"named port with dash", "STEPUP_SERVICE_PORT_HTTP_API=8443", true},
		{"named port with digits", "STEPUP_SERVICE_PORT_H2C=8081", true},
		{"docker link", "STEPUP_PORT=tcp://10.0.0.1:8080", true},
		{"docker link ipv6", "STEPUP_PORT=tcp://[fd00:10:96::1]:8080", true},
		{"docker link ipv6 as old kubelets wrote it", "STEPUP_PORT=tcp://fd00:10:96::1:8080", true},
		{"docker link udp", "STEPUP_PORT=udp://10.0.0.1:53", true},
		{"port url", "STEPUP_PORT_8080_TCP=tcp://10.0.0.1:8080", true},
		{"port proto", "STEPUP_PORT_8080_TCP_PROTO=tcp", true},
		{"port port", "STEPUP_PORT_8080_TCP_PORT=8080", true},
		{"port addr", "STEPUP_PORT_8080_TCP_ADDR=10.0.0.1", true},
		{"second port sctp", "STEPUP_PORT_9090_SCTP=sctp://10.0.0.1:9090", true},
		{"second port udp addr", "STEPUP_PORT_53_UDP_ADDR=10.0.0.1", true},

		// Near misses: still refused as unknown.
		{"listen port guessed", "STEPUP_PORT=8080", false},
		{"host name, not an ip", "STEPUP_SERVICE_HOST=stepup.default.svc", false},
		{"port not a number", "STEPUP_SERVICE_PORT=http", false},
		{"port out of range", "STEPUP_SERVICE_PORT=70000", false},
		{"port zero-padded", "STEPUP_SERVICE_PORT=08080", false},
		{"port name lower-case", "STEPUP_SERVICE_PORT_http=8080", false},
		{"port name all digits", "STEPUP_SERVICE_PORT_8080=8080", false},
		{"port name too long", "STEPUP_SERVICE_PORT_ABCDEFGHIJKLMNOP=8080", false},
		{"url of another protocol", "STEPUP_PORT=http://10.0.0.1:8080", false},
		{"url protocol upper-case", "STEPUP_PORT=TCP://10.0.0.1:8080", false},
		{"url without port", "STEPUP_PORT=tcp://10.0.0.1", false},
		{"url port differs from name", "STEPUP_PORT_8080_TCP=tcp://10.0.0.1:9090", false},
		{"url protocol differs from name", "STEPUP_PORT_8080_TCP=udp://10.0.0.1:8080", false},
		{"proto differs from name", "STEPUP_PORT_8080_TCP_PROTO=udp", false},
		{"port differs from name", "STEPUP_PORT_8080_TCP_PORT=9090", false},
		{"unknown protocol", "STEPUP_PORT_8080_HTTP=http://10.0.0.1:8080", false},
		{"protocol lower-case in name", "STEPUP_PORT_8080_tcp_ADDR=10.0.0.1", false},
		{"unknown suffix", "STEPUP_PORT_8080_TCP_HOST=10.0.0.1", false},
		{"another service's variable", "STEPUP_REDIS_SERVICE_HOST=10.0.0.2", false},
		{"a misspelt setting", "STEPUP_REDIS_URI=redis://10.0.0.2:6379", false},
		{"not ours", "KUBERNETES_SERVICE_HOST=10.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServiceLinkVariables([]string{tt.env})
			if (len(got) == 1) != tt.want {
				t.Errorf("ServiceLinkVariables(%q) = %q, want skipped=%v", tt.env, got, tt.want)
			}
			_, err := Load("", []string{tt.env})
			name, _, _ := strings.Cut(tt.env, "=")
			switch {
			case tt.want && err != nil:
				t.Errorf("Load(%q) = %v, want it skipped", tt.env, err)
			case !tt.want && strings.HasPrefix(name, envPrefix) && (err == nil || !strings.Contains(err.Error(), "unknown variable "+name)):
				t.Errorf("Load(%q) = %v, want unknown variable %s", tt.env, err, name)
			}
		})
	}
}

// TestLoadInKubernetes is a whole pod's environment: the Service's
// variables beside real settings and another Service's; only the
// misspelt setting is an error.
func TestLoadInKubernetes(t *testing.T) {
	env := append(slices.Clone(kubeEnv),
		"STEPUP_LISTEN=:8080",
		"KUBERNETES_SERVICE_HOST=10.0.0.1",
		"KUBERNETES_PORT=tcp://10.0.0.1:443",
		"HOME=/root",
	)
	cfg, err := Load("", env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Listen != ":8080" {
		t.Errorf("listen = %q, want :8080", cfg.Listen)
	}
	if got := ServiceLinkVariables(env); !slices.Equal(got, kubeEnv) {
		t.Errorf("ServiceLinkVariables = %q, want %q", got, kubeEnv)
	}

	_, err = Load("", append(env, "STEPUP_LISTEN_PORT=8080"))
	if err == nil || err.Error() != "config: environment: unknown variable STEPUP_LISTEN_PORT" {
		t.Errorf("Load with a misspelt setting = %v, want only it reported", err)
	}
}
