#!/bin/bash
# One VM makes, uses (every other one) and drops 1 GiB shared-memory
# windows in a loop while another VM's small requests are timed (issue 9):
# p99 during the storm against p99 alone (an open loop, one request due
# every 1.5 ms, so that a stall of the mediator shows in every request due
# during it). The storm's own process runs at the lowest CPU priority: a
# guest's work runs on its own vCPUs, not on dom0's, so only the mediator's
# share of the storm may compete with VM 2 here, on 2 cores in CI.
#
# Two storms. The same size each time: the mediator keeps the VM's window
# when its client leaves (window_keep_s) and hands it to the next one,
# so nothing is made, pinned or freed again; the issue's bound, 2x. Sizes
# that never repeat within 16: every window is made and released on the
# workers, off the loop thread; there the kernel's own work on the pages
# (faulting 1 GiB in for the client, freeing it) shares the two cores with
# VM 2 and rounds measured 1.05x to 6.0x, so the bound is 6x: it catches a
# stall of the loop thread (the mediator before issue 9: 60x in every
# round).
. "$(dirname "$0")/lib.sh"
HC=$VGPU_TESTS/e2e/hostile_client.py

vm 1 A high; vm 2 B low
start_mediator --set shm_max_mib=1024 --set vm_window_mib=2100 --set shm_total_mib=4096
S1=$(sock 1); S2=$(sock 2)
expect_eq "$(python3 "$RAW" "$S2" ok 1024)" "0" "warm-up request served"

measure() { python3 "$RAW" "$S2" paced 4000 1500 1024; }
# storm_round [vary]: VM 2's p99 alone, then during 9 s of VM 1's storm.
storm_round() {
	read -r alone50 alone99 alonemax <<<"$(measure)"
	nice -n 19 python3 "$HC" "$S1" attach-storm 9 1024 "$@" >"$T/storm.out" 2>&1 &
	local hp=$!
	sleep 1
	read -r storm50 storm99 stormmax <<<"$(measure)"
	wait $hp
	echo "# alone: p50 $alone50 us, p99 $alone99 us, max $alonemax us;" \
		"during the storm: p50 $storm50 us, p99 $storm99 us, max $stormmax us; $(cat "$T/storm.out")"
	attached=$(sed -n 's/attached=\([0-9]*\).*/\1/p' "$T/storm.out")
}
# storm NAME BOUND [vary]: three rounds; the median of their ratios (in %)
# must stay within BOUND.
storm() {
	local name=$1 bound=$2 ratios=() median
	shift 2
	for round in 1 2 3; do
		storm_round "$@"
		ratios+=("$((100 * storm99 / alone99))")
		[ "${attached:-0}" -ge 3 ] || fail "$name storm, round $round: $(cat "$T/storm.out")"
	done
	median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
	[ "$median" -le "$bound" ] &&
		pass "$name: VM 2's p99 during the storm over alone: ${ratios[*]} % (median $median, bound $bound)" ||
		fail "$name: VM 2's p99 during the storm over alone: ${ratios[*]} % (median $median, bound $bound)"
}

storm "1 GiB windows, one size" 200
# Kept for the next client: one window in VM 1's budget, nothing else.
expect_eq "$(vm_stat 1 .kept_windows.count)" "1" "one window kept"
expect_eq "$(vm_stat 1 .budget.windows.held)" "1" "the kept window is in VM 1's budget"
storm "1 GiB windows, sizes that do not repeat" 600 vary
vm_kept_le_2() { [ "$(vm_stat 1 .kept_windows.count)" -le 2 ]; }
wait_for "at most two kept windows (2100 MiB budget)" 10 vm_kept_le_2
e2e_finish
