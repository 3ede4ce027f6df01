#!/bin/bash
# SPDX-License-Identifier: MIT
# device-pending.sh - on the GPU machine, in one call, what was built
# without a GPU and still has to run on one (the closing note of the last
# session says which commits). Binaries from .devbin (`bash
# bench/pack-guest.sh build-dev` here, then `cp
# build-dev/tests/backend/cuda-check .devbin/`); only vgpu-mediator,
# vgpu-admin, vgpu-bench, device-peer, cuda-check and their libraries are
# used, so a folder of just those does (VGPU_DEVBIN=DIR).
#
#   1. cuda-check, then cuda-check --hold-us 200: every op against the CPU
#      backend, the second through the hold's held paths (the hold's
#      gates take the works' own stamps since ce8f9f8);
#   2. device-tail.sh: the device path's own time per request, 10 runs of
#      10000 requests, 3 of 100000, and 3 at low priority (the loop
#      thread's launches waiting on their gate), each with its own
#      mediator (issue 10's p99 target, docs/performance.md runs 52 to 54).
#
#   bash bench/device-pending.sh     (each part's output in $OUT, a table last)
set -u
OUT=${OUT:-$PWD/.devout}
mkdir -p "$OUT"
failed=0
BIN=$(cd "${VGPU_DEVBIN:-./.devbin}" && pwd) || exit 2
(
	export LD_LIBRARY_PATH=$BIN
	VGPU_CUBLAS=$(ls /usr/local/cuda/lib64/libcublas.so* 2>/dev/null | head -n 1)
	export VGPU_CUBLAS
	timeout 300 "$BIN/cuda-check" >"$OUT/cuda-check.log" 2>&1
) || failed=1
(
	export LD_LIBRARY_PATH=$BIN
	VGPU_CUBLAS=$(ls /usr/local/cuda/lib64/libcublas.so* 2>/dev/null | head -n 1)
	export VGPU_CUBLAS
	timeout 300 "$BIN/cuda-check" --hold-us 200 >"$OUT/cuda-check-hold.log" 2>&1
) || failed=1
tail_runs() { # tail_runs NAME VAR=VALUE...
	local name=$1
	shift
	mkdir -p "$OUT/$name"
	env OUT="$OUT/$name" VGPU_DEVBIN="$BIN" "$@" timeout 280 bash bench/device-tail.sh \
		>"$OUT/$name/table.txt" 2>&1 || failed=1
}
tail_runs high RUNS=10 PRIORITY=high
tail_runs long RUNS=3 REPEAT=100000 PRIORITY=high
tail_runs low RUNS=3 PRIORITY=low
echo "cuda-check: $(tail -n 1 "$OUT/cuda-check.log")"
echo "cuda-check --hold-us 200: $(tail -n 1 "$OUT/cuda-check-hold.log")"
for name in high long low; do
	echo "== device-tail.sh, $name"
	grep -E "^run |p99 <= 10" "$OUT/$name/table.txt" | cut -c1-160
done
exit $failed
