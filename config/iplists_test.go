package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestLoadIPLists(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     []string
		want    []IPList
		wantErr string
	}{
		{name: "yaml", yaml: `
risk:
  ip_lists:
    - name: tor
      file: /lists/tor.netset
      action: challenge
    - {name: hosting, file: "/lists/dc.netset", action: score, factor: 50}
    - {name: drop, file: /lists/drop.txt, action: deny, factor: 2.5}
`, want: []IPList{
			{Name: "tor", File: "/lists/tor.netset", Action: "challenge"},
			{Name: "hosting", File: "/lists/dc.netset", Action: "score", Factor: 50},
			{Name: "drop", File: "/lists/drop.txt", Action: "deny", Factor: 2.5},
		}},
		{name: "empty list is the default", yaml: "risk:\n  ip_lists: []\n"},
		{name: "environment wins", yaml: "risk:\n  ip_lists: [{name: a, file: /a, action: deny}]\n",
			env:  []string{"STEPUP_RISK_IP_LISTS=tor:challenge:/lists/tor.netset, c:score:C:/x"},
			want: []IPList{{Name: "tor", File: "/lists/tor.netset", Action: "challenge"}, {Name: "c", File: "C:/x", Action: "score"}}},
		{name: "unknown key", yaml: "risk:\n  ip_lists: [{name: a, path: /a}]\n",
			wantErr: `risk.ip_lists: entry 1: path: unknown key "path"`},
		{name: "not a mapping", yaml: "risk:\n  ip_lists: [/a]\n",
			wantErr: "risk.ip_lists: entry 1 must be a mapping of name, file, action (and factor), got a string"},
		{name: "not a list", yaml: "risk:\n  ip_lists: /a\n",
			wantErr: "risk.ip_lists: must be a list of {name, file, action} mappings, got a string"},
		{name: "factor not a number", yaml: "risk:\n  ip_lists: [{name: a, factor: high}]\n",
			wantErr: "risk.ip_lists: entry 1: factor: must be a number, got high"},
		{name: "bad environment entry", env: []string{"STEPUP_RISK_IP_LISTS=tor:/x"},
			wantErr: `STEPUP_RISK_IP_LISTS (risk.ip_lists): entry 1 must be name:action:file, got "tor:/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "stepup.yaml", tt.yaml)
			}
			got, err := Load(path, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Risk.IPLists, tt.want) {
				t.Errorf("ip_lists = %+v, want %+v", got.Risk.IPLists, tt.want)
			}
		})
	}
}
