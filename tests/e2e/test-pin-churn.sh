#!/bin/bash
# New pinned memory under CUDA (issue 9), on the GPU machine only:
#
#   bash bench/device-e2e.sh pin-churn
#
# (not in make test: the CPU backend pins nothing, so there this would
# measure nothing.) VM 1 sends vector_adds of eight sizes in turn, 128 to
# 448 MiB payloads: more distinct buffer sizes than the CUDA backend's
# pinned cache keeps, so that without a bound every request would pin
# (cudaHostAlloc) and free pinned memory, which holds back every VM's GPU
# work. VM 2's 4 KiB requests are timed as in test-storm.sh. With the
# default pin_rate_mib_s, VM 2's p99 stays within 2x (median of three
# rounds) and VM 1 is refused; with pin_rate_mib_s=0 the same is measured
# and printed, not bounded.
. "$(dirname "$0")/lib.sh"
HC=$VGPU_TESTS/e2e/hostile_client.py
[ "${VGPU_E2E_BACKEND:-cpu}" = cuda ] || { fail "run with VGPU_E2E_BACKEND=cuda (bench/device-e2e.sh)"; finish; }

vm 1 A high; vm 2 B low
# churn_rounds: three rounds of VM 2 alone, then during 9 s of VM 1's churn;
# sets median (in %).
churn_rounds() {
	local ratios=()
	for round in 1 2 3; do
		load_round "$T/churn.out" python3 "$HC" "$S1" buffer-churn 9
		ratios+=("$((100 * load99 / alone99))")
	done
	median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
	echo "# ratios ${ratios[*]} %"
}

start_mediator
S1=$(sock 1); S2=$(sock 2)
expect_eq "$(python3 "$RAW" "$S2" ok 1024)" "0" "warm-up request served"
churn_rounds
[ "$median" -le 200 ] && pass "pin_rate_mib_s 64: VM 2's p99 during the churn over alone: median $median % (bound 200)" \
	|| fail "pin_rate_mib_s 64: VM 2's p99 during the churn over alone: median $median % (bound 200)"
refused=$(vm_stat 1 .budget.new_pinned.refused)
[ "$refused" -gt 0 ] && pass "VM 1 refused for new pinned memory: $refused" || fail "VM 1 never refused"
expect_eq "$(vm_stat 2 .budget.new_pinned.refused)" "0" "VM 2 never refused"
stop_mediator

start_mediator --set pin_rate_mib_s=0
churn_rounds
echo "# pin_rate_mib_s 0: VM 2's p99 during the churn over alone: median $median % (not bounded)"
expect_eq "$(vm_stat 1 .budget.new_pinned.refused)" "0" "none refused with no rate limit"
e2e_finish
