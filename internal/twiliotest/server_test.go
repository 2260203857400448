package twiliotest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stepup-auth/stepup/internal/twiliotest"
)

func post(t *testing.T, srv *twiliotest.Server, sid, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/2010-04-01/Accounts/"+sid+"/Messages.json", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&doc)
	return res.StatusCode, doc
}

func TestServer(t *testing.T) {
	ok := url.Values{"To": {"+61412345156"}, "From": {"+15005550006"}, "Body": {"Your code is 123456"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range ok {
			f[key] = vals
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name       string
		sid, user  string
		pass       string
		form       url.Values
		script     []twiliotest.Reply
		wantStatus int
		wantCode   float64
	}{
		{"accepted", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, ok, nil, 201, 0},
		{"wrong token", twiliotest.AccountSID, twiliotest.AccountSID, "nope", ok, nil, 401, 20003},
		{"other account", "AC00000000000000000000000000000002", twiliotest.AccountSID, twiliotest.AuthToken, ok, nil, 403, 20003},
		{"no to", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, with("To", ""), nil, 400, 21604},
		{"bad to", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, with("To", "0412"), nil, 400, 21211},
		{"no body", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, with("Body", ""), nil, 400, 21602},
		{"no sender", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, with("From", ""), nil, 400, 21603},
		{"scripted", twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, ok, []twiliotest.Reply{{Status: 500, Code: 20500}}, 500, 20500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := twiliotest.New(t, twiliotest.Options{})
			srv.Reply(tt.script...)
			status, doc := post(t, srv, tt.sid, tt.user, tt.pass, tt.form)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status, tt.wantStatus, doc)
			}
			if tt.wantStatus != 201 {
				if doc["code"] != tt.wantCode {
					t.Errorf("code = %v, want %v", doc["code"], tt.wantCode)
				}
				if len(srv.Messages()) != 0 {
					t.Error("a refused message was recorded")
				}
				return
			}
			sid, _ := doc["sid"].(string)
			if !strings.HasPrefix(sid, "SM") || len(sid) != 34 || doc["status"] != "queued" ||
				doc["to"] != "+61412345156" || doc["account_sid"] != twiliotest.AccountSID {
				t.Errorf("message resource = %v", doc)
			}
			if m := srv.Messages(); len(m) != 1 || m[0].SID != sid || m[0].Code() != "123456" {
				t.Errorf("messages = %+v", m)
			}
		})
	}
}

func TestScriptThenNormal(t *testing.T) {
	srv := twiliotest.New(t, twiliotest.Options{})
	srv.Reply(twiliotest.Reply{Status: 500, Code: 20500}, twiliotest.Reply{Status: 400, Code: 21211})
	form := url.Values{"To": {"+61412345156"}, "From": {"+15005550006"}, "Body": {"x"}}
	var got []int
	for range 3 {
		s, _ := post(t, srv, twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, form)
		got = append(got, s)
	}
	if got[0] != 500 || got[1] != 400 || got[2] != 201 {
		t.Errorf("statuses = %v, want [500 400 201]", got)
	}
	if r := srv.Requests(); len(r) != 3 || r[1].Code != 21211 {
		t.Errorf("requests = %+v", r)
	}
}

func TestWaitMessages(t *testing.T) {
	srv := twiliotest.New(t, twiliotest.Options{})
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			form := url.Values{"To": {"+6141234500" + string(rune('0'+i))}, "From": {"+15005550006"}, "Body": {"code 98765" + string(rune('0'+i))}}
			post(t, srv, twiliotest.AccountSID, twiliotest.AccountSID, twiliotest.AuthToken, form)
		})
	}
	msgs := srv.WaitMessages(t, 5, 0)
	wg.Wait()
	if len(msgs) < 5 {
		t.Fatalf("%d messages", len(msgs))
	}
	if m, ok := srv.LastMessageTo("+61412345003"); !ok || m.Code() != "987653" {
		t.Errorf("LastMessageTo = %+v, %v", m, ok)
	}
}

func TestExtractCode(t *testing.T) {
	tests := []struct{ body, want string }{
		{"Your Acme code is 123456. It expires in 5 minutes.", "123456"},
		{"123456 is your code", "123456"},
		{"code: 0042", "0042"},
		{"no code here", ""},
		{"valid 5 minutes", ""},
	}
	for _, tt := range tests {
		if got := twiliotest.ExtractCode(tt.body); got != tt.want {
			t.Errorf("ExtractCode(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
