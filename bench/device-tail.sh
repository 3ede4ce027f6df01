#!/bin/bash
# SPDX-License-Identifier: MIT
# device-tail.sh - on the GPU machine: where the device path's overhead
# tail goes. One CUDA mediator; native and shm: 4 KiB vector_adds
# (vgpu-bench, 10000 each) for the machine's own spread; then device-peer
# $RUNS times (default 4; $REPEAT requests each, default 10000), which splits each request's overhead
# into its time queued and the rest, and measures the machine's noise (a
# process spinning alone on the clock: gaps of 5 us and more). Binaries
# from .devbin (bench/run-device.sh's way: build here, carry .devbin).
#
#   [RUNS=N] [REPEAT=N] [PRIORITY=high|medium|low] [SETS="--set k=v ..."] bash bench/device-tail.sh
#                                        (results in $OUT, a table last)
set -u
. "$(dirname "$0")/device-env.sh" tail
RUNS=${RUNS:-4}
REPEAT=${REPEAT:-10000}
VM=6f1c2a10-0000-4000-8000-0000000d0002
"$BIN/vgpu-admin" --db "$W/db" register-vm --vm-uuid $VM --vm-name peer --pool B --priority "${PRIORITY:-high}" >/dev/null
"$BIN/vgpu-mediator" --db "$W/db" --run-dir "$W/run" --spool-dir "$W/spool" --backend cuda \
	--log stderr --log-level info ${SETS:-} 2>"$OUT/mediator.log" &
MPID=$!
for _ in $(seq 300); do [ -S "$W/run/vm-$VM.sock" ] && break; sleep 0.1; done
failed=0
timeout 200 "$BIN/vgpu-bench" --transport "shm:$W/run/vm-$VM.sock" --case vadd-4KiB --repeat 10000 \
	>"$OUT/bench.txt" 2>&1 || failed=1
for r in $(seq "$RUNS"); do
	timeout 120 "$BIN/device-peer" "$W/run/vm-$VM.sock" --n 1024 --repeat "$REPEAT" --warmup 500 --json \
		>"$OUT/peer-$r.json" || failed=1
done
kill -TERM $MPID
wait $MPID || failed=1
rm -rf "$W"
grep 'vadd-4KiB' "$OUT/bench.txt" | grep -v targets
for r in $(seq "$RUNS"); do
	jq -r --arg r "$r" '"run \($r): overhead p50 \(.overhead_us.p50) p99 \(.overhead_us.p99) us (queued p99 \(.queue_us.p99), the rest p99 \(.rest_us.p99)); slowest 1%: queued \(.slowest_1pct_us.queue), the rest \(.slowest_1pct_us.rest) us, one every \(.slowest_1pct_every_ms) ms; noise: \(.noise.gaps_5us_per_s) gaps >= 5 us per second, the largest \(.noise.max_us) us; \(.doorbells) doorbells written (the rest skipped: the mediator watched the ring)"' "$OUT/peer-$r.json"
done
jq -rs 'map(.overhead_us.p99) | "overhead p99 <= 10 us in \(map(select(. <= 10)) | length) of \(length) runs"' \
	"$OUT"/peer-*.json
exit $failed
