#!/bin/bash
# SPDX-License-Identifier: MIT
# Eight VMs in both pools at every priority, each a separate vgpu-submit
# process, all at once, odd VMs over their sockets and even VMs over their
# spool directories: every result is checked and the mediator's statistics
# account for every request.
. "$(dirname "$0")/lib.sh"

vm 1 A high; vm 2 A medium; vm 3 A low; vm 4 A medium
vm 5 B high; vm 6 B medium; vm 7 B low; vm 8 B high
start_mediator
for i in 1 2 3 4 5 6 7 8; do [ -S "$(sock $i)" ] || fail "socket of VM $i missing"; done
pass "a socket per registered VM"

ops=("vector-add --n 100000" "saxpy --n 65537" "sgemm --m 64 --n 48 --k 33" "reduce-sum --n 1000003"
     "vector-add --n 1" "sgemm --m 1 --n 1 --k 1" "saxpy --n 7" "reduce-sum --n 4096")
pids=()
for i in 1 2 3 4 5 6 7 8; do
	# shellcheck disable=SC2086 # the op and its sizes are words
	if [ $((i % 2)) -eq 1 ]; then uri="unix:$(sock $i)"; else uri="spool:$SPOOL/$(uuid $i)"; fi
	"$VGPU_SUBMIT_BIN" --transport "$uri" ${ops[$((i - 1))]} --verify --repeat 20 --json \
		>"$T/client$i.json" 2>"$T/client$i.err" &
	pids+=($!)
done
for i in 1 2 3 4 5 6 7 8; do
	if wait "${pids[$((i - 1))]}"; then pass "client $i: every result verified"; else
		fail "client $i failed: $(cat "$T/client$i.err")"; fi
	expect_eq "$(jq -r '.requests, .failures' "$T/client$i.json" | tr '\n' ' ')" "20 0 " "client $i: 20 requests, 0 failures"
done

doc=$(stats)
for i in 1 2 3 4 5 6 7 8; do
	expect_eq "$(echo "$doc" | jq -r --arg u "$(uuid $i)" '.vms[] | select(.vm_uuid == $u) | "\(.submitted) \(.completed) \(.failed) \(.rejected)"')" \
		"20 20 0 0" "mediator counted VM $i's requests"
done
expect_eq "$(echo "$doc" | jq -r '[.priorities[].completed] | add')" "160" "160 completed across priority levels"
expect_eq "$(echo "$doc" | jq -r '.priorities[] | select(.priority_name == "high") | .completed')" "60" "high priority: 3 VMs x 20"
expect_eq "$(echo "$doc" | jq -r '.mediator.backend')" "cpu" "cpu backend"
expect_eq "$(echo "$doc" | jq -r '"\(.mediator.queued) \(.mediator.inflight)"')" "0 0" "idle: nothing queued or in flight"

# The control panel shows the mediator's figures too.
admin status --run-dir "$RUN" >"$T/status.txt"
grep -q "backend cpu" "$T/status.txt" && pass "status shows the mediator" || fail "status lacks the mediator"

stop_mediator
expect_eq "$MRC" "0" "mediator exits 0 on SIGTERM"
[ ! -e "$(sock 1)" ] && pass "sockets removed at exit" || fail "socket left behind"
e2e_finish
