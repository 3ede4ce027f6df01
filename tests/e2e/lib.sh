# SPDX-License-Identifier: MIT
# lib.sh - shared by the end-to-end tests: a registry with VMs, a real
# vgpu-mediator on temporary paths (cpu backend), and clients that are real
# processes: vgpu-submit and raw_client.py.
set -eu
: "${VGPU_MEDIATOR_BIN:?}" "${VGPU_SUBMIT_BIN:?}" "${VGPU_ADMIN_BIN:?}" "${VGPU_TESTS:?}"
. "$VGPU_TESTS/lib/assert.sh"

T=$(mktemp -d /tmp/vgpu-e2e.XXXXXX)
DB=$T/vgpu_config.db
RUN=$T/run
SPOOL=$T/spool
RAW=$VGPU_TESTS/e2e/raw_client.py
MPID=""
cleanup() {
	[ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
	[ -n "${PEER:-}" ] && kill "$PEER" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

admin() { "$VGPU_ADMIN_BIN" --db "$DB" "$@"; }

# vm N POOL PRIORITY: register VM number N; its UUID is uuid N.
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
vm() { admin register-vm --vm-uuid "$(uuid "$1")" --vm-name "vm$1" --pool "$2" --priority "$3" --vm-id "$1" >/dev/null; }
sock() { echo "$RUN/vm-$(uuid "$1").sock"; }

# start_mediator [ARGS...]: start it and wait until its sockets exist.
# $MEDIATOR_WRAP, when set, is a command line the mediator runs under;
# $VGPU_E2E_BACKEND picks the backend (cpu; cuda on the GPU machine).
start_mediator() {
	${MEDIATOR_WRAP:-} "$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$RUN" --spool-dir "$SPOOL" \
		--backend "${VGPU_E2E_BACKEND:-cpu}" \
		--log stderr --log-level info "$@" 2>>"$T/mediator.log" &
	MPID=$!
	for _ in $(seq 100); do
		[ -S "$RUN/control.sock" ] && return 0
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# mediator did not start:"; cat "$T/mediator.log"
	return 1
}

# cuda_host: the host's CUDA driver for the VMs' workers. With the cpu
# backend (no GPU here) vgpu's own libcuda.so.1 talking to the scripted
# host (tests/guest/cuda_peer.py, $PEER), through $MEDIATOR_WRAP for the
# next start_mediator; on the GPU machine NVIDIA's, as it is.
cuda_host() {
	MEDIATOR_WRAP=
	[ "${VGPU_E2E_BACKEND:-cpu}" = cpu ] || return 0
	python3 "$VGPU_CUDA_PEER" "$T/peer.sock" good >"$T/peer.log" 2>&1 &
	PEER=$!
	for _ in $(seq 50); do grep -q ready "$T/peer.log" && break; sleep 0.1; done
	MEDIATOR_WRAP="env LD_LIBRARY_PATH=$VGPU_CUDA_SHIM_DIR:${LD_LIBRARY_PATH:-} VGPU_CUDA_TRANSPORT=unix:$T/peer.sock"
}

# stop_mediator: SIGTERM and wait; sets MRC to its exit status.
stop_mediator() {
	kill -TERM "$MPID"
	set +e; wait "$MPID"; MRC=$?; set -e
	MPID=""
}

# wait_for DESCRIPTION MAX_SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local what=$1 max=$2 start
	shift 2
	start=$(date +%s%N)
	while ! "$@" >/dev/null 2>&1; do
		if [ $(( ($(date +%s%N) - start) / 1000000 )) -gt $((max * 1000)) ]; then
			fail "$what (not within $max s)"; return 1
		fi
		sleep 0.05
	done
	pass "$what ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
}

stats() { admin stats --json --run-dir "$RUN"; }
# vm_stat N JQ: one field of VM N's statistics (jq path after the VM object).
vm_stat() { stats | jq -r --arg u "$(uuid "$1")" ".vms[] | select(.vm_uuid == \$u) | $2"; }
# vm_stat_is N JQ VALUE: whether it is VALUE now (for wait_for).
vm_stat_is() { [ "$(vm_stat "$1" "$2")" = "$3" ]; }

# during OUT CMD...: VM 2's 4 KiB round trips over socket $S2 (an open
# loop: 4000, one due every 1.5 ms) while CMD runs in the background
# (started 1 s before; its output in OUT); sets load50, load99, loadmax (us).
during() {
	local out=$1 hp
	shift
	"$@" >"$out" 2>&1 &
	hp=$!
	sleep 1
	read -r load50 load99 loadmax <<<"$(python3 "$RAW" "$S2" paced 4000 1500 1024)"
	wait $hp
}

# load_round OUT CMD...: the same round trips alone (alone50, alone99,
# alonemax), then during CMD (load50, load99, loadmax); prints them with OUT.
load_round() {
	read -r alone50 alone99 alonemax <<<"$(python3 "$RAW" "$S2" paced 4000 1500 1024)"
	during "$@"
	echo "# alone: p50 $alone50 us, p99 $alone99 us, max $alonemax us;" \
		"under load: p50 $load50 us, p99 $load99 us, max $loadmax us; $(cat "$1")"
}

# The running mediator's resident memory (KiB), CPU time (clock ticks) and
# open file descriptors.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$MPID/status"; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$MPID/stat"; }
# The same for its loop thread alone (the main thread).
loop_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$MPID/task/$MPID/stat"; }
fd_count() { find "/proc/$MPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# e2e_finish: stop a running mediator the normal way, check that it exited 0
# and that no sanitizer spoke in its log, then report.
e2e_finish() {
	if [ -n "$MPID" ]; then
		stop_mediator
		expect_eq "$MRC" "0" "mediator stopped cleanly"
	fi
	if grep -q "Sanitizer\|runtime error:" "$T/mediator.log" 2>/dev/null; then
		fail "sanitizer report in the mediator's log"; cat "$T/mediator.log"
	fi
	finish
}

# dashboard_missing FILE [SKIP]: the metrics docs/grafana-dashboard.json
# uses (but those matching the regex SKIP) that Prometheus text FILE has no
# family of, space-separated; empty when all are there. Fails when the
# dashboard names none.
dashboard_missing() {
	local used name missing=""
	used=$(jq -r '.panels[].targets[].expr' "$VGPU_SRC/docs/grafana-dashboard.json" |
		grep -oE 'vgpu_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' |
		grep -vxE "${2:-^$}" | sort -u)
	[ -n "$used" ] || { echo "(the dashboard names no metric)"; return; }
	for name in $used; do
		grep -q "^# TYPE $name " "$1" || missing="$missing $name"
	done
	echo "${missing# }"
}
