package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/engine"
)

// The last place is stored short (a value over 64 bytes costs the whole
// history hash Redis' compact encoding) and reads back; the JSON of
// before still reads.
func TestLastPlace(t *testing.T) {
	at := time.Date(2026, 12, 7, 15, 38, 10, 745109090, time.UTC)
	tests := []struct {
		name  string
		place engine.Place
		want  engine.Place
	}{
		{"located", engine.Place{At: at, Country: "NZ", Lat: -36.848461, Lon: 174.763336, HasLoc: true},
			engine.Place{At: at.Truncate(time.Second), Country: "NZ", Lat: -36.8485, Lon: 174.7633, HasLoc: true}},
		{"country only", engine.Place{At: at, Country: "DE"}, engine.Place{At: at.Truncate(time.Second), Country: "DE"}},
		{"nowhere", engine.Place{At: at}, engine.Place{At: at.Truncate(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := engine.LoginRecord{Place: &tt.place}
			s := lastPlace(rec)
			if len(s) > 64 {
				t.Errorf("%q is %d bytes, over Redis' compact hash value bound", s, len(s))
			}
			got, ok := parsePlace(s)
			if !ok || got != tt.want {
				t.Errorf("parsePlace(%q) = %+v, %v; want %+v", s, got, ok, tt.want)
			}
			old, ok := parsePlace(lastPlaceJSON(rec))
			if !ok || !old.At.Equal(tt.place.At) || old.Lat != tt.place.Lat || old.Country != tt.place.Country {
				t.Errorf("the JSON of before read as %+v, %v", old, ok)
			}
		})
	}
	if lastPlace(engine.LoginRecord{}) != "" {
		t.Error("a login without a place left one")
	}
	for _, bad := range []string{"x|DE", "1|DE|a|b", "1", strings.Repeat("|", 5), "{broken"} {
		if _, ok := parsePlace(bad); ok {
			t.Errorf("parsePlace(%q) accepted", bad)
		}
	}
}
