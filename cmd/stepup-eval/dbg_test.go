package main

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/stepup-auth/stepup/internal/evalset"
)

func TestDbg(t *testing.T) {
	set := evalset.Generate(evalset.Options{Seed: 1, Users: 300})
	geo, _ := set.World.OpenGeoIP(false)
	r, err := replay(context.Background(), set, replayOptions{Geo: geo, Seed: 1, IgnoreDevice: true})
	if err != nil { t.Fatal(err) }
	var tg []outcome
	for _, o := range r.Outcomes { if o.Kind == evalset.Targeted { tg = append(tg, o) } }
	sort.Slice(tg, func(i, j int) bool { return tg[i].Score < tg[j].Score })
	for _, o := range tg[:8] { fmt.Println(o.Score, o.Past, o.Dbg) }
	// history of the first user
	u := tg[0].Dbg[11:20]
	fmt.Println("user", u)
	for i, l := range set.Logins { if l.User == u { fmt.Println(r.Outcomes[i].Score, r.Outcomes[i].Past, l.Kind, l.Context, r.Outcomes[i].Dbg) } }
}
