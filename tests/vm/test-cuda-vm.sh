#!/bin/bash
# SPDX-License-Identifier: MIT
# test-cuda-vm.sh - CUDA programs inside a VM through its vgpu-stub device
# (issue 12's dev: channel): a real guest (Debian's kernel, TCG, guest RAM
# in a shared memfd) runs cuda_probe (nvcc's defaults, static cudart) with
# the guest libcuda.so.1, as an unprivileged user of group vgpu, over
# /dev/vgpu0 (the library's default in a VM); the mediator carries its
# streams to the VM's CUDA worker, whose driver is vgpu's own libcuda.so.1
# on the scripted host (tests/guest/cuda_peer.py: no GPU here; NVIDIA's
# driver on the GPU machine, bench/device-guest-cuda.sh). Checked:
#   - the probe's device, memory, kernels, streams, memsets, posted
#     launches and the VM's quota, every result right, through the device;
#   - a second run of it beside the first, the VM's quota shared by both;
#     NVML's questions beside it (guest libnvidia-ml.so.1, nvml_check):
#     the VM's quota and what it holds;
#     vgpu-submit (the whole window) refused busy meanwhile; the driver's
#     streams misused (tests/vm/guest_streams.c): each misuse refused, no
#     program maps another's slot, a stream whose index leaves its ring
#     closed by the mediator;
#   - the probe killed with SIGKILL mid-run: the driver closes its
#     streams, the mediator drops them and the worker frees what it held
#     (its device memory back to 0); vgpu-submit then has the window, and
#     the next run works;
#   - a second VM over its socket (unix:) at the same time is unaffected.
set -eu
: "${VGPU_QEMU:?run through meson test}" "${VGPU_MEDIATOR_BIN:?}" "${VGPU_ADMIN_BIN:?}"
: "${VGPU_TESTS:?}" "${VGPU_SRC:?}" "${VGPU_BUILD:?}" "${VGPU_CUDA_WORKER:?}"
: "${VGPU_CUDA_SHIM_DIR:?}" "${VGPU_CUDA_PEER:?}" "${VGPU_CUDA_PROBE:?}"
. "$VGPU_TESTS/lib/assert.sh"

. "$VGPU_TESTS/vm/lib.sh"
PEER=""
vm_cleanup_more() {
	[ -n "$PEER" ] && kill -9 "$PEER" 2>/dev/null
	pkill -9 -f "vgpu-cuda-worker --vm-uuid 00000000-0000-4000-8000-00000000000" 2>/dev/null || true
}
vm_setup vgpu-cuda-vm
admin register-vm --vm-uuid "$(uuid 1)" --vm-name cuda1 --pool A --priority 2 --vm-id 1 >/dev/null
admin register-vm --vm-uuid "$(uuid 2)" --vm-name cuda2 --pool B --priority 0 --vm-id 2 >/dev/null
admin set-sched --vm-uuid "$(uuid 1)" --mem-quota 64 >/dev/null

python3 "$VGPU_CUDA_PEER" "$T/peer.sock" good >"$T/peer.log" 2>&1 &
PEER=$!
for _ in $(seq 50); do grep -q ready "$T/peer.log" && break; sleep 0.1; done
# The workers' driver: vgpu's own libcuda.so.1 on the scripted host.
env LD_LIBRARY_PATH="$VGPU_CUDA_SHIM_DIR:${LD_LIBRARY_PATH:-}" VGPU_CUDA_TRANSPORT="unix:$T/peer.sock" \
	"$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$T/run" --spool-dir "$T/spool" --backend cpu \
	--log stderr --log-level info --set "cuda_worker=$VGPU_CUDA_WORKER" --set cuda_worker_user= \
	--set window_keep_s=0 2>>"$T/mediator.log" &
MPID=$!
for _ in $(seq 100); do [ -S "$T/run/control.sock" ] && break; sleep 0.1; done
vm_cuda() { admin stats --json --run-dir "$T/run" | jq -r --arg u "$(uuid "$1")" ".vms[] | select(.vm_uuid == \$u) | .cuda.$2"; }

if "$VGPU_QEMU" -version | grep -q 'version [1-4]\.'; then
	RAM=(-M pc -numa node,memdev=ram)
else
	RAM=(-M pc,memory-backend=ram)
fi
t0=$(date +%s)
"$VGPU_QEMU" -L /usr/share/qemu -L /usr/share/seabios "${RAM[@]}" -accel tcg \
	-m 256 -object memory-backend-memfd,id=ram,size=256M,share=on \
	-smp 1 -display none -nodefaults -serial stdio -no-reboot \
	-kernel "$ASSETS/vmlinuz" -initrd "$T/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 vgpu_test=cuda vgpu_arg=1" \
	-device "vgpu-stub,pool_id=A,priority=2,vm_id=1,mediator=$(sock 1)" \
	-d guest_errors -D "$T/guest.qlog" >"$T/guest.raw" 2>"$T/guest.err" &
GPID=$!

# Meanwhile VM 2's program over its socket, twice.
for i in 1 2; do
	env LD_LIBRARY_PATH="$VGPU_CUDA_SHIM_DIR" VGPU_CUDA_TRANSPORT="unix:$(sock 2)" \
		timeout 120 "$VGPU_CUDA_PROBE" >"$T/host$i.out" 2>&1 || true
done &
HOSTPID=$!

report() { tr -d '\r' <"$T/guest.raw" | sed -n '/^VGPU-TEST-BEGIN/,/^VGPU-TEST-END/p'; }
# While the guest's probe holds its 3 MiB (before it is killed), the
# worker's report shows them.
for _ in $(seq 3000); do report | grep -q '^CUDA-HOLDING' && break; kill -0 "$GPID" 2>/dev/null || break; sleep 0.1; done
sleep 2
HELD=$(vm_cuda 1 mem_held)
if timeout 600 tail --pid="$GPID" -f /dev/null && report | grep -q '^VGPU-TEST-END'; then
	pass "the guest booted, ran the probe through its device and reported ($(($(date +%s) - t0)) s)"
else
	fail "the guest did not finish its report"
	tail -n 30 "$T/guest.raw" "$T/guest.err" | sed 's/^/#   /'
fi
out() { report | sed -n "s/^CUDA-OUT cuda_probe //p"; }
has() {
	if out | grep -qE -- "$2"; then pass "$1"; else
		fail "$1"
		report | grep -E "CUDA-(OUT|ERR)" | head -n 60 | sed 's/^/#   /'
	fi
}
expect_eq "$(report | sed -n 's/^INSMOD-RC //p')" "0" "vgpu.ko loads"
has "the guest sees the host's GPU through /dev/vgpu0 (the library's default in a VM)" "^count 0 1$"
has "by its name" "^device 0 0 name=vgpu test device \(H200-like\) cc="
has "no mapped host memory offered over the device (canMapHostMemory 0)" "^maphost 0 0$"
has "cudaMalloc through the device's stream to the worker" "^malloc 0 cudaSuccess$"
has "3 MiB there and back, the bytes in the calls" "^copy 0 0 same$"
has "cudaMemGetInfo: the VM's quota, 64 MiB, less the 3 it holds" "^info 0 free=$((61 << 20)) total=$((64 << 20))$"
has "over the quota: cudaErrorMemoryAllocation" "^huge 2 cudaErrorMemoryAllocation$"
has "a kernel launched, its parameters laid out by the host's driver, every result right" "^launch 0 0 0 same$"
has "a stream of its own, async copies and a launch between two events" "^stream 0 same ms=ok$"
has "page-locked memory (the guest's own: no window through the device), a memset, a device copy" "^memops 0 same zeros$"
has "600 launches posted back to back through the stream, one synchronize: all ran, in order" "^posted 0 0 same$"
has "cudaMemcpyToSymbol and back" "^symbol 0 same$"
has "pitched memory and 2D copies" "^copy2d 0 same pitch=ok$"
has "a context of its own, pushed and popped" "^ctx 0 current=ok popped=ok same$"
expect_eq "$(report | sed -n 's/^CUDA-RC cuda_probe \([0-9]*\) .*/\1/p')" "0" "the probe exits 0"
# Killed mid-run, then again.
expect_eq "$(report | sed -n 's/^CUDA-AGAIN-RC //p')" "0" "after the probe was killed mid-run, it runs again"
report | grep -q '^CUDA-AGAIN copy 0 0 same$' && pass "with every result right" ||
	fail "$(report | grep CUDA-AGAIN | head)"
expect_eq "$(report | sed -n 's/^CUDA-HOLDING //p') $HELD" "1 $((3 << 20))" \
	"a probe holding 3 MiB: the VM's worker holds them for it"
sleep 2 # the worker's next report
expect_eq "$(vm_cuda 1 mem_held)" "0" "killed (SIGKILL) mid-run, its memory is freed: the driver's close drops its streams, the worker its connection"
# Beside the held one: the same program, vgpu-submit, guest_streams.
has_beside() { report | grep -qE "^CUDA-BESIDE $2" && pass "$1" || fail "$1: $(report | grep -E 'CUDA-BESIDE' | head -n 20)"; }
expect_eq "$(report | sed -n 's/^CUDA-BESIDE-RC //p')" "0" "a second program beside the first, each with streams of its own through the device"
has_beside "its 3 MiB right" "copy 0 0 same$"
has_beside "its kernel launch right" "launch 0 0 0 same$"
has_beside "the VM's quota shared by both: 64 MiB less 3 each" "info 0 free=$((58 << 20)) total=$((64 << 20))$"
report | grep -q "^NVML init 0$" && report | grep -q "^NVML count 0 1$" &&
	report | grep -q "^NVML memory 0 0 $((64 << 20)) $((61 << 20)) $((3 << 20))$" &&
	pass "NVML in the guest beside it: one device, its memory the VM's quota with the 3 MiB held" ||
	fail "NVML in the guest: $(report | grep '^NVML' | head -n 12)"
[ "$(report | sed -n 's/^CUDA-SUBMIT-RC //p')" != 0 ] && report | grep -q "^CUDA-SUBMIT .*busy" &&
	pass "vgpu-submit, which wants the whole window, is refused busy while programs have streams" ||
	fail "vgpu-submit beside streams: $(report | grep CUDA-SUBMIT)"
expect_eq "$(report | sed -n 's/^STREAMS-HOSTILE //p')" \
	"close-before-open=EINVAL open=0 map-past-its-slot=EINVAL map-short=EINVAL map-whole-window=EINVAL wait-for-window=EINVAL close-index-99=EINVAL open-second=0 open-third=ENOSPC close-second=0 close-second-again=EINVAL reopen-same-slot=0 other-program-own-stream-not-ours=0 tx-tail-past-ring=closed" \
	"the driver's streams misused: each refused with its error, no program maps another's slot, a TX tail past the ring closes the stream"
expect_eq "$(grep -c "stream [0-9]*: TX tail out of range; closed" "$T/mediator.log")/$(grep -c "stream .*closed" "$T/mediator.log")" "1/1" \
	"the mediator closed that stream, logged as the guest's, and no other"
expect_eq "$(report | sed -n 's/^CUDA-SUBMIT-AFTER-RC //p')" "0" "the programs gone, vgpu-submit has the whole window"
wait "$HOSTPID"
for i in 1 2; do
	grep -q '^copy 0 0 same$' "$T/host$i.out" && grep -q '^launch 0 0 0 same$' "$T/host$i.out" &&
		pass "VM 2 over its socket meanwhile (run $i): right" || fail "VM 2 run $i: $(head "$T/host$i.out")"
done
kill -0 "$MPID" && pass "the mediator is alive" || fail "the mediator died"
kill -TERM "$MPID"
wait "$MPID" && pass "and exits cleanly" || fail "mediator exit status"
MPID=""
finish
