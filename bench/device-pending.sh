#!/bin/bash
# SPDX-License-Identifier: MIT
# device-pending.sh - on the GPU machine, in one call, what was built
# without a GPU and still has to run on one (docs/scheduler.md "Not built
# yet", docs/specs/cuda-remoting.md "Tests"). Binaries from .devbin
# (`bash bench/pack-guest.sh build-dev` here, then
# `cp build-dev/tests/backend/cuda-check .devbin/`):
#
#   1. cuda-check --hold-us 200: every op through the hold's held paths
#      against the CPU backend, and the hold's starvation bound;
#   2. device-e2e.sh cuda: guests' libcuda.so.1 through the mediator and
#      the per-VM worker, NVIDIA's driver under the worker;
#   3. device-sched.sh lat+tput with the committed defaults, the hold
#      (gpu_hold_us=200) and the hold with the guard (sched_guard_us=1000),
#      one after another on the same machine.
#
#   bash bench/device-pending.sh     (each part's output in $OUT, a table last)
set -u
OUT=${OUT:-$PWD/.devout}
mkdir -p "$OUT"
failed=0
BIN=$(cd "${VGPU_DEVBIN:-./.devbin}" && pwd) || exit 2
export LD_LIBRARY_PATH=$BIN
VGPU_CUBLAS=$(ls /usr/local/cuda/lib64/libcublas.so* 2>/dev/null | head -n 1)
export VGPU_CUBLAS
timeout 300 "$BIN/cuda-check" --hold-us 200 >"$OUT/cuda-check-hold.log" 2>&1 || failed=1
OUT=$OUT timeout 300 bash bench/device-e2e.sh cuda >"$OUT/e2e-cuda.txt" 2>&1 || failed=1
sched() { # sched NAME SETS
	mkdir -p "/tmp/sched-$1"
	OUT=/tmp/sched-$1 PARTS="lat tput" SETS="$2" timeout 280 bash bench/device-sched.sh \
		>"/tmp/sched-$1/table.txt" 2>&1 || failed=1
	{ echo "== $1 (${2:-defaults})"; cat "/tmp/sched-$1/table.txt"; } >>"$OUT/sched.txt"
}
sched base ""
sched hold "--set gpu_hold_us=200"
sched hold-guard "--set gpu_hold_us=200 --set sched_guard_us=1000"
tar czf "$OUT/sched.tgz" -C /tmp sched-base sched-hold sched-hold-guard
echo "cuda-check --hold-us 200: $(tail -n 1 "$OUT/cuda-check-hold.log")"
grep -E "hold:" "$OUT/cuda-check-hold.log"
tail -n 3 "$OUT/e2e-cuda.txt"
cat "$OUT/sched.txt"
exit $failed
