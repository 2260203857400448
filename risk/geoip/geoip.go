package geoip

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/stepup-auth/stepup/risk"
)

// Database kinds, as reported by [Reader.Loaded].
const (
	KindCountry = "country"
	KindCity    = "city"
	KindASN     = "asn"
)

// Options names the database files. Any may be empty; that database's
// fields then drop out of lookups.
type Options struct {
	CountryDB string // GeoIP2/GeoLite2 Country (or City) database
	CityDB    string // GeoIP2/GeoLite2 City database: country, city, location
	ASNDB     string // GeoLite2 ASN (or GeoIP2 ISP) database
}

// Bytes holds databases already in memory, for [OpenBytes]. Any may be nil.
// The slices are used in place and must not be modified afterwards.
type Bytes struct {
	Country, City, ASN []byte
}

// Reader looks addresses up in the loaded databases.
type Reader struct {
	country, city, asn *geoip2.Reader
}

// Open opens the databases named in opts (memory-mapped). It fails if a
// named file cannot be read or holds the wrong kind of database.
func Open(opts Options) (*Reader, error) {
	return open(
		source{KindCountry, opts.CountryDB, nil},
		source{KindCity, opts.CityDB, nil},
		source{KindASN, opts.ASNDB, nil},
	)
}

// OpenBytes opens databases held in memory, such as embedded ones.
func OpenBytes(b Bytes) (*Reader, error) {
	return open(
		source{KindCountry, "", b.Country},
		source{KindCity, "", b.City},
		source{KindASN, "", b.ASN},
	)
}

type source struct {
	kind string
	path string
	data []byte
}

func (s source) empty() bool { return s.path == "" && s.data == nil }

func (s source) String() string {
	if s.path != "" {
		return fmt.Sprintf("%s database %s", s.kind, s.path)
	}
	return s.kind + " database"
}

func open(country, city, asn source) (*Reader, error) {
	r := &Reader{}
	for _, s := range []struct {
		src source
		dst **geoip2.Reader
	}{{country, &r.country}, {city, &r.city}, {asn, &r.asn}} {
		if s.src.empty() {
			continue
		}
		db, err := openOne(s.src)
		if err != nil {
			return nil, errors.Join(err, r.Close())
		}
		*s.dst = db
	}
	return r, nil
}

func openOne(s source) (*geoip2.Reader, error) {
	var (
		db  *geoip2.Reader
		err error
	)
	if s.path != "" {
		db, err = geoip2.Open(s.path)
	} else {
		db, err = geoip2.OpenBytes(s.data)
	}
	if err != nil {
		if db != nil { // opened, but of a type geoip2 does not know
			_ = db.Close()
		}
		return nil, fmt.Errorf("geoip: open %s: %w", s, err)
	}
	// Probe the method this kind needs, so a database in the wrong slot
	// fails at startup instead of silently answering nothing.
	probe := netip.IPv6Unspecified()
	switch s.kind {
	case KindCountry:
		_, err = db.Country(probe)
	case KindCity:
		_, err = db.City(probe)
	case KindASN:
		_, err = db.ASN(probe)
	}
	var wrong geoip2.InvalidMethodError
	if errors.As(err, &wrong) {
		_ = db.Close()
		return nil, fmt.Errorf("geoip: %s holds a %s database", s, wrong.DatabaseType)
	}
	return db, nil
}

// Lookup returns what the databases know about ip. The country comes from
// the City database when one is loaded and knows the address, else from
// the Country database; the location and city name from the City
// database; the AS from the ASN database. Unknown fields stay zero.
func (r *Reader) Lookup(ip netip.Addr) risk.GeoInfo {
	var g risk.GeoInfo
	ip = ip.Unmap().WithZone("")
	if r == nil || !ip.IsValid() {
		return g
	}
	// Lookup errors mean a corrupt record; the login is still scored on
	// what the other databases know, so they are not returned.
	if r.city != nil {
		if rec, err := r.city.City(ip); err == nil {
			g.Country = rec.Country.ISOCode
			g.City = rec.City.Names.English
			if rec.Location.HasCoordinates() {
				g.Lat, g.Lon, g.HasLocation = *rec.Location.Latitude, *rec.Location.Longitude, true
			}
		}
	}
	if g.Country == "" && r.country != nil {
		if rec, err := r.country.Country(ip); err == nil {
			g.Country = rec.Country.ISOCode
		}
	}
	if r.asn != nil {
		if rec, err := r.asn.ASN(ip); err == nil && rec.AutonomousSystemNumber <= 1<<32-1 {
			g.ASN = uint32(rec.AutonomousSystemNumber)
			g.ASNOrg = rec.AutonomousSystemOrganization
		}
	}
	return g
}

// Loaded names the loaded databases (KindCountry, KindCity, KindASN, in
// that order), for readiness reports.
func (r *Reader) Loaded() []string {
	var kinds []string
	if r == nil {
		return kinds
	}
	for _, k := range []struct {
		kind string
		db   *geoip2.Reader
	}{{KindCountry, r.country}, {KindCity, r.city}, {KindASN, r.asn}} {
		if k.db != nil {
			kinds = append(kinds, k.kind)
		}
	}
	return kinds
}

// Close releases the databases. The Reader must not be used afterwards.
func (r *Reader) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, db := range []**geoip2.Reader{&r.country, &r.city, &r.asn} {
		if *db != nil {
			errs = append(errs, (*db).Close())
			*db = nil
		}
	}
	return errors.Join(errs...)
}
