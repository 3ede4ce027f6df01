#!/bin/bash
# SPDX-License-Identifier: MIT
# The scheduler end to end: the real mediator (CPU backend, one thread, one
# work at a time, so GPU time is the backend's time), seven VMs that each
# keep 8 sgemms of 192^3 in flight (long enough that each VM alone keeps
# the backend busy), and settings changed live with vgpu-admin while
# they run. GPU time per VM and pool is read from `vgpu-admin stats` at the
# start and end of each window.
#
#   1. pool A (1 VM) against pool B (6 VMs), equal weights: 50/50; pool B's
#      VMs equal among themselves (Jain's index);
#   2. pool A's weight raised to 3x B's with update-pool: 75/25 in the
#      window from 1 s after the change (the mediator reads the registry
#      every 500 ms, its default);
#   3. a rate limit of 200 GPU-ms per second on VM 1 (set-sched): it uses
#      about a fifth of the backend's time, the others the rest;
#   4. a cap of 30% on pool B: its VMs together use about 30%, pool A the
#      rest;
#   5. a memory quota of 1 MiB on VM 2: a vector_add of 2.4 MB is refused
#      with its reason, VM 3's same request succeeds.
#
# Tolerances are looser than the simulation's 2% (test_sched_sim.c): the
# clients' round trips, the registry reads and the machine's noise all run
# beside the backend. Measured over 4 runs of the plain build: within 0.003
# of the expected share; one run each under ASan and TSan: within 0.03.
# Bound here: 0.08, for the sanitizer builds and busier machines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"

TOL=0.08
vm 1 A low
for i in 2 3 4 5 6 7; do vm "$i" B low; done
start_mediator --set cpu_threads=1 --set max_inflight=1
pids=()
for i in 1 2 3 4 5 6 7; do
	"$VGPU_SUBMIT_BIN" --transport "unix:$(sock "$i")" sgemm --m 192 --n 192 --k 192 \
		--repeat 1000000 --depth 8 >/dev/null 2>&1 &
	pids+=($!)
done
stop_clients() { kill -9 "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }

# Everyone is submitting before the first window.
busy() { [ "$(stats | jq '[.vms[] | select(.completed > 20)] | length')" = 7 ]; }
wait_for "seven VMs running sgemms" 60 busy
sleep 1

# ---- 1. one VM against six ----
w=$(window 3)
near "$(share "$w" 1)" 0.5 "pool A (1 VM) against pool B (6 VMs), equal weights"
jain=$(echo "$w" | awk '$1 >= 2 { s += $2; q += $2 * $2; n++ } END { printf "%.4f\n", s * s / (n * q) }')
at_least "$jain" 0.95 "pool B's six VMs share alike: Jain's index"

# ---- 2. a live weight change ----
admin update-pool --pool A --weight 300 >/dev/null
sleep 1
w=$(window 2)
near "$(share "$w" 1)" 0.75 "pool A at weight 300 against 100, from 1 s after update-pool"
doc=$(stats)
expect_eq "$(echo "$doc" | jq -r '.pools[] | select(.pool_id == "A") | .weight')" "300" \
	"stats shows pool A's new weight"
admin update-pool --pool A --weight 100 >/dev/null

# ---- 3. a rate limit ----
admin set-sched --vm-uuid "$(uuid 1)" --rate-limit 200 >/dev/null
sleep 1
w=$(window 3)
near "$(of_wall "$w" 1)" 0.2 "VM 1 limited to 200 GPU-ms per second: its part of the wall time"
at_least "$(of_wall "$w" 2 3 4 5 6 7)" 0.6 "the other VMs use the rest of the wall time"
expect_eq "$(vm_stat 1 .sched.rate_limit_ms)" "200" "stats shows VM 1's rate limit"
admin set-sched --vm-uuid "$(uuid 1)" --rate-limit 0 >/dev/null

# ---- 4. a cap ----
admin update-pool --pool B --cap 30 >/dev/null
sleep 1
w=$(window 3)
near "$(of_wall "$w" 2 3 4 5 6 7)" 0.3 "pool B capped at 30%: its part of the wall time"
at_least "$(of_wall "$w" 1)" 0.5 "pool A uses what pool B may not, of the wall time"
admin update-pool --pool B --cap 100 >/dev/null
stop_clients

# ---- 5. a memory quota ----
admin set-sched --vm-uuid "$(uuid 2)" --mem-quota 1 >/dev/null
quota() { [ "$(vm_stat 2 .sched.mem_quota)" = 1048576 ]; }
wait_for "the mediator has VM 2's quota of 1 MiB" 5 quota
set +e
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 2)" vector-add --n 200000 >"$T/q2.out" 2>&1
rc2=$?
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 3)" vector-add --n 200000 --verify >"$T/q3.out" 2>&1
rc3=$?
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 2)" vector-add --n 40000 --verify >"$T/q2s.out" 2>&1
rc2s=$?
set -e
expect_eq "$rc2" "1" "VM 2's 2.4 MB request over its 1 MiB quota fails"
grep -qi "memory" "$T/q2.out" && pass "and the client is told it is memory: $(head -c 120 "$T/q2.out")" ||
	fail "no memory error for VM 2: $(cat "$T/q2.out")"
expect_eq "$rc3" "0" "VM 3's same request succeeds (no quota)"
expect_eq "$rc2s" "0" "VM 2's request of 480 KB, within its quota, succeeds"
grep -q "more than the VM's quota of 1 MiB" "$T/mediator.log" &&
	pass "the mediator logged the refusal with the quota" || fail "no refusal in the mediator's log"
stop_mediator
expect_eq "$MRC" "0" "mediator exits cleanly"
finish
