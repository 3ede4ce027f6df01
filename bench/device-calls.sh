#!/bin/bash
# SPDX-License-Identifier: MIT
# device-calls.sh - on the GPU machine: what a CUDA program pays per
# driver call through vgpu's libcuda.so.1 (issue 12's performance
# targets). cuda-calls (bench/cuda-calls.cu, nvcc's defaults) runs
# natively, then with the guest library over a VM's socket to a CUDA
# mediator and its per-VM worker, alternating, $ROUNDS times (default 3).
# Binaries from .devbin (`bash bench/pack-guest.sh build-dev build`).
#
#   [ROUNDS=N] bash bench/device-calls.sh      (results in $OUT, a table last)
set -u
. "$(dirname "$0")/device-env.sh" calls
ROUNDS=${ROUNDS:-3}
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0003 calls
failed=0
for r in $(seq "$ROUNDS"); do
	timeout 120 "$BIN/cuda-calls" >"$OUT/native-$r.json" || failed=1
	LD_LIBRARY_PATH="$BIN/guest-cuda:$BIN" VGPU_CUDA_TRANSPORT="unix:$SOCK" \
		timeout 300 "$BIN/cuda-calls" >"$OUT/vgpu-$r.json" 2>"$OUT/vgpu-$r.err" || failed=1
done
kill -TERM $MPID
wait $MPID || failed=1
rm -rf "$W"
echo "| round | path | launch (in the caller) | launch + sync p50 / p99 | 64 MiB H2D / D2H, pinned | every call right |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in $(seq "$ROUNDS"); do
	for p in native vgpu; do
		jq -r --arg r "$r" --arg p "$p" '"| \($r) | \($p) | \(.launch_us) us | \(.launch_sync_us.p50) / \(.launch_sync_us.p99) us | \(.h2d_gbs) / \(.d2h_gbs) GB/s | \(.ok) |"' \
			"$OUT/$p-$r.json" 2>/dev/null || echo "| $r | $p | failed: $(head -c 300 "$OUT/$p-$r.err" 2>/dev/null) |"
	done
done
exit $failed
