#!/usr/bin/env bash
# Load test of one tenant on a real, throwaway 3-master Redis Cluster, and
# how evenly the masters share the work.
#
# Builds stepupd and stepup-load, starts three redis-server masters in
# cluster mode (no persistence, no replicas) and forms the cluster, starts
# stepupd on it, creates one tenant and an app key, runs stepup-load
# (extra arguments are passed to it, e.g. scripts/cluster-load.sh -users
# 2000 -d 10s -c 16), then prints per master the Lua time (EVALSHA/EVAL
# microseconds from INFO commandstats), all command time and keys, with
# max/mean of the Lua time: 1.0 is a perfect spread, 3.0 one master doing
# everything. Everything it started is stopped and removed on exit.
#
# Needs go, redis-server, redis-cli and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/lib.sh
need_tools go redis-server redis-cli curl

echo "building stepupd and stepup-load"
go build -o "$work/stepupd" ./cmd/stepupd
go build -o "$work/stepup-load" ./cmd/stepup-load

start_redis --cluster
ports=("${masters[@]}")

TENANT_NAME="cluster load test" start_stepupd "${redis_env[@]}"
echo "stepupd on $api, a 3-master cluster on ports ${ports[*]}, tenant $tenant"

for port in "${ports[@]}"; do redis-cli -h 127.0.0.1 -p "$port" config resetstat >/dev/null; done
"$work/stepup-load" -url "$api" -key "$app_key" -prefix "cl-" "$@"

echo
echo "Per master during the run (seeding and load; INFO commandstats):"
lua=()
for port in "${ports[@]}"; do
	stats=$(redis-cli -h 127.0.0.1 -p "$port" info commandstats)
	l=$(awk -F'[:,=]' '/^cmdstat_(evalsha|eval):/ {s += $5} END {print s + 0}' <<<"$stats")
	all=$(awk -F'[:,=]' '/^cmdstat_/ {s += $5} END {print s + 0}' <<<"$stats")
	keys=$(redis-cli -h 127.0.0.1 -p "$port" dbsize)
	lua+=("$l")
	printf '  master :%s  Lua %8.2f s   all commands %8.2f s   %8d keys\n' "$port" "$(awk -v u="$l" 'BEGIN {print u / 1e6}')" "$(awk -v u="$all" 'BEGIN {print u / 1e6}')" "$keys"
done
printf '  Lua time max/mean: %s\n' "$(printf '%s\n' "${lua[@]}" | awk '{s += $1; if ($1 > m) m = $1} END {printf "%.2f", m / (s / NR)}')"
