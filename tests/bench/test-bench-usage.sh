#!/bin/bash
# test-bench-usage.sh - vgpu-bench's command line on a machine without a
# GPU (this one): --help and --list exit 0, and every bad value or unknown
# argument exits 2 with a message naming it, before CUDA is touched. The
# measurements themselves run on the H100 (bench/run-device.sh).
set -u
BIN=${VGPU_BENCH_BIN:?VGPU_BENCH_BIN is not set}
. "$VGPU_TESTS/lib/assert.sh"

out=$("$BIN" --help); rc=$?
expect_eq "$rc" "0" "--help exits 0"
grep -q -- '--warmup-ms MS' <<<"$out" && pass "--help describes --warmup-ms" || fail "--help: $out"
expect_eq "$("$BIN" --list | tr '\n' ' ')" \
	"vadd-4KiB vadd-256KiB vadd-4MiB vadd-64MiB sgemm-1024 sgemm-4096 " "--list names the cases"
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
finish
