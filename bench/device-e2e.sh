#!/bin/bash
# SPDX-License-Identifier: MIT
# device-e2e.sh - end-to-end tests (tests/e2e) on the GPU machine against
# the CUDA backend, with the binaries carried in ./.devbin (as for
# run-device.sh; VGPU_DEVBIN overrides) and this tree's tests:
#
#   bash bench/device-e2e.sh storm kept budgets soak cuda
#
# Each test's whole output goes to $OUT/e2e-NAME.log (./.devout without
# $OUT); its exit status, time and checks are printed. Exit status 0 only
# when every test passed. VGPU_E2E_BACKEND=cpu runs them on the CPU backend.
set -u
[ $# -gt 0 ] || { sed -n '3,11p' "$0"; exit 2; }
BIN=$(cd "${VGPU_DEVBIN:-./.devbin}" && pwd) || exit 2
OUT=${OUT:-$PWD/.devout}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$BIN VGPU_SRC=$PWD VGPU_TESTS=$PWD/tests VGPU_FAKES=$PWD/tests/fakes
export VGPU_ADMIN_BIN=$BIN/vgpu-admin VGPU_DB= VGPU_CONF=/nonexistent/vgpu.conf
export VGPU_MEDIATOR_BIN=$BIN/vgpu-mediator VGPU_SUBMIT_BIN=$BIN/vgpu-submit
export VGPU_SHM_API_BIN=$BIN/shm_api VGPU_E2E_BACKEND=${VGPU_E2E_BACKEND:-cuda}
# test-cuda.sh: the guest libcuda.so.1 in a directory of its own (on the
# library path of the probe alone: the mediator needs the real driver).
export VGPU_CUDA_PROBE=$BIN/guest-cuda/cuda_probe VGPU_CUDA_SHIM_DIR=$BIN/guest-cuda
export VGPU_CUDA_WORKER=$BIN/vgpu-cuda-worker
failed=0
for t in "$@"; do
	start=$(date +%s)
	timeout 280 bash "tests/e2e/test-$t.sh" >"$OUT/e2e-$t.log" 2>&1
	rc=$?
	echo "=== $t: exit $rc, $(($(date +%s) - start)) s"
	grep -E "^# alone|^ok|^not ok|^# [0-9]+ checks" "$OUT/e2e-$t.log" | tail -30
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
done
echo "device-e2e: $failed of $# failed"
[ "$failed" -eq 0 ]
