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
