#!/bin/bash
# SPDX-License-Identifier: MIT
# test-bench-usage.sh - vgpu-bench's, gpu-paths' and pin-stall's command lines on a
# machine without a GPU (this one): vgpu-bench's --help and --list exit 0,
# and every bad value or unknown argument of either exits 2 with a message
# naming it, before CUDA is touched. The measurements themselves run on the
# H100 (bench/run-device.sh, bench/gpu-paths.sh).
set -u
BIN=${VGPU_BENCH_BIN:?VGPU_BENCH_BIN is not set}
GPU_PATHS=${VGPU_GPU_PATHS_BIN:?VGPU_GPU_PATHS_BIN is not set}
PIN_STALL=${VGPU_PIN_STALL_BIN:?VGPU_PIN_STALL_BIN is not set}
. "$VGPU_TESTS/lib/assert.sh"

out=$("$BIN" --help); rc=$?
expect_eq "$rc" "0" "--help exits 0"
grep -q -- '--warmup-ms MS' <<<"$out" && pass "--help describes --warmup-ms" || fail "--help: $out"
expect_eq "$("$BIN" --list | tr '\n' ' ')" \
	"vadd-4KiB vadd-256KiB vadd-4MiB vadd-64MiB sgemm-1024 sgemm-2048 sgemm-4096 " "--list names the cases"
while IFS='|' read -r args msg; do
	# shellcheck disable=SC2086 # args are words
	err=$("$BIN" $args 2>&1 >/dev/null); rc=$?
	expect_eq "$rc" "2" "usage error exits 2: $args"
	grep -qF -- "$msg" <<<"$err" && pass "names the problem: $args" || fail "message for $args: $err"
done <<'CASES'
--warmup-ms x|--warmup-ms: 'x' is not a number from 0 to 10000
--warmup-ms -1|--warmup-ms: '-1' is not a number from 0 to 10000
--warmup-ms 10001|--warmup-ms: '10001' is not a number from 0 to 10000
--warmup-ms 5ms|--warmup-ms: '5ms' is not a number from 0 to 10000
--warmup 1001|--warmup: '1001' is not a number from 0 to 1000
--repeat 0|--repeat: '0' is not a number from 1 to 100000
--depth 65|--depth: '65' is not a number from 1 to 64
--case nope|--case: no case 'nope' (see --list)
--bogus|unrecognized option '--bogus'
extra|unexpected argument 'extra'
CASES
# usage_errors NAME BIN: each "args|message" line of stdin makes BIN exit 2
# with the message on stderr.
usage_errors() {
	local name=$1 bin=$2 args msg err rc
	while IFS='|' read -r args msg; do
		# shellcheck disable=SC2086 # args are words
		err=$("$bin" $args 2>&1 >/dev/null); rc=$?
		expect_eq "$rc" "2" "$name usage error exits 2: $args"
		grep -qF -- "$msg" <<<"$err" && pass "$name names the problem: $args" ||
			fail "$name message for $args: $err"
	done
}
usage_errors gpu-paths "$GPU_PATHS" <<'CASES'
--n 5x|--n: '5x' is not a number from 1 to 16777216
--n 0|--n: '0' is not a number from 1 to 16777216
--n -3|--n: '-3' is not a number from 1 to 16777216
--n 16777217|--n: '16777217' is not a number from 1 to 16777216
--iters 9|--iters: '9' is not a number from 10 to 1000000
--mem disk|usage: gpu-paths
--stream fast|usage: gpu-paths
--wait never|usage: gpu-paths
--bogus 1|usage: gpu-paths
--n|usage: gpu-paths
CASES
usage_errors pin-stall "$PIN_STALL" <<'CASES'
--step 0|--step: '0' is not a number from 1 to 1024
--step 1025|--step: '1025' is not a number from 1 to 1024
--step 5x|--step: '5x' is not a number from 1 to 1024
--step -1|--step: '-1' is not a number from 1 to 1024
--step|usage: pin-stall
--bogus|usage: pin-stall
CASES
finish
