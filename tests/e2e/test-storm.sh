#!/bin/bash
# SPDX-License-Identifier: MIT
# One VM makes, uses (every other one) and drops 1 GiB shared-memory
# windows in a loop while another VM's small requests are timed (issue 9):
# p99 during the storm against p99 alone (an open loop, one request due
# every 1.5 ms, so that a stall of the mediator shows in every request due
# during it). The storm's own process runs at the lowest CPU priority: a
# guest's work runs on its own vCPUs, not on dom0's, so only the mediator's
# share of the storm may compete with VM 2 here, on 2 cores in CI.
#
# Three storms:
# - one size: the mediator keeps the VM's window when its client leaves
#   (window_keep_s) and hands it to the next one: nothing is made, pinned
#   or freed again. The issue's bound, 2x.
# - 16 sizes in turn, so that a kept window seldom fits, at the default
#   pin_rate_mib_s: past its budgets' worth the VM's new windows are
#   refused (VGPU_BUSY) until the rate allows them. 2x.
# - the same with no rate limit (pin_rate_mib_s=0): every window is made
#   and released on the workers, off the loop thread, as fast as the client
#   asks; the kernel's own work on the pages (faulting 1 GiB in for the
#   client, freeing it) shares the two cores with VM 2, and rounds measured
#   1.05x to 6.0x, so the bound is 6x: it catches a stall of the loop
#   thread (the mediator before issue 9: 60x in every round). Under CUDA
#   this storm is not bounded (each pin holds back every VM's GPU work:
#   docs/performance.md run 25); the rate limit is what bounds it there.
. "$(dirname "$0")/lib.sh"
HC=$VGPU_TESTS/e2e/hostile_client.py

vm 1 A high; vm 2 B low
SETTINGS=(--set shm_max_mib=1024 --set vm_window_mib=2100 --set shm_total_mib=4096)
start_mediator "${SETTINGS[@]}"
S1=$(sock 1); S2=$(sock 2)
expect_eq "$(python3 "$RAW" "$S2" ok 1024)" "0" "warm-up request served"

# storm_round [vary]: VM 2's p99 alone, then during 9 s of VM 1's storm.
storm_round() {
	load_round "$T/storm.out" nice -n 19 python3 "$HC" "$S1" attach-storm 9 1024 "$@"
	attached=$(sed -n 's/attached=\([0-9]*\).*/\1/p' "$T/storm.out")
}
# storm NAME BOUND MIN_ATTACHED [vary]: three rounds; the median of their
# ratios (in %) must stay within BOUND, and each round attach at least
# MIN_ATTACHED windows.
storm() {
	local name=$1 bound=$2 min=$3 ratios=() median
	shift 3
	for round in 1 2 3; do
		storm_round "$@"
		ratios+=("$((100 * load99 / alone99))")
		[ "${attached:-0}" -ge "$min" ] || fail "$name, round $round: $(cat "$T/storm.out")"
	done
	median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
	[ "$median" -le "$bound" ] &&
		pass "$name: VM 2's p99 during the storm over alone: ${ratios[*]} % (median $median, bound $bound)" ||
		fail "$name: VM 2's p99 during the storm over alone: ${ratios[*]} % (median $median, bound $bound)"
}

storm "1 GiB windows, one size" 200 3
# Kept for the next client: one window in VM 1's budget, nothing else.
expect_eq "$(vm_stat 1 .windows.kept)" "1" "one window kept"
expect_eq "$(vm_stat 1 .budget.windows.held)" "1" "the kept window is in VM 1's budget"
expect_eq "$(vm_stat 1 .budget.new_pinned.refused)" "0" "none refused for the rate"

storm "1 GiB windows, 16 sizes in turn, pin_rate_mib_s 64" 200 1 vary
too_fast=$(vm_stat 1 .budget.new_pinned.refused)
[ "$too_fast" -gt 0 ] && pass "new windows refused for the rate: $too_fast" \
	|| fail "no window refused for the rate"

stop_mediator
start_mediator "${SETTINGS[@]}" --set pin_rate_mib_s=0
storm "1 GiB windows, 16 sizes in turn, no rate limit" 600 3 vary
expect_eq "$(vm_stat 1 .budget.new_pinned.refused)" "0" "none refused for the rate when it is off"
vm_kept_le_2() { [ "$(vm_stat 1 .windows.kept)" -le 2 ]; }
wait_for "at most two kept windows (2100 MiB budget)" 10 vm_kept_le_2
e2e_finish
