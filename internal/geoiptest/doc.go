// Package geoiptest writes small MaxMind DB files (GeoLite2 Country, City
// and ASN shapes) with mmdbwriter, from a table of networks a test gives,
// so tests exercise the real geoip2 reader without shipping MaxMind's
// databases.
//
// It is for tests and the demo-database generator only; nothing in a
// production path imports it.
package geoiptest
