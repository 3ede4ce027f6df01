#!/bin/bash
# SPDX-License-Identifier: MIT
# One VM makes, uses (every other one) and drops 1 GiB shared-memory
# windows in a loop while another VM's small requests are timed (issue 9):
# VM 2's p99 during the storm (an open loop, one request due every 1.5 ms,
# so that a stall of the mediator shows in every request due during it)
# over its p99 without the mediator's part of the storm. The storm's own
# process runs at the lowest CPU priority: a guest's work runs on its own
# vCPUs, not on dom0's, so only the mediator's share of the storm should
# compete with VM 2 here, on 2 cores in CI.
#
# But on some machines the page work itself stalls VM 2: measured on 2
# vCPUs (2026-12-04), VM 2's p99 rose 7x to 16x over alone even with the
# mediator only keeping one window, with the code before and after this
# test's change alike. So the baseline is the larger of VM 2's p99 alone
# and its p99 during a control storm, the same memory work done by a
# process of its own with no mediator in it; there the storms measured 1x
# to 18x the baseline per round, medians of three rounds 1.9x to 9.4x. The
# bound, 15x on the median, catches a loop thread that stalls on window
# work (the mediator before issue 9: 60x over alone in every round) on
# such machines; an earlier machine measured 1.05x to 6x over alone. The
# loop thread's CPU time is printed with each round for diagnosis: with
# the CPU backend, window work is too light (freeing a written 1 GiB
# window: 45 ms of CPU) to tell from the noise of VM 2's own requests.
#
# Three storms:
# - one size: the mediator keeps the VM's window when its client leaves
#   (window_keep_s) and hands it to the next one: nothing is made, pinned
#   or freed again.
# - 16 sizes in turn, so that a kept window seldom fits, at the default
#   pin_rate_mib_s: past its budgets' worth the VM's new windows are
#   refused (VGPU_BUSY) until the rate allows them.
# - the same with no rate limit (pin_rate_mib_s=0): every window is made
#   and released on the workers, off the loop thread, as fast as the client
#   asks. Under CUDA this storm is not bounded (each pin holds back every
#   VM's GPU work: docs/performance.md run 25); the rate limit is what
#   bounds it there.
. "$(dirname "$0")/lib.sh"
HC=$VGPU_TESTS/e2e/hostile_client.py

vm 1 A high; vm 2 B low
SETTINGS=(--set shm_max_mib=1024 --set vm_window_mib=2100 --set shm_total_mib=4096)
start_mediator "${SETTINGS[@]}"
S1=$(sock 1); S2=$(sock 2)
expect_eq "$(python3 "$RAW" "$S2" ok 1024)" "0" "warm-up request served"

# storm_round [vary]: VM 2's p99 alone; then during 9 s of VM 1's storm;
# then during 9 s of the control: the same memory work done by a process of
# its own (touch-storm), no mediator involved. base99 is the larger of
# alone and the control: what the machine does to VM 2 anyway. The loop
# thread's CPU time (ticks of 10 ms) in both is printed.
storm_round() {
	read -r alone50 alone99 alonemax <<<"$(python3 "$RAW" "$S2" paced 4000 1500 1024)"
	local t0=$(loop_ticks)
	during "$T/storm.out" nice -n 19 python3 "$HC" "$S1" attach-storm 9 1024 "$@"
	storm_loop=$(($(loop_ticks) - t0))
	storm99=$load99
	attached=$(sed -n 's/attached=\([0-9]*\).*/\1/p' "$T/storm.out")
	echo "# alone: p50 $alone50 us, p99 $alone99 us, max $alonemax us; storm: p50 $load50 us," \
		"p99 $load99 us, max $loadmax us, loop thread $storm_loop ticks; $(cat "$T/storm.out")"
	t0=$(loop_ticks)
	during "$T/touch.out" nice -n 19 python3 "$HC" "$S1" touch-storm 9 1024 "$@"
	control_loop=$(($(loop_ticks) - t0))
	echo "# control (the same memory work, no mediator): p50 $load50 us, p99 $load99 us," \
		"max $loadmax us, loop thread $control_loop ticks; $(cat "$T/touch.out")"
	base99=$((load99 > alone99 ? load99 : alone99))
}
# storm NAME BOUND MIN_ATTACHED [vary]: three rounds. The median of VM 2's
# p99 ratios (in %, storm over base) must stay within BOUND, and each round
# attach at least MIN_ATTACHED windows.
storm() {
	local name=$1 bound=$2 min=$3 ratios=() median
	shift 3
	for round in 1 2 3; do
		storm_round "$@"
		ratios+=("$((100 * storm99 / base99))")
		[ "${attached:-0}" -ge "$min" ] || fail "$name, round $round: $(cat "$T/storm.out")"
	done
	median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
	[ "$median" -le "$bound" ] &&
		pass "$name: VM 2's p99 during the storm over alone or the control: ${ratios[*]} % (median $median, bound $bound)" ||
		fail "$name: VM 2's p99 during the storm over alone or the control: ${ratios[*]} % (median $median, bound $bound)"
}

storm "1 GiB windows, one size" 1500 3
# Kept for the next client: one window in VM 1's budget, nothing else.
expect_eq "$(vm_stat 1 .windows.kept)" "1" "one window kept"
expect_eq "$(vm_stat 1 .budget.windows.held)" "1" "the kept window is in VM 1's budget"
expect_eq "$(vm_stat 1 .budget.new_pinned.refused)" "0" "none refused for the rate"

storm "1 GiB windows, 16 sizes in turn, pin_rate_mib_s 64" 1500 1 vary
too_fast=$(vm_stat 1 .budget.new_pinned.refused)
[ "$too_fast" -gt 0 ] && pass "new windows refused for the rate: $too_fast" \
	|| fail "no window refused for the rate"

stop_mediator
start_mediator "${SETTINGS[@]}" --set pin_rate_mib_s=0
storm "1 GiB windows, 16 sizes in turn, no rate limit" 1500 3 vary
expect_eq "$(vm_stat 1 .budget.new_pinned.refused)" "0" "none refused for the rate when it is off"
vm_kept_le_2() { [ "$(vm_stat 1 .windows.kept)" -le 2 ]; }
wait_for "at most two kept windows (2100 MiB budget)" 10 vm_kept_le_2
e2e_finish
