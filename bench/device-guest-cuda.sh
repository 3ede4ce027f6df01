#!/bin/bash
# SPDX-License-Identifier: MIT
# device-guest-cuda.sh - CUDA programs inside a VM through its vgpu-stub
# device on the GPU machine (issue 12's dev: channel), from the repository
# root, with what bench/pack-guest.sh put in ./.devbin:
#
#   bash bench/device-guest-cuda.sh
#
#  1. NVIDIA's cuda-samples of bench/samples.txt (not cublas-sgemm: cuBLAS
#     is too large for the guest's initramfs) run natively, for their
#     times and success lines;
#  2. a CUDA mediator (device-env.sh's cuda_mediator) with its per-VM
#     worker on NVIDIA's driver;
#  3. a guest (Debian's kernel, TCG: nested KVM hangs here) with vgpu.ko
#     and the guest libcuda.so.1 (.devbin/initrd-cuda.gz) runs cuda_probe,
#     each sample and cuda-calls (bench/cuda-calls.cu, also run natively
#     here) as an unprivileged user over /dev/vgpu0, the library's default
#     in a VM; then cuda_probe again, holding device memory, with a second
#     run of it beside it, killed (SIGKILL), then once more
#     (guest/image/init.sh, vgpu_test=cuda vgpu_arg=1).
# A program passes when it exits 0 and prints its success line; the
# probe's lines are checked as tests/vm/test-cuda-vm.sh checks them. The
# guest's times are TCG's: its CPU is emulated, so they say what works,
# not how fast. Results in $OUT (./.devout): guest.console, PROG-native.out,
# mediator.log, summary.txt (printed last). Exit status 0 when all passed.
set -u
. "$(dirname "$0")/device-env.sh" guest-cuda
CUDALIB=$(dirname "${VGPU_CUBLAS:-/usr/local/cuda/lib64/libcublas.so}")
failed=0
progs=$(grep -v -e "^#" -e "^cublas-sgemm " "$(dirname "$0")/samples.txt")

declare -A ntime nres
while read -r prog ok; do
	t0=$EPOCHREALTIME rc=0
	env LD_LIBRARY_PATH="$BIN:$CUDALIB" timeout 120 "$BIN/samples/$prog" >"$OUT/$prog-native.out" 2>&1 || rc=$?
	ntime[$prog]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	if [ $rc -eq 0 ] && grep -q -E "$ok" "$OUT/$prog-native.out"; then nres[$prog]=pass; else nres[$prog]="failed ($rc)"; fi
done <<<"$progs"

timeout 120 "$BIN/cuda-calls" >"$OUT/calls-native.json" 2>&1 || failed=1
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0006 guestcuda
if [ ! -S "$SOCK" ]; then
	echo "device-guest-cuda: the mediator did not start:"; cat "$OUT/mediator.log"; exit 1
fi
Q=$BIN/qemu
t0=$(date +%s)
timeout 450 "$Q/qemu-system-x86_64" -L "$Q/firmware" -M pc,memory-backend=ram -accel tcg \
	-m 1024 -object memory-backend-memfd,id=ram,size=1024M,share=on -smp 1 \
	-display none -no-reboot -nodefaults -serial stdio \
	-kernel "$BIN/vmlinuz" -initrd "$BIN/initrd-cuda.gz" \
	-append "console=ttyS0 quiet panic=-1 vgpu_test=cuda vgpu_arg=1" \
	-device "vgpu-stub,pool_id=A,priority=2,vm_id=1,mediator=$SOCK" \
	</dev/null >"$OUT/guest.raw" 2>"$OUT/guest.err" || failed=1
tr -d '\r' <"$OUT/guest.raw" >"$OUT/guest.console"
gsecs=$(($(date +%s) - t0))
kill -TERM "$MPID"
wait "$MPID" || failed=1

rows=()
c() { grep -E -- "$1" "$OUT/guest.console" >/dev/null; }
while read -r prog ok; do
	read -r grc gs < <(sed -n "s/^CUDA-RC $prog \([0-9]*\) \([0-9]*\)$/\1 \2/p" "$OUT/guest.console")
	if [ "${grc:-none}" = 0 ] && sed -n "s/^CUDA-OUT $prog //p" "$OUT/guest.console" | grep -q -E "$ok"; then
		res=pass
	else
		res="failed (${grc:-no result})" failed=1
	fi
	rows+=("| $prog | ${nres[$prog]} | $res | ${ntime[$prog]} s | ${gs:-?} s |")
done <<<"$progs"
probe=pass
for line in "count 0 1" "malloc 0 cudaSuccess" "copy 0 0 same" "launch 0 0 0 same" "stream 0 same ms=ok" \
	"memops 0 same zeros" "posted 0 0 same" "symbol 0 same" "copy2d 0 same pitch=ok" "ctx 0 current=ok popped=ok same"; do
	c "^CUDA-OUT cuda_probe $line$" || { probe="failed: no \"$line\""; failed=1; }
done
c "^CUDA-RC cuda_probe 0 " || { probe="failed: exit status"; failed=1; }
sed -n 's/^CUDA-OUT cuda-calls //p' "$OUT/guest.console" >"$OUT/calls-guest.json"
calls() { jq -r '"| \(.launch_us) us | \(.launch_sync_us.p50) / \(.launch_sync_us.p99) us | \(.h2d_gbs) / \(.d2h_gbs) GB/s | \(.ok) |"' "$1" 2>/dev/null || echo "| failed |"; }
again=pass
if ! c "^CUDA-BESIDE copy 0 0 same$" || ! c "^CUDA-HOLDING 1$" || ! c "^CUDA-AGAIN-RC 0$" || ! c "^CUDA-AGAIN copy 0 0 same$"; then
	again=failed failed=1
fi
# guest_streams' TX tail past its ring is the one stream closed as the guest's mistake.
[ "$(grep -c "stream .*closed" "$OUT/mediator.log")" -le 1 ] || { again="$again; streams closed as the guest's mistake"; failed=1; }
rm -rf "$W"
{
	echo "== CUDA programs in a TCG guest through its vgpu-stub device (dev:/dev/vgpu0) on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1), $(date -u +%F)"
	echo "guest ran $gsecs s (boot, each program, the kill and the rerun)"
	echo "cuda_probe through the device: $probe; a second one beside it, the first killed while holding memory, then again: $again"
	echo "| program | native | guest (TCG, dev:) | native time | guest time (TCG) |"
	echo "| --- | --- | --- | --- | --- |"
	printf '%s\n' "${rows[@]}"
	echo
	echo "| cuda-calls | launch (in the caller) | launch + sync p50 / p99 | 64 MiB H2D / D2H, pinned | every call right |"
	echo "| --- | --- | --- | --- | --- |"
	echo "| native $(calls "$OUT/calls-native.json")"
	echo "| guest (TCG, dev:) $(calls "$OUT/calls-guest.json")"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
exit $failed
