#!/bin/bash
# SPDX-License-Identifier: MIT
# The guest libcuda.so.1 against the real mediator (issue 12, first part:
# the description). cuda_probe (nvcc's defaults, static cudart) runs with
# the shim over a VM's socket:
#   1. the CPU backend has no CUDA device: cudart reports cudaErrorNoDevice
#      and the shim says the host has no GPU for the VM (with
#      VGPU_E2E_BACKEND=cuda, on the GPU machine: the host's GPUs, by the
#      name nvidia-smi gives, and cudaMalloc failing cleanly: the host's
#      worker is not built yet);
#   2. OPEN, the call that asks for a process's calls to be served:
#      answered CUDA_ERROR_NOT_SUPPORTED (801) and logged, for now; a call
#      before OPEN closes the connection;
#   3. hostile CUDA calls on a VM's socket: a DESCRIBE after a request, one
#      with a payload, an unknown call number: each connection closed and
#      logged, the mediator still serves that VM and another.
. "$(dirname "$0")/lib.sh"

vm 1 A high
vm 2 B low
start_mediator
probe() {
	env LD_LIBRARY_PATH="$VGPU_CUDA_SHIM_DIR" LD_PRELOAD="${VGPU_CUDA_PRELOAD:-}" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		VGPU_CUDA_TRANSPORT="unix:$(sock "$1")" timeout 60 "$VGPU_CUDA_PROBE" \
		>"$T/probe.out" 2>"$T/probe.err" || true
}

# ---- 1. the description ----
probe 1
if [ "${VGPU_E2E_BACKEND:-cpu}" = cpu ]; then
	expect_eq "$(head -n 1 "$T/probe.out")" "count 100 -1" "CPU backend: cudaErrorNoDevice"
	grep -q "^vgpu libcuda: the host has no GPU for this VM$" "$T/probe.err" &&
		pass "the shim says the host has no GPU for the VM" || fail "$(cat "$T/probe.err")"
else
	n=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
	name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
	expect_eq "$(head -n 1 "$T/probe.out")" "count 0 $n" "CUDA backend: the host's $n GPU(s)"
	grep -q "^device 0 0 name=$name cc=" "$T/probe.out" && pass "device 0 is the $name" ||
		fail "$(cat "$T/probe.out")"
	grep -q "^malloc 801 cudaErrorNotSupported$" "$T/probe.out" &&
		pass "its first call for the GPU fails cleanly (no worker yet)" || fail "$(cat "$T/probe.out")"
fi

# ---- 2. OPEN ----
expect_eq "$(python3 "$RAW" "$(sock 1)" cuda-open)" "801" "OPEN: CUDA_ERROR_NOT_SUPPORTED"
grep -q "VM $(uuid 1): a CUDA program asks for the GPU; its calls are not served yet" "$T/mediator.log" &&
	pass "logged" || fail "$(grep -i cuda "$T/mediator.log")"
expect_eq "$(python3 "$RAW" "$(sock 1)" cuda-before-open)" "closed" "a call before OPEN: connection closed"
grep -q "a CUDA call before OPEN" "$T/mediator.log" && pass "logged as a framing error" ||
	fail "$(grep -i cuda "$T/mediator.log")"

# ---- 3. hostile calls ----
for c in after-request payload unknown-call; do
	expect_eq "$(python3 "$RAW" "$(sock 1)" "cuda-$c")" "closed" "a CUDA call '$c': connection closed"
done
grep -q "a CUDA description asked for after other messages" "$T/mediator.log" &&
	grep -q "a malformed CUDA call" "$T/mediator.log" && grep -q "malformed header" "$T/mediator.log" &&
	pass "each logged" || fail "$(grep -i cuda "$T/mediator.log")"
expect_eq "$(python3 "$RAW" "$(sock 1)" ok 100)/$(python3 "$RAW" "$(sock 2)" ok 100)" "0/0" \
	"the mediator still serves VM 1 and VM 2"
probe 2
[ -s "$T/probe.out" ] && pass "and answers VM 2's libcuda: $(head -n 1 "$T/probe.out")" ||
	fail "no answer: $(cat "$T/probe.err")"
stop_mediator
expect_eq "$MRC" "0" "mediator exits cleanly"
finish
