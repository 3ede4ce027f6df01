#!/bin/bash
# SPDX-License-Identifier: MIT
# test-cuda-shim.sh - vgpu's libcuda.so.1 (guest/cuda/) under NVIDIA's own
# static cudart: cuda_probe (built with nvcc's defaults) runs with the shim
# first on its library path, against the scripted host peer cuda_peer.py
# (this machine has no GPU, so the host's side is scripted; the mediator's
# own answer is tested in tests/e2e). Checks:
#   - no channel set, or a socket nobody listens on: cudart reports
#     cudaErrorNoDevice (100) and the shim says why, one line;
#   - a host with no GPU for the VM: cudaErrorNoDevice;
#   - a peer that errs, garbles (checksum, length, oversized) or hangs:
#     cudaErrorNoDevice, within VGPU_CUDA_TIMEOUT_MS for the hang;
#   - one device, then two: cudart's start-up (export tables, the
#     integrity check's hash, CUDA 13's cuLibraryLoadData) passes, and
#     every property the probe prints is the description's;
#   - device memory through the host's calls (cuda_call.h; the peer
#     emulates memory, it is no GPU): a 3 MiB round trip in 1 MiB pieces,
#     the VM's quota as cudaMemGetInfo's total, an allocation over it
#     (cudaErrorMemoryAllocation), a double free (cudaErrorInvalidValue);
#   - a kernel launched with <<<>>>: cudart's cuLibraryGetKernel sends the
#     image and asks the kernel's parameter layout, cuLaunchKernel sends
#     the parameters (the peer emulates that one kernel);
#   - a host that refuses the calls: cudaErrorNotSupported; a host that
#     dies in the middle: the calls after it fail, the process goes on;
#   - an entry point not implemented yet fails cleanly with
#     CUDA_ERROR_NOT_SUPPORTED and a log line naming it.
set -u
PROBE=${VGPU_CUDA_PROBE:?}
SHIM=${VGPU_CUDA_SHIM_DIR:?}
PEER=${VGPU_CUDA_PEER:?}
T=$(mktemp -d /tmp/vgpu-cuda-shim.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$T"' EXIT
fails=0
count=0

pass() { count=$((count + 1)); echo "ok - $*"; }
fail() { count=$((count + 1)); fails=$((fails + 1)); echo "not ok - $*"; }
# probe [ENV...]: runs the probe with the shim; output in $out, stderr in $err.
# Sanitized builds: the shim's sanitizer runtime preloaded (the probe is
# not built with it), and no leak report for cudart's own allocations.
probe() {
	env LD_LIBRARY_PATH="$SHIM" LD_PRELOAD="${VGPU_CUDA_PRELOAD:-}" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		VGPU_TRANSPORT= VGPU_CUDA_TRANSPORT= "$@" \
		timeout 30 "$PROBE" >"$T/out" 2>"$T/err"
	rc=$?
	out=$(cat "$T/out")
	err=$(cat "$T/err")
}
# peer NAME MODE [ARGS]: a peer on $T/NAME.sock, ready when it returns.
peer() {
	python3 "$PEER" "$T/$1.sock" "${@:2}" >"$T/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do grep -q ready "$T/$1.log" 2>/dev/null && return; sleep 0.1; done
	echo "peer $1 did not start: $(cat "$T/$1.log")"
	exit 1
}
check() { # check WHAT PATTERN: $out matches PATTERN
	grep -qE -- "$2" <<<"$out" && pass "$1" || fail "$1: '$out' does not match '$2' ($err)"
}
check_err() {
	grep -qE -- "$2" <<<"$err" && pass "$1" || fail "$1: stderr '$err' does not match '$2'"
}

# ---- no host ----
probe
check "no channel set: cudaErrorNoDevice" "^count 100 -1$"
check_err "the shim says why" "^vgpu libcuda: no GPU: no channel to the host: no /dev/vgpu0, and neither VGPU_CUDA_TRANSPORT nor VGPU_TRANSPORT is set$"
probe VGPU_TRANSPORT="unix:$T/nobody.sock"
check "nobody listening: cudaErrorNoDevice" "^count 100 -1$"
check_err "and why" "^vgpu libcuda: no GPU: "
probe VGPU_TRANSPORT="spool:$T"
check "a transport the CUDA calls do not use: cudaErrorNoDevice" "^count 100 -1$"
check_err "named in the message" "unix:, shm: or dev: only"
probe VGPU_TRANSPORT="dev:$T/no-such-device"
check "a device that is not there: cudaErrorNoDevice" "^count 100 -1$"
check_err "and why" "no-such-device: .*"

# ---- bad hosts ----
for mode in none error bad-crc short huge; do
	peer "$mode" "$mode"
	probe VGPU_TRANSPORT="unix:$T/$mode.sock"
	check "peer '$mode': cudaErrorNoDevice" "^count 100 -1$"
done
peer hang hang
t0=$(date +%s%N)
probe VGPU_CUDA_TRANSPORT="unix:$T/hang.sock" VGPU_CUDA_TIMEOUT_MS=500
ms=$((($(date +%s%N) - t0) / 1000000))
check "a peer that never answers: cudaErrorNoDevice" "^count 100 -1$"
[ "$ms" -lt 5000 ] && pass "after the 500 ms timeout ($ms ms, at most 5000)" || fail "took $ms ms"

# ---- one device ----
peer one good
probe VGPU_TRANSPORT="unix:$T/one.sock"
check "one device counted" "^count 0 1$"
check "the driver version is the host's" "^driver 13000$"
check "its properties are the description's" \
	"^device 0 0 name=vgpu test device \(H200-like\) cc=9\.0 mem=150754820096 sms=132 warp=32 bus=25 uuid0=a0$"
check "host memory can be mapped, as the description says (a socket, not a VM's device)" "^maphost 0 1$"
check "cudaFree(0) makes the context, frees nothing" "^free0 0$"
check "cudaMalloc through the host" "^malloc 0 cudaSuccess$"
check "3 MiB there and back, the same bytes" "^copy 0 0 same$"
check "cudaMemGetInfo: the VM's quota (256 MiB here), less what it holds" \
	"^info 0 free=$(((256 << 20) - (3 << 20))) total=$((256 << 20))$"
check "over the quota: cudaErrorMemoryAllocation" "^huge 2 cudaErrorMemoryAllocation$"
check "cudaDeviceSynchronize" "^sync 0$"
check "a kernel launched (<<<>>>): the image sent on first use, the parameters (a char, then a struct aligned to 4) laid out as the host says; every result right" \
	"^launch 0 0 0 same$"
check "a stream of its own: async copies and a launch on it between two events, every result right, the time between them" \
	"^stream 0 same ms=ok$"
check "the time to an event never recorded: cudaErrorInvalidResourceHandle" "^stream-bad 400$"
check "page-locked host memory (its flags asked), a memset and a device-to-device copy: the bytes right" \
	"^memops 0 same zeros$"
check "freeing host memory twice: cudaErrorInvalidValue; mapped host memory: cudaErrorNotSupported; a memset past its allocation's end is posted, its cudaErrorInvalidValue comes with the next synchronize (not with a copy that fails on its own before it), once" \
	"^memops-bad 1 801 0 1 1 0$"
check "the streams' priority range, the host's (-5 to 0 here)" "^priorities 0 0 -5$"
check "600 launches posted back to back (more than are kept unread) with a memset among them, one synchronize: all ran, in order" \
	"^posted 0 0 same$"
check "a kernel's attributes (all of them, as cudaFuncGetAttributes asks), one set, blocks per multiprocessor, the block size that fills one (cudart's own search, answered by the shim's cache)" \
	"^func 0 threads=1024 blocks=ok potential=ok$"
check "cudaMemcpyToSymbol and cudaMemcpyFromSymbol: a global variable of the module, its bytes there and back; its address device memory to cudaMemcpyDefault" "^symbol 0 same$"
check "cudaLaunchKernelEx with a priority and a cluster of one block: the attributes carried, every result right" \
	"^launch-ex 0 0 same$"
check "cudaLaunchCooperativeKernel (cuLaunchCooperativeKernel: the cooperative attribute carried), every result right" \
	"^coop 0 0 same$"
check "cudaStreamIsCapturing: never" "^capture 0 0$"
check "cudaDeviceSetLimit: the malloc heap to 16 MiB (read back) and back; the persisting L2 set-aside refused (cudaErrorUnsupportedLimit)" \
	"^setlimit 0 0 0 0 heap=16 l2=215$"
check "managed memory: written by the CPU, a kernel, read after a synchronize; written again, launched again; copied to the host; prefetched; 1 MiB of it beside a staged 1 MiB copy; a managed pointer; no concurrent managed access said" \
	"^managed 0 first=same second=same copy=same big=same type=3 cma=0$"
check "stream-ordered allocation: two arrays from the default pool in a stream's order, a kernel, freed in order (every result right, none in use after); a pool of its own keeping what is freed, trimmed to nothing; an allocation over the quota (cudaErrorMemoryAllocation); the pool made current, destroyed with an allocation live, the default current again" \
	"^pool 0 same used=0 kept=yes trimmed=0 huge=2 current=ok$"
check "virtual memory management: two physical allocations mapped side by side in one reserved range, released (the mappings keep them), readable and writable; a copy and a kernel across the two, every result right; the handle from an address, its device; unmapped, the range freed" \
	"^vmm 0 gran=ok same retained=ok$"
check "mapped page-locked memory used by a kernel through its host pointers: refused here (no mapped memory on the scripted host)" \
	"^zerocopy 801$"
check "cudaMemset2D into pitched memory (cuMemsetD2D8: a memset per row): the rows set, the padding not" "^memset2d 0 same$"
check "cudaLaunchHostFunc and cudaStreamAddCallback: each runs once the stream's work before it is done, the callback told its status" \
	"^hostfn 0 order=ok status=0$"
check "cudaDeviceGetLimit: the host's stack size" "^limit 0 ok$"
check "cudaMemcpy and cudaMemcpyAsync with cudaMemcpyDefault (the direction from the pointers: cuMemcpy), and what each pointer is: device, host (page-locked), unregistered" \
	"^unified 0 same types=2,1,0$"
check "cudaHostRegister: anonymous pages, part of a heap block, whole pages of the caller's stack, their bytes there and back, the same after cudaHostUnregister; a shared mapping still shared; mapped registration refused (the scripted host maps nothing for kernels)" \
	"^register 0 same kept shared mapped=801$"
check "cudaMallocPitch and 2D copies (host to pitched device memory, device to device, device to host rows apart, asynchronously): every row right, the padding untouched" \
	"^copy2d 0 same pitch=ok$"
check "a CUDA array and a texture object of it: copied in, read by a kernel through the texture, copied out, to another array and through device memory, every element right; its descriptor; the texture's descriptors queried back" \
	"^texture 0 kernel=same back=same copies=same desc=ok queries=ok$"
check "a context of its own (cuCtxCreate through cudaGetDriverEntryPointByVersion): current when made, popped and pushed back, a copy in it, destroyed: the one before current again" \
	"^ctx 0 current=ok popped=ok same$"
check "private tables cuBLAS Lt reads: TOOLS_TLS slot 2 the current context, 21318c60 slot 4 its id (as cuCtxGetCurrent and cuCtxGetId), the table as long as NVIDIA's (93 words)" \
	"^export 0 tls=ok id=ok size=93$"
check "on a thread with no current context: slot 2 gives none, slot 4 id 0 (as NVIDIA's driver answers)" \
	"^export-thread null 0 0$"
check "fork(): the child's CUDA calls fail (cudaErrorInitializationError), the parent's page-locked and registered memory are the child's own copies (its writes do not reach the parent)" \
	"^fork 3 pinned=private registered=private child=ok$"
check "cudaFree" "^free 0$"
check "freeing it again: cudaErrorInvalidValue" "^free-again 1 cudaErrorInvalidValue$"
[ "$rc" = 0 ] && pass "the probe exits 0" || fail "exit $rc"
probe VGPU_TRANSPORT="unix:$T/one.sock" VGPU_CUDA_PIECE_KIB=1024 VGPU_CUDA_WINDOW_MIB=0 VGPU_CUDA_LOG=1
check "without a window, the bytes in the calls, in 1 MiB pieces: the same" "^copy 0 0 same$"
check "and page-locked memory of the guest's own" "^memops 0 same zeros$"
grep -q "^vgpu libcuda: export table CUDART_INTERFACE$" <<<"$err" &&
	pass "VGPU_CUDA_LOG logs the tables cudart asks for" || fail "no log: $err"
probe VGPU_TRANSPORT="unix:$T/one.sock" VGPU_CUDA_WINDOW_MIB=0 VGPU_CUDA_LOG=2
grep -qE "^vgpu libcuda: call 3 \(0x[0-9a-f]+ 0 0 0 0, 0 bytes\): 0 \(0x[0-9a-f]+ 0\)$" <<<"$err" &&
	grep -qE "^vgpu libcuda: call 4 \(0x[0-9a-f]+ 0 0 0 0, 0 bytes\): 1 \(0 0\)$" <<<"$err" &&
	grep -qE "^vgpu libcuda: post 12 \(0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+, [0-9]+ bytes\)$" <<<"$err" &&
	pass "VGPU_CUDA_LOG=2 logs every call to the host with its answer (an allocation, the double free's cudaErrorInvalidValue) and every posted one (a launch)" ||
	fail "VGPU_CUDA_LOG=2: $(grep -E "call (3|4) |post 12 " <<<"$err" | head -5)"
probe VGPU_TRANSPORT="unix:$T/one.sock" VGPU_CUDA_LOG=1
[ "$(grep -c "^vgpu libcuda: registered memory at .*: moved into the window$" <<<"$err")" = 3 ] &&
	[ "$(grep -c "^vgpu libcuda: registered memory at .*: kept where it is (not whole pages" <<<"$err")" = 2 ] &&
	[ "$(grep -c "^vgpu libcuda: registered memory at .*: kept where it is (its copies staged)" <<<"$err")" = 1 ] &&
	pass "registered memory: the anonymous pages moved into the window, part of a heap block and the caller's stack (not whole pages of their own) and the shared mapping kept where they are (the mapped registration moved, then back: nothing mapped for kernels here; the third move is the fork check's)" ||
	fail "$(grep "registered memory" <<<"$err")"
probe VGPU_TRANSPORT="unix:$T/one.sock" VGPU_CUDA_WINDOW_MIB=1
check "a window of 1 MiB: 3 MiB staged through its two slots of 128 KiB, 24 pieces in turn, the same bytes" "^copy 0 0 same$"
check "page-locked memory carved from it: the bytes right" "^memops 0 same zeros$"
check "and every launch's" "^posted 0 0 same$"
probe VGPU_CUDA_TRANSPORT="shm:$T/one.sock" VGPU_TRANSPORT=unix:/nonexistent
check "VGPU_CUDA_TRANSPORT first, shm: names the same socket" "^count 0 1$"

# ---- hosts that refuse or lose the calls ----
peer refuse refuse-open
probe VGPU_TRANSPORT="unix:$T/refuse.sock"
check "calls refused: cudaMalloc fails with cudaErrorNotSupported" "^malloc 801 cudaErrorNotSupported$"
check_err "the shim says so" "the host refused this process's calls"
peer die die-after-3
probe VGPU_TRANSPORT="unix:$T/die.sock"
check "a host gone after 3 calls (allocation, both copies): the 4th fails" "^info 719 "
check "and every call after it (cudaErrorLaunchFailure)" "^sync 719$"
check_err "the shim says the context is lost" "the connection to the host broke"
[ "$rc" = 0 ] && pass "the probe itself goes on to its end" || fail "exit $rc"
probe VGPU_TRANSPORT="unix:$T/one.sock"
check "a CUDA graph by stream capture: the kernel captured (active during, none after), not run; the graph instantiated and launched three times: every result right; the legacy stream cannot be captured (cudaErrorStreamCaptureUnsupported)" \
	"^graph 0 same during=1 after=0 legacy=900$"
check "a graph built node by node (a copy in and a memset, the roots; an empty node; the kernel; a copy out; a host node checking every result): launched three times, its kernel's parameters changed in the executable graph, the graph changed and the executable graph updated, a clone, the graph as another's child: the host node saw every result right each time; the queries; a cycle refused (cudaErrorInvalidValue)" \
	"^built-graph 0 host=8/8 nodes=6 roots=2 edges=5 set=same update=same clone=same child=same ipc=801 cycle=1$"
check "memory nodes in built graphs: an allocation, used and freed in its graph, launched twice, the bytes right each time; one freed outside (cudaFree, cudaFreeAsync), launched again before (cudaErrorInvalidValue) and after, freed on launch; 1 MiB in use while it is live; cloning it and a second executable graph refused (cudaErrorNotSupported), a free node for memory no graph allocated (cudaErrorInvalidValue); another graph freeing it after its own graph is gone, a third graph's free node for it too (as NVIDIA's driver allows), cudaFree after (cudaErrorInvalidValue); a child graph given a memory node (cudaErrorNotSupported); nothing left once every graph is gone" \
	"^graph-mem 0 a=2/2 b=same relaunch=1 auto=0 used=1 clone=801 twice=801 lose=801/801 stray=1 other=0/1 child=801 left=0$"
check "a capture the host's graph cannot hold (an allocation in stream order, pageable copies in and out, a host function, a free; a second stream forked and joined by events, capturing while joined): recorded here, the graph destroyed once instantiated, launched three times with new input, every result right and the host function run each time; a pageable copy after a launch with an attribute (only the host's graph keeps it) refused (cudaErrorStreamCaptureUnsupported), the capture invalidated (cudaErrorStreamCaptureInvalidated); a 2D device copy captured alone (the host's graph, every value right); a built graph launched into a capture refused (cudaErrorStreamCaptureUnsupported, as NVIDIA's driver refuses it), the capture invalidated" \
	"^capture-guest 0 right=3/3 calls=3 during=1 after=0 mixed=900/901 2d=same replay=900/901$"
check_err "the clone refused: the log says why" "a graph with memory nodes cannot be cloned"
check "an entry point not implemented yet (cudaIpcGetMemHandle): cudaErrorNotSupported" " ipc=801 "
check_err "and a log line naming it" "cuIpcGetMemHandle \(CUDA [0-9.]+\) is not implemented yet"
check_err "a cycle: the log says why" "a graph with a cycle cannot be instantiated"
# Every name NVIDIA's libcuda.so.1 exports is there to dlsym() (cuBLAS Lt
# looks up 82 and fails without them): an unimplemented one answers
# CUDA_ERROR_NOT_SUPPORTED (801) and says so, an older name of an
# implemented entry (same prototype) and a per-thread-stream name are
# that entry.
names() { nm -D --defined-only "$1" | awk '$2 ~ /^[TW]$/ && $3 ~ /^cu/ { print $3 }' | sort -u; }
if [ "${VGPU_CUDA_STUB_LIB:--}" = - ]; then
	fail "no stub libcuda.so in the toolkit: the library exports only what it implements"
else
	missing=$(comm -23 <(names "$VGPU_CUDA_STUB_LIB") <(names "$SHIM/libcuda.so.1"))
	n=$(names "$VGPU_CUDA_STUB_LIB" | wc -l)
	[ "$n" -ge 300 ] && [ -z "$missing" ] &&
		pass "the library exports all $n names NVIDIA's stub libcuda.so exports" ||
		fail "$n names in the stub library; missing here: $(head -c 300 <<<"$missing")"
fi
out=$("${VGPU_SHIM_NAMES:?}" "$SHIM/libcuda.so.1" 2>"$T/err")
err=$(cat "$T/err")
check "dlsym(cuLinkCreate_v2), not implemented: 801; cuDevicePrimaryCtxRelease and cuStreamDestroy are their _v2; cuLaunchKernel_ptsz and cuMemcpyHtoD_v2_ptds are their entries" \
	"^link 801 old-name True True per-thread True True$"
check_err "and the unimplemented one says so" "^vgpu libcuda: cuLinkCreate_v2 is not implemented yet: CUDA_ERROR_NOT_SUPPORTED$"

# ---- libnvidia-ml.so.1: NVML's device queries through the shim ----
nvml() { # nvml [ENV...]: nvml_check (built as the libraries are) with vgpu's NVML and libcuda
	out=$(env LD_LIBRARY_PATH="$VGPU_NVML_DIR:$SHIM" VGPU_TRANSPORT= VGPU_CUDA_TRANSPORT= "$@" \
		timeout 30 "$VGPU_NVML_CHECK" "$VGPU_NVML_DIR/libnvidia-ml.so.1" 2>"$T/err")
	err=$(cat "$T/err")
}
nvml VGPU_CUDA_TRANSPORT="unix:$T/one.sock"
check "nvmlInit_v2 through the shim, one device" "^init 0"$'\n'"count 0 1$"
check "its name, as the description's" "^name 0 0 vgpu test device \(H200-like\)$"
check "its UUID in NVML's form, the description's bytes" "^uuid 0 0 GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf$"
check "its PCI address (NVML's two forms) and parts" "^pci 0 0 00000000:19:00.0 0000:19:00.0 0 25 0$"
check "its compute capability" "^cc 0 0 9 0$"
check "its memory: the VM's quota (256 MiB), none held" "^memory 0 0 268435456 268435456 0$"
check "the same in nvmlMemory_v2" "^memory-v2 0 0 True True$"
check "the handle found again by UUID and by PCI address; its index" "^by-uuid-pci 0 0 0 0 same$"
check "the CUDA driver version, the host's" "^cuda-version 0 13000$"
check "bad questions: an index past the count, no pointer, not a handle (INVALID_ARGUMENT 2), a short buffer (INSUFFICIENT_SIZE 7), no such UUID or PCI address (NOT_FOUND 6, INVALID_ARGUMENT 2), a wrong struct version (25), an unknown init flag (2)" \
	"^bad 2 2 2 7 6 2 25 2$"
check "shut down once: then UNINITIALIZED (1)" "^shutdown 0 1 1$"
nvml
check "no channel to the host: DRIVER_NOT_LOADED (9), no devices" "^init 9"$'\n'"count 1 0$"
check_err "and libcuda says why" "no channel to the host"

# ---- two devices (the integrity hash covers each) ----
peer two good --count 2
probe VGPU_TRANSPORT="unix:$T/two.sock"
check "two devices counted" "^count 0 2$"
check "device 1 on its own bus, its own UUID" "^device 1 0 name=vgpu test device \(H200-like\) cc=9\.0 mem=150754820096 sms=132 warp=32 bus=26 uuid0=a1$"

echo "# $((count - fails)) of $count passed"
[ "$fails" = 0 ]
