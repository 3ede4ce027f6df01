#!/bin/bash
# SPDX-License-Identifier: MIT
# device-sched.sh - on the GPU machine: the scheduler under load (issue 11).
# One CUDA mediator, eight VMs over shm: windows, 2048^3 sgemms (depth 4)
# as the saturating load. Binaries from .devbin (bench/run-device.sh's way;
# vgpu-submit among them).
#
#   1. latency: VM 1 (high priority, pool A) alone, then while VMs 2..8
#      (low, pool B) saturate the GPU: 4 KiB vector_add and 1024^3 sgemm
#      (sgemm: the client copies its arrays into the window each time;
#      sgemmw: they are there already, --in-window), one at a time,
#      client-side latency p50/p99 and the mediator's queue and execution
#      times;
#   2. tput: aggregate throughput: vgpu-bench's native 2048^3 sgemm
#      (copy in, cuBLAS, copy out, one process alone) against the GFLOP/s
#      of all eight VMs' completed sgemms while they saturate the GPU;
#   3. shares: all eight low priority; VM 1 alone in pool A against pool B
#      (VMs 2..7), equal weights, then A:B:C at 1:2:4 (VM 1; VMs 2, 3;
#      VMs 4, 5), from the mediator's GPU time per VM over a 5 s window.
#      Saturating means each VM offers more than its share: the load's
#      arrays live in the clients' windows (--in-window: no copy per
#      request on the client's CPU), and VM 1 runs 2 clients against the
#      six. The windows of 8 to 9 clients of 257 MiB need
#      shm_total_mib=16384 (default 4096) and window_keep_s=0.
#
#   [PARTS="lat tput shares"] [SETS="--set max_inflight=2"] bash bench/device-sched.sh
#                                   (results in $OUT, a table last)
set -u
. "$(dirname "$0")/device-env.sh" sched
admin() { "$BIN/vgpu-admin" --db "$W/db" "$@"; }
uuid() { printf '6f1c2a10-0000-4000-8000-%012d' "$1"; }
sock() { echo "$W/run/vm-$(uuid "$1").sock"; }
admin register-vm --vm-uuid "$(uuid 1)" --pool A --priority high --vm-id 1 >/dev/null
for i in 2 3 4 5 6 7 8; do
	admin register-vm --vm-uuid "$(uuid "$i")" --pool B --priority low --vm-id "$i" >/dev/null
done
"$BIN/vgpu-mediator" --db "$W/db" --run-dir "$W/run" --spool-dir "$W/spool" --backend cuda \
	--log stderr --log-level info --set vm_windows=8 --set shm_total_mib=16384 \
	--set window_keep_s=0 ${SETS:-} 2>"$OUT/mediator.log" &
MPID=$!
for _ in $(seq 300); do [ -S "$(sock 8)" ] && break; sleep 0.1; done
failed=0
sub() { timeout 300 "$BIN/vgpu-submit" --transport "shm:$(sock "$1")" "${@:2}"; }
loads=()
load() { # load PROCS VM...: PROCS clients per VM, each 2048^3 sgemms at depth 4
	local procs=$1 i j
	shift
	for i in "$@"; do
		for j in $(seq "$procs"); do
			sub "$i" sgemm --m 2048 --n 2048 --k 2048 --repeat 1000000 --depth 4 --in-window \
				>/dev/null 2>&1 &
			loads+=($!)
		done
	done
}
unload() { kill "${loads[@]}" 2>/dev/null; wait "${loads[@]}" 2>/dev/null; loads=(); }
lat() { # lat NAME: VM 1's 4 KiB vector_adds and 1024^3 sgemms
	sub 1 vector-add --n 1024 --repeat 3000 --json >"$OUT/$1-vadd.json" || failed=1
	sub 1 sgemm --m 1024 --n 1024 --k 1024 --repeat 300 --json >"$OUT/$1-sgemm.json" || failed=1
	sub 1 sgemm --m 1024 --n 1024 --k 1024 --repeat 300 --in-window --json \
		>"$OUT/$1-sgemmw.json" || failed=1
}
gpu_ms() { admin stats --json --run-dir "$W/run" | jq -r '.vms[] | "\(.vm_id) \(.sched.gpu_ms)"' | sort; }
window() { # window NAME: GPU ms per VM over 5 s
	local a
	a=$(gpu_ms)
	sleep 5
	join <(echo "$a") <(gpu_ms) | awk '{ printf "%s %.3f\n", $1, $3 - $2 }' >"$OUT/$1.txt"
}

PARTS=${PARTS:-lat tput shares}
if [[ " $PARTS " == *" lat "* ]]; then
	lat alone
	load 1 2 3 4 5 6 7 8
	sleep 3
	lat loaded
	admin stats --json --run-dir "$W/run" >"$OUT/stats-loaded.json"
	unload
fi

completed() { admin stats --json --run-dir "$W/run" | jq '[.vms[].completed] | add'; }
if [[ " $PARTS " == *" tput "* ]]; then
	timeout 120 "$BIN/vgpu-bench" --transport "shm:$(sock 8)" --case sgemm-2048 --repeat 40 \
		--json "$OUT/tput-native.json" >"$OUT/tput-native.txt" 2>&1 || failed=1
	load 1 1 2 3 4 5 6 7 8
	sleep 3
	a=$(completed); t0=$(date +%s%N)
	sleep 5
	b=$(completed); t1=$(date +%s%N)
	unload
	echo "$a $b $t0 $t1" >"$OUT/tput.txt"
fi

# Shares: everyone low priority.
if [[ " $PARTS " == *" shares "* ]]; then
admin set-priority --vm-uuid "$(uuid 1)" --priority low --yes --no-restart >/dev/null
admin remove-vm --vm-uuid "$(uuid 8)" >/dev/null
sleep 1
load 2 1
load 1 2 3 4 5 6 7
sleep 3
window one-vs-six
unload
admin create-pool --pool C --weight 400 >/dev/null
admin update-pool --pool B --weight 200 >/dev/null
for i in 4 5; do admin set-pool --vm-uuid "$(uuid "$i")" --pool C --yes --no-restart >/dev/null; done
admin remove-vm --vm-uuid "$(uuid 6)" >/dev/null
admin remove-vm --vm-uuid "$(uuid 7)" >/dev/null
load 1 1 2 3 4 5
sleep 3
window weights
# A live change: pool C's weight 400 -> 100 (A:B:C 1:2:1); the window
# starts 1 s after vgpu-admin returns (the mediator reads the registry
# every 500 ms).
admin update-pool --pool C --weight 100 >/dev/null
sleep 1
window weights-live
unload
fi
kill -TERM $MPID
wait $MPID || failed=1
rm -rf "$W"

row() { # row LABEL FILE
	jq -r --arg l "$1" '"\($l): latency p50 \(.latency_us.p50) p99 \(.latency_us.p99) us; queue p99 \(.queue_us.p99), exec p50 \(.exec_us.p50) p99 \(.exec_us.p99) us"' "$2"
}
for k in vadd sgemm sgemmw; do
	[ -f "$OUT/alone-$k.json" ] || continue
	row "$k alone " "$OUT/alone-$k.json"
	row "$k loaded" "$OUT/loaded-$k.json"
	jq -s -r --arg k "$k" '"\($k): p99 loaded / alone = \((.[1].latency_us.p99 / .[0].latency_us.p99) * 100 | round / 100)x (target <= 1.25x)"' \
		"$OUT/alone-$k.json" "$OUT/loaded-$k.json"
done
if [ -f "$OUT/tput.txt" ]; then
	native=$(jq -r '.cases[] | select(.name == "sgemm-2048") | .native_tflop_per_s' "$OUT/tput-native.json" 2>/dev/null)
	read -r a b t0 t1 <"$OUT/tput.txt"
	awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v n="${native:-0}" 'BEGIN {
		tf = (b - a) * 2 * 2048 ^ 3 / ((t1 - t0) / 1e9) / 1e12
		printf "aggregate 2048^3 sgemm, 8 VMs: %.2f TFLOP/s (%d in %.2f s); native alone %.2f TFLOP/s; ratio %.3f (target >= 0.95)\n",
			tf, b - a, (t1 - t0) / 1e9, n, (n > 0 ? tf / n : 0) }'
fi
[ -f "$OUT/one-vs-six.txt" ] && awk '{ t += $2; v[$1] = $2 } END { b = 0; for (i = 2; i <= 7; i++) { b += v[i]; s += v[i]; q += v[i] * v[i] }
	printf "one VM (pool A) against six (pool B): A %.3f, B %.3f (target 0.5 +- 0.05); Jain over B %.4f (target >= 0.99)\n",
		v[1] / t, b / t, s * s / (6 * q) }' "$OUT/one-vs-six.txt"
[ -f "$OUT/weights.txt" ] && awk '{ t += $2; v[$1] = $2 } END {
	printf "weights 1:2:4: A %.3f, B %.3f, C %.3f (target 0.143, 0.286, 0.571, each within 5%%)\n",
		v[1] / t, (v[2] + v[3]) / t, (v[4] + v[5]) / t }' "$OUT/weights.txt"
[ -f "$OUT/weights-live.txt" ] && awk '{ t += $2; v[$1] = $2 } END {
	printf "live change to 1:2:1, window from 1 s after: A %.3f, B %.3f, C %.3f (target 0.25, 0.5, 0.25)\n",
		v[1] / t, (v[2] + v[3]) / t, (v[4] + v[5]) / t }' "$OUT/weights-live.txt"
exit $failed
