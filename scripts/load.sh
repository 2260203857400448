#!/usr/bin/env bash
# Load test of a real stepupd on a real, throwaway redis-server.
#
# Builds stepupd and stepup-load, starts redis-server (no persistence) and
# stepupd on free loopback ports, creates a tenant and an app key through
# the operator API, runs stepup-load (extra arguments are passed to it,
# e.g. scripts/load.sh -users 2000 -d 10s), then reports Redis memory:
# one typical user's keys, a user with a full 50-value history, the
# tenant-wide counts and the login records. Everything it started is
# stopped and removed on exit.
#
# Needs go, redis-server, redis-cli and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/lib.sh
need_tools go redis-server redis-cli curl

echo "building stepupd and stepup-load"
go build ${STEPUPD_TAGS:+-tags "$STEPUPD_TAGS"} -o "$work/stepupd" ./cmd/stepupd
go build -o "$work/stepup-load" ./cmd/stepup-load

start_redis
redis_port=${masters[0]}
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

start_stepupd "${redis_env[@]}"
echo "stepupd on $api, redis-server on 127.0.0.1:$redis_port, tenant $tenant"

prefix="load-"
# stepup-load prints the Redis CPU time of each measured phase itself.
"$work/stepup-load" -url "$api" -key "$app_key" -prefix "$prefix" -ceiling-redis "127.0.0.1:$redis_port" "$@"
echo
echo "Redis scripts over the whole run (seeding included):"
rcli info commandstats | awk -F'[:,=]' '/^cmdstat_(evalsha|eval):/ {printf "  %-8s %10s calls %8s µs per call\n", substr($1, 9), $3, $7}'

# A user with a full history: 60 logins, each from a new /24, browser
# version and device, so every level that can hold 50 distinct values
# (address, network, user agent, browser, device) holds 50.
full_user="full-history-user"
logins=""
for k in $(seq 1 60); do
	at=$(date -u -d "-$((61 - k)) days" +%Y-%m-%dT%H:%M:%SZ)
	logins+="${logins:+,}{\"ip\":\"203.$((k / 256)).$((k % 256)).7\",\"user_agent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/$((60 + k)).0.0.0 Safari/537.36\",\"device_id\":\"device-$k\",\"at\":\"$at\"}"
done
curl -sf -X POST "$api/v1/users/$full_user/history" -H "Authorization: Bearer $app_key" \
	-H 'Content-Type: application/json' -d "{\"logins\":[$logins]}" >/dev/null

# mem_sum PATTERN prints "<keys> <bytes>": the keys matching PATTERN and
# the sum of their MEMORY USAGE (SAMPLES 0: every element counted).
mem_sum() {
	rcli --scan --pattern "$1" | awk '{print "MEMORY USAGE " $0 " SAMPLES 0"}' | rcli | awk '{n++; s += $1} END {printf "%d %d\n", n, s}'
}
report() {
	local keys bytes
	read -r keys bytes < <(mem_sum "$2")
	printf '  %-46s %6d keys %12d bytes (%.1f KiB)\n' "$1" "$keys" "$bytes" "$(awk -v b="$bytes" 'BEGIN {print b / 1024}')"
}

typical="${prefix}000000"
echo
echo "Redis memory (MEMORY USAGE ... SAMPLES 0):"
report "typical user ($typical)" "su:*:u:$tenant:$(b64url "$typical"):*"
report "user with a full 50-value history" "su:*:u:$tenant:$(b64url "$full_user"):*"
report "tenant-wide counts and stats" "su:*:t:$tenant:*"
report "login records (kept for feedback)" "su:*:lg:*"
echo "  per key of the full-history user:"
rcli --scan --pattern "su:*:u:$tenant:$(b64url "$full_user"):*" | sort | while read -r key; do
	printf '    %-70s %8s bytes\n' "${key##*:$(b64url "$full_user"):}" "$(rcli MEMORY USAGE "$key" SAMPLES 0)"
done
printf '  %-46s %s\n' "whole server (used_memory)" "$(rcli info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')"
