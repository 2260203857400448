package risk

import (
	"fmt"
	"math"
	"time"
)

// Place is where and when a successful login happened, as far as a City
// database can tell.
type Place struct {
	At       time.Time
	Lat, Lon float64 // degrees
	Country  string  // ISO code, "" when unknown
}

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// DistanceKm returns the great-circle (haversine) distance between two
// points given in degrees.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(1, a)))
}

// travel is the outcome of comparing the last login's place with this one.
type travel struct {
	km, kmh    float64
	impossible bool
}

// checkTravel decides whether getting from last to now at the given time
// was impossible. Short hops never are, however fast, because GeoIP places
// mobile carriers and VPN exits hundreds of kilometres off.
func checkTravel(last, now Place, o Options) travel {
	km := DistanceKm(last.Lat, last.Lon, now.Lat, now.Lon)
	if km < o.TravelMinDistanceKm {
		return travel{km: km}
	}
	hours := now.At.Sub(last.At).Hours()
	if hours <= 0 {
		// Simultaneous (or clock-skewed) logins far apart: no speed is
		// possible.
		return travel{km: km, kmh: math.Inf(1), impossible: true}
	}
	kmh := km / hours
	return travel{km: km, kmh: kmh, impossible: kmh > o.TravelSpeedKmh}
}

func (t travel) detail(from, to string) string {
	if from == "" {
		from = UnknownCountry
	}
	if to == "" {
		to = UnknownCountry
	}
	if math.IsInf(t.kmh, 1) {
		return fmt.Sprintf("%s to %s: %.0f km at once", from, to, t.km)
	}
	return fmt.Sprintf("%s to %s: %.0f km at %.0f km/h", from, to, t.km, t.kmh)
}
