// Command stepup-load measures what a login evaluation costs on a running
// stepupd, next to a bare gin JSON endpoint on the same machine.
//
// It starts no stepupd itself: -url names a running one (loopback only, so
// it can never load someone else's server by mistake) and -key an app key
// of a tenant made for the purpose. It then
//
//  1. seeds -users users with about twenty past logins each from a home
//     /24 and one or two devices (POST /v1/users/{id}/history);
//  2. drives POST /v1/logins/evaluate at a fixed concurrency -c for -d
//     (or, with -rate, offers that many requests a second with at most -c
//     in flight, each timed from when it was due: latency at equal load),
//     each request for a random user, 90 % from an address the user's
//     history knows and 10 % from a new one;
//  3. drives the baseline, POST /echo on -baseline-url or, by default, on
//     an in-process gin server it starts on 127.0.0.1:0 that decodes and
//     re-encodes a body of the same shape, at the same concurrency and for
//     the same time;
//  4. with -ceiling-redis host:port (loopback), drives the read+write
//     ceiling on the same in-process server: the baseline plus one read
//     and one write round trip to that Redis, each a trivial Lua script —
//     the least any evaluation must do;
//
// and prints requests per second, p50, p99 and errors for each, and
// evaluate's ratios to the others; with -ceiling-redis it also prints the
// Redis server's CPU time per request of the evaluate and ceiling phases
// (from INFO cpu, over the measured window), which is what the store's
// scripts cost beyond the least. The phases run one after the other so they do not compete for
// the CPU; each starts with an unmeasured warm-up.
//
// The evaluated users are not enrolled, so the engine allows and learns
// every login: the read script, the scoring and the write script with the
// history update, which is the path every login takes.
//
// With -populate it measures nothing itself: after seeding it gives every
// user a profile, an SMS factor (enrolment challenge and verify, the code
// read from a fake Twilio Messages API it serves on -twilio-listen, which
// stepupd's sms.twilio.api_base_url must name) and, for a share -remember
// of them, a device remembered after a challenged login from a new address
// and device; then it stops. scripts/memory.sh uses it to fill Redis with
// typical users before reading its memory.
//
// scripts/load.sh builds stepupd and this command, starts a throwaway
// redis-server and stepupd, and runs it.
package main
