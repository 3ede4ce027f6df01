#!/bin/bash
# SPDX-License-Identifier: MIT
# device-guest.sh - the device path on the GPU machine (issue 10), from the
# repository root, with what bench/pack-guest.sh put in ./.devbin:
#
#   bash bench/device-guest.sh
#
#  1. vgpu-mediator --backend cuda, two VMs registered;
#  2. device-peer over VM 2: the mediator's own time per request on the
#     device path (doorbell to completion posted, less execution), host side;
#  3. vgpu-bench over VM 2's shm: window, vector_add 4 KiB and 64 MiB: native
#     CUDA (pinned) measured in this run, for the ratios below;
#  4. a guest (Debian's kernel, TCG: nested KVM hangs here) with vgpu.ko and
#     a static vgpu-submit, VM 1's vgpu-stub device on the CUDA mediator:
#     every op verified through the device; vector_add of 64 MiB vectors
#     pipelined (depth 2, arrays in the window); 4 KiB one at a time.
# VGPU_DEVICE_DMA=staged runs the mediator with device_dma=staged: the
# guest's window goes through the CUDA backend's pinned staging, as Xen's
# unpinnable pages would (default auto: pinned guest RAM).
# Results in $OUT (./.devout): guest.console, *.json, mediator.log,
# summary.txt (printed last). Exit status 0 when every step passed.
set -u
. "$(dirname "$0")/device-env.sh" guest
VM1=6f1c2a10-0000-4000-8000-0000000d0001 VM2=6f1c2a10-0000-4000-8000-0000000d0002
failed=0
step() { echo "=== $*"; }
"$BIN/vgpu-admin" --db "$W/db" register-vm --vm-uuid $VM1 --vm-name guest1 --pool A --priority high >/dev/null
"$BIN/vgpu-admin" --db "$W/db" register-vm --vm-uuid $VM2 --vm-name host2 --pool B --priority high >/dev/null
"$BIN/vgpu-mediator" --db "$W/db" --run-dir "$W/run" --spool-dir "$W/spool" --backend "${VGPU_GUEST_BACKEND:-cuda}" \
	--set "device_dma=${VGPU_DEVICE_DMA:-auto}" --log stderr --log-level info 2>"$OUT/mediator.log" &
MPID=$!
for _ in $(seq 300); do [ -S "$W/run/vm-$VM2.sock" ] && break; sleep 0.1; done
if [ ! -S "$W/run/vm-$VM2.sock" ]; then
	echo "device-guest: the mediator did not start:"; cat "$OUT/mediator.log"; exit 1
fi
step mediator: "$(grep -o 'backend [a-z]*' "$OUT/mediator.log" | head -n 1)"

step device-peer
timeout 120 "$BIN/device-peer" "$W/run/vm-$VM2.sock" --n 1024 --repeat 5000 --json >"$OUT/peer.json" || failed=1
cat "$OUT/peer.json"

step vgpu-bench
timeout 240 "$BIN/vgpu-bench" --transport "shm:$W/run/vm-$VM2.sock" --case vadd-4KiB --case vadd-64MiB \
	--depth 2 --json "$OUT/bench.json" >"$OUT/bench.txt" 2>&1 || failed=1
tail -n 12 "$OUT/bench.txt"

step guest
Q=$BIN/qemu
t0=$(date +%s)
timeout 400 "$Q/qemu-system-x86_64" -L "$Q/firmware" -M pc,memory-backend=ram -accel tcg \
	-m 1024 -object memory-backend-memfd,id=ram,size=1024M,share=on -smp 1 \
	-display none -no-reboot -nodefaults -serial stdio \
	-kernel "$BIN/vmlinuz" -initrd "$BIN/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 vgpu_test=gpu" \
	-device "vgpu-stub,pool_id=A,priority=2,vm_id=1,mediator=$W/run/vm-$VM1.sock" \
	</dev/null >"$OUT/guest.raw" 2>"$OUT/guest.err" || failed=1
tr -d '\r' <"$OUT/guest.raw" >"$OUT/guest.console"
echo "guest ran $(($(date +%s) - t0)) s"
g() { sed -n "s/^$1 //p" "$OUT/guest.console" | head -n 1; }
g LARGE-JSON >"$OUT/guest-large.json"
g SMALL-JSON >"$OUT/guest-small.json"
kill -TERM $MPID; wait $MPID; echo "mediator exit $?"

{
	echo "== device path on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1), $(date -u +%F), device_dma=${VGPU_DEVICE_DMA:-auto}"
	echo "guest window: $(grep -o 'device window of [0-9]* KiB registered ([^)]*)' "$OUT/mediator.log" | tail -n 1)"
	echo "guest ops verified (exit status; 0 ok): vector-add $(g OP-vector-add) saxpy $(g OP-saxpy) sgemm $(g OP-sgemm) reduce-sum $(g OP-reduce-sum)"
	jq -r '"mediator overhead, device path (host side, vector_add 4 KiB, \(.repeat) requests, \(.wrong) wrong): doorbell->completion p50 \(.rtt_us.p50) us p99 \(.rtt_us.p99) us; less execution p50 \(.overhead_us.p50) us p99 \(.overhead_us.p99) us"' "$OUT/peer.json"
	native=$(jq -r '.cases[] | select(.name == "vadd-64MiB") | .native_pinned_gb_per_s' "$OUT/bench.json")
	shm=$(jq -r '.cases[] | select(.name == "vadd-64MiB") | .mediated[0].pipelined.gb_per_s // empty' "$OUT/bench.json")
	guest=$(jq -r .throughput_gbps "$OUT/guest-large.json")
	echo "vector_add 64 MiB vectors: native pinned $native GB/s; host shm: pipelined ${shm:-?} GB/s; guest (TCG) device pipelined depth 2: $guest GB/s; guest/native $(awk -v g="$guest" -v n="$native" 'BEGIN { if (n > 0) printf "%.2f", g / n }')"
	jq -r '"guest small vector_add 4 KiB (TCG): latency p50 \(.latency_us.p50) us p99 \(.latency_us.p99) us; mediator queue p50 \(.queue_us.p50) us; execution p50 \(.exec_us.p50) us"' "$OUT/guest-small.json"
	jq -r '.cases[] | select(.name == "vadd-4KiB") | "host vector_add 4 KiB: native pinned p50 \(.native_pinned.p50) us; shm mediated p50 \(.mediated[0].blocking.p50 // "?") us"' "$OUT/bench.json"
} >"$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
rm -rf "$W"
exit $failed
