// Command gendemo writes the demo GeoLite2-Country database that package
// geoip embeds (see OpenDemo). It maps the documentation address ranges
// (RFC 5737, RFC 3849) to a few countries so a server without MaxMind's
// databases still answers country lookups for examples and tests. The
// table is geoiptest.DemoNetworks.
//
// Usage:
//
//	go run ./internal/gendemo -o demo-country.mmdb
//
// The output is deterministic: the same table always yields the same bytes.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/stepup-auth/stepup/internal/geoiptest"
)

func main() {
	out := flag.String("o", "demo-country.mmdb", "output `file`")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := geoiptest.Build(geoiptest.TypeCountry, geoiptest.DemoNetworks)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
