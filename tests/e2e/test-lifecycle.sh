#!/bin/bash
# SPDX-License-Identifier: MIT
# Registry changes reach the running mediator within a second (new VM, new
# priority, removed VM); SIGTERM answers everything accepted before exiting;
# a second mediator on the same run directory is refused; bad settings are
# refused with a clear message.
. "$(dirname "$0")/lib.sh"

vm 1 A low
start_mediator --set registry_poll_ms=200

vm 2 B high
wait_for "a newly registered VM gets its socket" 1 test -S "$(sock 2)"
admin set-priority --vm-uuid "$(uuid 1)" --priority high --no-restart >/dev/null
prio1() { stats | jq -e --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | select(.priority == 2)'; }
wait_for "a priority change takes effect" 1 prio1
admin remove-vm --vm-uuid "$(uuid 2)" >/dev/null
gone2() { [ ! -e "$(sock 2)" ]; }
wait_for "a removed VM loses its socket" 1 gone2

# A second mediator on the same run directory.
set +e
"$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$RUN" --backend cpu 2>"$T/second.err"
rc=$?; set -e
expect_eq "$rc" "1" "second mediator refused"
grep -q "another vgpu-mediator is running" "$T/second.err" && pass "says another one runs" || fail "$(cat "$T/second.err")"

# SIGTERM while work is queued and running: everything accepted is answered.
stop_mediator
start_mediator --set cpu_threads=1 --set max_inflight=1
# Big enough to be still running at SIGTERM; sanitizer builds set a smaller size.
python3 "$RAW" "$(sock 1)" pipeline-sgemm 8 "${VGPU_E2E_SGEMM:-1024}" >"$T/pipe.out" &
client=$!
accepted() { stats | jq -e --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | select(.submitted == 8)'; }
wait_for "8 requests accepted" 20 accepted
queued=$(stats | jq -r '.mediator.queued + .mediator.inflight')
echo "# at SIGTERM: $queued requests queued or in flight"
[ "$queued" -gt 0 ] && pass "work still pending at SIGTERM" || fail "nothing pending at SIGTERM: the test proves nothing"
stop_mediator
expect_eq "$MRC" "0" "mediator exits 0 after SIGTERM"
wait "$client" && pass "client read all its answers" || fail "client failed"
expect_eq "$(cat "$T/pipe.out")" "0=8" "all 8 accepted requests answered OK after SIGTERM"
grep -q "finishing accepted work" "$T/mediator.log" && pass "shutdown logged" || fail "no shutdown log"

# Bad settings.
bad() { # bad EXPECTED_RC MESSAGE ARGS...
	local want=$1 msg=$2; shift 2
	set +e; "$VGPU_MEDIATOR_BIN" "$@" >/dev/null 2>"$T/bad.err"; local rc=$?; set -e
	expect_eq "$rc" "$want" "refused: $*"
	grep -q -- "$msg" "$T/bad.err" && pass "  says: $msg" || fail "  message: $(cat "$T/bad.err")"
}
bad 2 "backend must be auto, cuda or cpu" --backend gpu
bad 2 "queue_per_vm must be an integer in 1..65536" --set queue_per_vm=0
bad 2 "unknown setting" --set nosuch=1
bad 2 "needs KEY=VALUE" --set queue_per_vm
bad 2 "unexpected argument" extra
bad 2 "run_dir must be an absolute path" --run-dir relative
printf 'max_inflight = lots\n' >"$T/bad.conf"
bad 2 "bad.conf:1: max_inflight must be an integer" --config "$T/bad.conf"
bad 2 "No such file" --config "$T/missing.conf"
e2e_finish
