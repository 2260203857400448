#!/usr/bin/env bash
# Redis memory per user and per tenant, measured on real Redis.
#
#   scripts/memory.sh [-cluster] [-users N] [-remember F]
#
# Builds stepupd and stepup-load, starts a throwaway redis-server (or, with
# -cluster, a Redis Cluster of three masters) and stepupd on free loopback
# ports, creates a tenant, reads INFO memory, then populates N users
# (default 100000) through the HTTP API with stepup-load -populate: twenty
# past logins each (history import), a profile with an e-mail address, an
# SMS factor (enrolment challenge, code read from stepup-load's fake
# Twilio, verify: backup codes, audit events, the "turned on" mail) and,
# for a share F (default 0.3), a challenged login from a new device
# verified with remember_device. It then reads INFO memory again and
# MEMORY USAGE ... SAMPLES 0 of a sample of every kind of key (every key
# is scanned and classified by its name; up to 2,000 of each kind are
# measured) and prints the table of the README's "Scaling" section.
# Everything it started is stopped and removed on exit.
#
# Needs go, redis-server, redis-cli and curl. 100,000 users take several
# minutes; it is not part of make test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster=0
users=100000
remember=0.3
while [[ $# -gt 0 ]]; do
	case $1 in
	-cluster) cluster=1 ;;
	-users) users=$2; shift ;;
	-remember) remember=$2; shift ;;
	*) echo "usage: $0 [-cluster] [-users N] [-remember F]" >&2; exit 2 ;;
	esac
	shift
done

source scripts/lib.sh
need_tools go redis-server redis-cli curl

echo "building stepupd and stepup-load"
go build -o "$work/stepupd" ./cmd/stepupd
go build -o "$work/stepup-load" ./cmd/stepup-load

# Redis: one node, or three masters (no replicas: a replica holds the same
# bytes again).
if [[ $cluster -eq 1 ]]; then
	start_redis --cluster
	shape="3-master cluster"
else
	start_redis
	shape="single node"
fi
rcli() { redis-cli -h 127.0.0.1 -p "$@"; }

# used_memory and keys summed over the masters.
used_memory() {
	local p sum=0
	for p in "${masters[@]}"; do
		sum=$((sum + $(rcli "$p" info memory | sed -n 's/^used_memory:\([0-9]*\)\r$/\1/p')))
	done
	echo "$sum"
}
db_keys() {
	local p sum=0
	for p in "${masters[@]}"; do sum=$((sum + $(rcli "$p" dbsize))); done
	echo "$sum"
}

twilio_port=$(free_port)
TENANT_NAME="memory test" start_stepupd "${redis_env[@]}" \
	STEPUP_SMS_DRIVER=twilio \
	STEPUP_SMS_TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 \
	STEPUP_SMS_TWILIO_AUTH_TOKEN=0123456789abcdef0123456789abcdef \
	STEPUP_SMS_TWILIO_FROM=+15005550006 \
	STEPUP_SMS_TWILIO_API_BASE_URL="http://127.0.0.1:$twilio_port" \
	STEPUP_MAIL_FROM=security@example.test \
	STEPUP_DELIVERY_WORKERS=32 \
	STEPUP_LIMITS_SMS_PER_COUNTRY_HOUR=10000000 \
	STEPUP_LIMITS_SMS_PER_TENANT_HOUR=10000000 \
	STEPUP_LIMITS_CHALLENGES_PER_IP_HOUR=10000000
echo "stepupd on $api, redis ($shape) on ports ${masters[*]}, tenant $tenant"

before=$(used_memory)
keys_before=$(db_keys)
began=$(date +%s)
"$work/stepup-load" -url "$api" -key "$app_key" -prefix "mem-" -users "$users" -c 64 \
	-populate -remember "$remember" -twilio-listen "127.0.0.1:$twilio_port"
# The last codes' jobs finish; then the numbers hold still.
sleep 2
after=$(used_memory)
keys_after=$(db_keys)
echo "populated in $(($(date +%s) - began)) s"

echo
echo "Redis ($shape), $users users:"
awk -v b="$before" -v a="$after" -v kb="$keys_before" -v ka="$keys_after" -v u="$users" 'BEGIN {
	printf "  used_memory before %.1f MiB, after %.1f MiB: %.1f MiB for %d users = %.0f bytes per user (all in)\n",
		b / 1048576, a / 1048576, (a - b) / 1048576, u, (a - b) / u
	printf "  keys before %d, after %d: %.1f keys per user\n", kb, ka, (ka - kb) / u
}'

# Classify every key by its name (store/keyspace's layout) and measure a
# sample of each kind.
for p in "${masters[@]}"; do
	rcli "$p" --scan | awk -v p="$p" '{print p, $0}'
done >"$work/keys"
awk '
function kind(k,   f, n) {
	n = split(k, f, ":")
	if (f[2] == "{g}") return "installation:" f[3]
	if (f[2] == "{rl") return "ratelimit:" f[3]
	if (f[3] == "u") return "user:" f[6]
	if (f[3] == "t") return "tenant:" f[5]
	return "shard:" f[3]
}
{ print $1, kind($2), $2 }' "$work/keys" | sort -k2,2 -s >"$work/classified"
awk '{c[$2]++} END {for (k in c) print k, c[k]}' "$work/classified" >"$work/counts"
# Every n-th key of a kind, at most 2000 of each.
awk 'NR == FNR {total[$1] = $2; next}
{ k = $2; seen[k]++; step = int(total[k] / 2000) + 1; if (seen[k] % step == 0) print $1, k, $3 }' \
	"$work/counts" "$work/classified" >"$work/sample"
: >"$work/measured"
for p in "${masters[@]}"; do
	awk -v p="$p" '$1 == p {print "MEMORY USAGE " $3 " SAMPLES 0"}' "$work/sample" | rcli "$p" >"$work/usage.$p"
	awk -v p="$p" '$1 == p {print "TTL " $3}' "$work/sample" | rcli "$p" >"$work/ttl.$p"
	awk -v p="$p" '$1 == p {print $2}' "$work/sample" | paste -d' ' - "$work/usage.$p" "$work/ttl.$p" >>"$work/measured"
done
echo
# The TTL column is the longest remaining time to live among the sampled
# keys of a kind: "-" for keys that never expire.
printf '  %-28s %10s %12s %14s %14s %10s\n' "kind of key" "keys" "mean bytes" "total MiB" "bytes per user" "max TTL s"
awk -v u="$users" 'NR == FNR {total[$1] = $2; next}
{ sum[$1] += $2; n[$1]++; if ($3 > ttl[$1]) ttl[$1] = $3 }
END {
	for (k in total) {
		mean = n[k] ? sum[k] / n[k] : 0
		all += mean * total[k]
		printf "  %-28s %10d %12.0f %14.2f %14.1f %10s\n", k, total[k], mean, mean * total[k] / 1048576, mean * total[k] / u, (ttl[k] > 0 ? ttl[k] : "-")
	}
	printf "  %-28s %10s %12s %14.2f %14.1f\n", "(sum)", "", "", all / 1048576, all / u
}' "$work/counts" "$work/measured" | sort -k1,1
