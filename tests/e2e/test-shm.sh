#!/bin/bash
# SPDX-License-Identifier: MIT
# The shared-memory ring end to end: libvgpu (vgpu-submit and the shm_api
# program) over windows of a real mediator, an independent ring client
# (shm_client.py) that breaks each rule once, window limits, and a client
# that vanishes with work in flight. Every accepted descriptor is answered
# exactly once; the mediator and other VMs go on.
. "$(dirname "$0")/lib.sh"
SHMC=$VGPU_TESTS/e2e/shm_client.py

vm 1 A high; vm 2 B low
start_mediator --set shm_max_mib=16 --set shm_total_mib=40
S1=$(sock 1); S2=$(sock 2)

# libvgpu: every op verified over a window, pipelined, and at once with a
# socket client of the other VM.
ops=("vector-add --n 100000" "saxpy --n 65537" "sgemm --m 64 --n 48 --k 33" "reduce-sum --n 1000003")
for op in "${ops[@]}"; do
	# shellcheck disable=SC2086 # the op and its sizes are words
	if "$VGPU_SUBMIT_BIN" --transport "shm:$S1" $op --verify --repeat 10 --json >"$T/op.json" 2>"$T/op.err"; then
		pass "shm: ${op%% *} verified"; else fail "shm: $op: $(cat "$T/op.err")"; fi
done
"$VGPU_SUBMIT_BIN" --transport "shm:$S1" vector-add --n 4096 --verify --repeat 300 --depth 16 --json >"$T/d.json" 2>&1 &
p1=$!
"$VGPU_SUBMIT_BIN" --transport "unix:$S2" vector-add --n 4096 --verify --repeat 300 --depth 16 --json >"$T/u.json" 2>&1 &
p2=$!
wait $p1 && pass "shm: 300 requests at depth 16 verified" || fail "shm depth 16: $(cat "$T/d.json")"
wait $p2 && pass "socket client of VM 2 alongside" || fail "socket client: $(cat "$T/u.json")"
if VGPU_TEST_SOCKET=$S1 "$VGPU_SHM_API_BIN" >"$T/api.log" 2>&1; then
	pass "libvgpu shm API: in-window, staged and misused arrays"
else
	fail "libvgpu shm API"; cat "$T/api.log"
fi

# The ring's rules, broken one at a time by a client of our own.
expect_eq "$(python3 "$SHMC" "$S1" ok 1000)" "0" "independent ring client: vector_add served"
expect_eq "$(python3 "$SHMC" "$S1" descs)" \
	"in-rings=-3 in-control-page=-3 past-window=-3 huge-offset=-3 misaligned=-3 out-over-input=-3 out-past-window=-3 unused-offset=-3 other-vm=-10 reserved-bytes=-14 unknown-op=-3 saxpy-in-place=0 good=0" \
	"bad descriptors each answered with their error, good ones served"
expect_eq "$(python3 "$SHMC" "$S1" tail-jump)" "closed" "submission tail past the ring: detached"
expect_eq "$(python3 "$SHMC" "$S1" after-attach)" "closed" "a byte on the socket after attaching: closed"
expect_eq "$(python3 "$SHMC" "$S1" attach-late)" "closed" "attach after a request: closed"
expect_eq "$(python3 "$SHMC" "$S1" bad-attach)" "closed" "attach with a bad checksum: closed"
expect_eq "$(python3 "$SHMC" "$S1" seal)" "sealed" "the client can neither shrink nor grow the window"
out=$(timeout 120 python3 "$SHMC" "$S1" backlog 4000) && pass "4000 requests without taking completions: all answered once" \
	|| fail "backlog: $out"
expect_eq "${out%% *}" "stalled=3072" "the mediator took only what it could answer (3 x 1024)"

# Window sizes: bounds and the mediator's limits.
expect_eq "$(python3 "$SHMC" "$S1" attach-bytes 1000000)" "-3" "window not whole pages: VGPU_INVALID_PARAM"
expect_eq "$(python3 "$SHMC" "$S1" attach-bytes 4096)" "-3" "window under 1 MiB: VGPU_INVALID_PARAM"
expect_eq "$(python3 "$SHMC" "$S1" attach 17)" "-13" "window over shm_max_mib: VGPU_LIMIT"
exec 7> >(python3 "$SHMC" "$S1" attach 16 hold >"$T/hold1")
exec 8> >(python3 "$SHMC" "$S2" attach 16 hold >"$T/hold2")
wait_for "two 16 MiB windows held" 30 grep -q 0 "$T/hold1" "$T/hold2"
expect_eq "$(python3 "$SHMC" "$S1" attach 16)" "-9" "past shm_total_mib: VGPU_BUSY"
exec 7>&- 8>&-
wait_for "windows given back when their clients go" 30 \
	bash -c "[ \"\$(python3 '$SHMC' '$S1' attach 16)\" = 0 ]"

# A client that turns O_NONBLOCK off on the descriptors it shares with the
# mediator: the mediator never reads its doorbell (edge-triggered) and
# signals completions on a socket of its own end, so it cannot be made to
# block; every request is served, and the other VM too.
expect_eq "$(timeout 60 python3 "$SHMC" "$S1" thief 300)" "rang=300 doorbell=300 served=300 notify=socket" \
	"a client blocking its shared descriptors: the mediator never reads its doorbell, serves all"
expect_eq "$(python3 "$SHMC" "$S2" ok 100)" "0" "the other VM is served"

# A client that vanishes with work in flight; then the VM is still served.
expect_eq "$(python3 "$SHMC" "$S1" abandon 200)" "gone" "client gone with 200 requests in flight"
expect_eq "$(python3 "$SHMC" "$S2" ok 100)" "0" "the other VM is served"
expect_eq "$(python3 "$SHMC" "$S1" ok 100)" "0" "and VM 1 again"
kill -0 "$MPID" && pass "mediator still running" || fail "mediator died"

doc=$(stats)
expect_eq "$(echo "$doc" | jq -r '"\(.mediator.queued) \(.mediator.inflight)"')" "0 0" "idle: nothing queued or in flight"
# The backlog client alone had 4000 answered (completed, or refused busy).
n=$(echo "$doc" | jq -r --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | .completed + .rejected')
[ "$n" -ge 4000 ] && pass "VM 1's shm requests counted ($n answered)" || fail "VM 1: only $n answered"

# SIGTERM with a window attached: the mediator still stops cleanly.
exec 7> >(python3 "$SHMC" "$S1" attach 1 hold >"$T/hold3")
wait_for "a window held at shutdown" 30 grep -q 0 "$T/hold3"
e2e_finish
exec 7>&-
