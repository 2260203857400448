// Package risk scores a login attempt by how unlike the user's own past
// logins it is, following the statistical model of Freeman et al. ("Who Are
// You? A Statistical Approach to Measuring User Authenticity", NDSS 2016) in
// the form evaluated and published by Wiefling et al. (das-group
// rba-algorithm), scoring each hierarchical feature by back-off to the most
// specific level the user has had rather than by the reference code's
// weighted sums (see featureTerm and the README for why and the evidence).
//
// The package owns three pure steps:
//
//   - [Extract] turns a login (IP, user agent, device id, GeoIP answer) into
//     hierarchical [Features]: named levels such as "ip.addr", "ip.net",
//     "ip.asn" and "ip.cc", most specific first, each with a raw value.
//   - [Score] combines the counts the caller looked up for those values (the
//     user's history and the tenant-wide counts) with velocity counters,
//     the last login's place and list memberships into a [Result]: the log
//     risk, a 0–100 score and the named [Signal]s that drove it.
//   - [ScoreLevel] maps a score onto low, medium or high for the tenant's
//     thresholds.
//
// The package does no I/O: it never reads Redis, GeoIP databases or the
// clock, and it never stores anything. Raw feature values (an IP address, a
// user-agent string, a device id) leave the package only inside [Level]
// values, which the engine hashes with a keyed HMAC before storing them;
// signal details carry only country codes, AS numbers and browser or OS
// names, never an IP address.
//
// All probabilities are combined in log space (base 10), so scores neither
// underflow nor overflow however many features or logins there are.
package risk
