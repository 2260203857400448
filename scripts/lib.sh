# Shared by the measuring scripts (load.sh, cluster-load.sh, memory.sh):
# source it after `cd` to the repository. It makes a throwaway folder
# $work, removed on exit with every process whose pid is in $pids, and
# defines the helpers below. $script names the caller in messages.

script=$(basename "${BASH_SOURCE[1]}")
work=$(mktemp -d "${TMPDIR:-/tmp}/stepup-${script%.sh}.XXXXXX")
pids=()
cleanup() {
	local status=$?
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ $status -ne 0 && -s $work/stepupd.log ]]; then
		echo "--- stepupd log (last 20 lines) ---" >&2
		tail -n 20 "$work/stepupd.log" >&2
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# need_tools stops unless every named command is installed.
need_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "$script: $tool not found" >&2; exit 1; }
	done
}

# free_port prints a loopback TCP port nobody listens on, nor on the port
# 10000 above it (a cluster node's bus).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# wait_for runs its arguments until they succeed, for at most 30 seconds;
# it gives up early when stepupd ($stepupd_pid, if set) has stopped.
wait_for() {
	local i
	for i in $(seq 1 300); do
		if [[ -n ${stepupd_pid:-} ]] && ! kill -0 "$stepupd_pid" 2>/dev/null; then break; fi
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$script: timed out waiting for: $*" >&2
	return 1
}

# json_field prints the string value of a top-level field of a JSON object.
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

# b64url prints the unpadded base64url encoding of its argument, as the
# store's keys name users.
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

random_secret() { head -c 48 /dev/urandom | base64 -w0 | tr -d '+/='; }

# start_redis [--cluster] starts a throwaway redis-server (no persistence)
# on a free loopback port, or with --cluster three masters formed into a
# Redis Cluster (no replicas); it returns once they answer (the cluster
# once every master reports it ok). It sets masters (their ports) and
# redis_env (the STEPUP_REDIS_* setting to give start_stepupd).
start_redis() {
	local port seeds=()
	masters=()
	if [[ ${1:-} != --cluster ]]; then
		port=$(free_port)
		redis_node "$port"
		redis_env=(STEPUP_REDIS_URL="redis://127.0.0.1:$port/0")
		return
	fi
	for _ in 1 2 3; do
		port=$(free_port)
		redis_node "$port" --cluster-enabled yes --cluster-config-file "$work/$port/nodes.conf" \
			--cluster-port "$(free_port)" --cluster-announce-ip 127.0.0.1 --cluster-node-timeout 5000
		seeds+=("127.0.0.1:$port")
	done
	redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$work/create.log"
	for port in "${masters[@]}"; do
		wait_for sh -c "redis-cli -h 127.0.0.1 -p $port cluster info | grep -q 'cluster_state:ok'"
	done
	redis_env=(STEPUP_REDIS_CLUSTER_ADDRS="$(IFS=,; echo "${seeds[*]}")")
}

# redis_node PORT ARGS… starts one redis-server of start_redis.
redis_node() {
	local port=$1
	shift
	mkdir -p "$work/$port"
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
		--dir "$work/$port" --logfile "$work/$port/redis.log" "$@" &
	pids+=($!)
	wait_for redis-cli -h 127.0.0.1 -p "$port" ping
	masters+=("$port")
}

# start_stepupd VAR=VALUE… starts $work/stepupd on a free loopback port
# with a clean environment (stepupd refuses unknown STEPUP_* variables,
# and none of the caller's should leak in): a fresh operator key, console
# SMS and mail drivers, log level warn, then the given settings (the
# Redis ones, and any of those defaults to change); it waits until
# stepupd is ready, then creates a tenant named $TENANT_NAME (default
# "load test") with an app key. It sets api, operator_key, tenant, app_key.
start_stepupd() {
	local api_port
	api_port=$(free_port)
	api="http://127.0.0.1:$api_port"
	operator_key=$(random_secret)
	env -i PATH="$PATH" HOME="$HOME" ${STEPUPD_PPROF_ADDR:+STEPUPD_PPROF_ADDR="$STEPUPD_PPROF_ADDR"} ${GOGC:+GOGC="$GOGC"} \
		STEPUP_SECRET="$(random_secret)" \
		STEPUP_OPERATOR_KEY="$operator_key" \
		STEPUP_LISTEN="127.0.0.1:$api_port" \
		STEPUP_LOG_LEVEL=warn \
		STEPUP_SMS_DRIVER=console STEPUP_MAIL_DRIVER=console \
		"$@" \
		"$work/stepupd" >"$work/stepupd.log" 2>&1 &
	stepupd_pid=$!
	pids+=("$stepupd_pid")
	wait_for curl -sf "$api/readyz"
	tenant=$(operator /v1/tenants "{\"name\":\"${TENANT_NAME:-load test}\"}" | json_field id)
	app_key=$(operator "/v1/tenants/$tenant/keys" '{"kind":"app","label":"stepup-load"}' | json_field secret)
	[[ -n $tenant && -n $app_key ]] || { echo "$script: could not create the tenant and its key" >&2; exit 1; }
}

# operator PATH JSON posts JSON to the operator API of start_stepupd's
# stepupd.
operator() { curl -sf -X POST "$api$1" -H "Authorization: Bearer $operator_key" -H 'Content-Type: application/json' -d "$2"; }
