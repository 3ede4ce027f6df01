#!/bin/bash
# SPDX-License-Identifier: MIT
# Several GPUs (issue 11): the real mediator drives one backend instance and
# one dispatcher per GPU. The CPU backend poses as two, then four devices
# (`--set gpus=N`), one thread each, one work at a time; pools are placed on
# their GPUs and `vgpu-admin stats` shows where each pool's and VM's work
# ran and each GPU's load.
#
#   1. pool A on GPU 0, pool B on GPU 1, pool C on both (two VMs), all
#      saturating, equal weights: A only on GPU 0, B only on GPU 1, C on
#      both; max-min fair, each pool a third of the GPU time (2/3 of a GPU,
#      as test_sched_sim.c simulates) and both GPUs busy, alike;
#   2. pool C moved to GPU 1 only with update-pool, live: from 1 s after,
#      none of its work runs on GPU 0 (its share there is not checked:
#      in the plain build on two cores the clients cannot keep every pool
#      waiting, and a pool that is not waiting leaves its share to the
#      others);
#   3. four GPUs, pool C on all of them, four VMs: every GPU busy;
#   4. bad settings: more GPUs than the range; a pool whose GPUs this host
#      does not have: logged, and its VMs are not served (rather than run
#      where the operator did not place them) until the pool is fixed.
#
# Tolerance: +-0.08 of the expected share, as test-shares.sh (same clients
# and machine noise; here also two backend threads on CI's two cores).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"

TOL=0.08
admin update-pool --pool A --gpus 0 >/dev/null
admin update-pool --pool B --gpus 1 >/dev/null
admin create-pool --pool C --gpus all >/dev/null
vm 1 A low; vm 2 B low; vm 3 C low; vm 4 C low
start_mediator --set gpus=2 --set cpu_threads=1 --set max_inflight=1
pids=()
run_clients() {
	for i in "$@"; do
		"$VGPU_SUBMIT_BIN" --transport "unix:$(sock "$i")" sgemm --m 160 --n 160 --k 160 \
			--repeat 1000000 --depth 8 >/dev/null 2>&1 &
		pids+=($!)
	done
}
stop_clients() { kill -9 "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; pids=(); }
# pool_gpu POOL GPU: the pool's GPU ms on that GPU so far.
pool_gpu() { stats | jq -r --arg p "$1" --argjson g "$2" '.pools[] | select(.pool_id == $p) | .gpu_ms_per_gpu[$g]'; }
gpu_ms() { stats | jq -r --argjson g "$1" '.gpus[$g].busy_ms'; }

expect_eq "$(stats | jq -c '[.gpus[].gpu]')" "[0,1]" "stats lists two GPUs"
grep -q "backend cpu, 2 GPUs" "$T/mediator.log" && pass "the mediator logs 2 GPUs" ||
	fail "no '2 GPUs' in the log: $(grep backend "$T/mediator.log")"

# ---- 1. placement and shares ----
run_clients 1 2 3 4
busy() { [ "$(stats | jq '[.vms[] | select(.completed > 20)] | length')" = 4 ]; }
wait_for "four VMs running sgemms" 30 busy
sleep 1
g0=$(gpu_ms 0); g1=$(gpu_ms 1); t0=$(date +%s%N)
w=$(window 3)
g0b=$(gpu_ms 0); g1b=$(gpu_ms 1); t1=$(date +%s%N)
near "$(share "$w" 1)" 0.3333 "pool A (GPU 0) of all GPU time"
near "$(share "$w" 2)" 0.3333 "pool B (GPU 1) of all GPU time"
near "$(share "$w" 3 4)" 0.3333 "pool C (both GPUs, two VMs) of all GPU time"
busy0=$(awk -v a="$g0" -v b="$g0b" -v w="$(((t1 - t0) / 1000000))" 'BEGIN { printf "%.3f\n", (b - a) / w }')
busy1=$(awk -v a="$g1" -v b="$g1b" -v w="$(((t1 - t0) / 1000000))" 'BEGIN { printf "%.3f\n", (b - a) / w }')
# Both GPUs busy, roughly alike. Not fully busy, nor exactly alike: on two
# cores the backend threads share the CPU with the four clients and the
# mediator's threads, and the hand-off from a finished work to the next
# (a dispatcher thread's wake-up) idles each GPU for a scheduler-dependent
# while: 0.54 to 0.62 here, 0.47 and 0.77 in one CI run. Margins: each GPU
# at least 0.3 of the wall time; the less busy at least half the other.
at_least "$(awk -v a="$busy0" -v b="$busy1" 'BEGIN { printf "%.3f\n", a < b ? a : b }')" 0.3 \
	"GPU 0 and GPU 1 both busy ($busy0, $busy1 of the wall time): the less busy"
at_least "$(awk -v a="$busy0" -v b="$busy1" 'BEGIN { printf "%.3f\n", a < b ? a / b : b / a }')" 0.5 \
	"GPU 0 and GPU 1 busy alike: the less over the more"
expect_eq "$(vm_stat 1 .sched.ran_on)/$(vm_stat 2 .sched.ran_on)/$(vm_stat 3 .sched.ran_on)/$(vm_stat 4 .sched.ran_on)" \
	"0/1/0,1/0,1" "placement: VM 1 (pool A) on GPU 0, VM 2 (B) on 1, VMs 3 and 4 (C) on both"
expect_eq "$(pool_gpu A 1)/$(pool_gpu B 0)" "0/0" "no GPU time of pool A on GPU 1 nor of pool B on GPU 0"
admin stats --run-dir "$RUN" >"$T/stats.txt"
grep -Eq '^ +GPU +BUSY_MS +LOAD +INFLIGHT' "$T/stats.txt" && grep -Eq '^ +1 +[0-9.]+ ' "$T/stats.txt" &&
	pass "vgpu-admin stats prints a row per GPU" || fail "no GPU rows: $(cat "$T/stats.txt")"

# ---- 2. a live move ----
admin update-pool --pool C --gpus 1 >/dev/null
sleep 1
c0=$(pool_gpu C 0)
sleep 2
expect_eq "$(pool_gpu C 0)" "$c0" "pool C moved to GPU 1: nothing more of it on GPU 0 from 1 s after"
stop_clients
stop_mediator
expect_eq "$MRC" "0" "mediator with 2 GPUs exits cleanly"

# ---- 3. four GPUs ----
admin update-pool --pool C --gpus all >/dev/null
for i in 1 2; do admin set-pool --vm-uuid "$(uuid "$i")" --pool C >/dev/null; done
start_mediator --set gpus=4 --set cpu_threads=1 --set max_inflight=1
run_clients 1 2 3 4
wait_for "four VMs running sgemms" 30 busy
sleep 1
for g in 0 1 2 3; do
	[ "$(gpu_ms "$g" | cut -d. -f1)" -gt 0 ] || fail "GPU $g of 4 never ran work"
done
a=$(stats | jq -c '[.gpus[].busy_ms]'); sleep 2; b=$(stats | jq -c '[.gpus[].busy_ms]')
least=$(jq -rn --argjson a "$a" --argjson b "$b" '[range(4) | $b[.] - $a[.]] | (min / (add / 4)) * 1000 | round / 1000')
at_least "$least" 0.5 "four GPUs, one pool on all, four VMs: the least busy GPU over their mean"
stop_clients
stop_mediator
expect_eq "$MRC" "0" "mediator with 4 GPUs exits cleanly"

# ---- 4. bad settings ----
set +e
"$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$RUN" --set gpus=33 >"$T/bad.out" 2>&1
rc=$?
set -e
expect_eq "$rc" "2" "gpus=33 refused as a bad setting"
grep -q "gpus" "$T/bad.out" && pass "the error names the setting: $(head -c 120 "$T/bad.out")" ||
	fail "$(cat "$T/bad.out")"
admin update-pool --pool C --gpus 5 >/dev/null
admin set-pool --vm-uuid "$(uuid 2)" --pool A >/dev/null
start_mediator --set gpus=2 --set cpu_threads=1
wait_for "a pool on GPUs this host lacks is logged" 5 grep -q "pool C: none of its GPUs" "$T/mediator.log"
grep -q "VM $(uuid 1) not served yet: its pool C has no GPU on this host" "$T/mediator.log" &&
	pass "its VMs are not served, and that is logged" || fail "$(cat "$T/mediator.log")"
[ -S "$(sock 1)" ] && fail "VM 1 has a socket" || pass "VM 1 has no socket"
expect_eq "$(python3 "$RAW" "$(sock 2)" ok 100)" "0" "a VM of another pool is served"
admin update-pool --pool C --gpus 1 >/dev/null
wait_for "pool C fixed: VM 1 served within a second" 2 test -S "$(sock 1)"
expect_eq "$(python3 "$RAW" "$(sock 1)" ok 100)/$(vm_stat 1 .sched.ran_on)" "0/1" "VM 1's work runs on GPU 1"
stop_mediator
expect_eq "$MRC" "0" "mediator exits cleanly"
finish
