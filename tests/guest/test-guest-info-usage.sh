#!/bin/bash
# SPDX-License-Identifier: MIT
# test-guest-info-usage.sh - vgpu-guest-info on a machine without the
# device (this one): usage errors exit 2 naming the problem, --help and
# --version exit 0, and a plain run says there is no vgpu-stub (exit 1).
# The device itself is read in a real guest by tests/vm/test-vm.sh.
set -u
BIN=${VGPU_GUEST_INFO_BIN:?VGPU_GUEST_INFO_BIN is not set}
. "$VGPU_TESTS/lib/assert.sh"

out=$("$BIN" --help); rc=$?
expect_eq "$rc" "0" "--help exits 0"
grep -q '^usage: vgpu-guest-info \[--json\]' <<<"$out" && pass "--help prints the usage" || fail "--help: $out"
expect_eq "$("$BIN" --version)" "vgpu-guest-info 0.1.0" "--version"
for args in "--bogus" "extra" "--json extra"; do
	# shellcheck disable=SC2086 # args are words
	err=$("$BIN" $args 2>&1 >/dev/null); rc=$?
	expect_eq "$rc" "2" "usage error exits 2: $args"
	grep -qE "unrecognized option|unexpected argument" <<<"$err" && pass "names the problem: $args" ||
		fail "message for $args: $err"
done
# Build and CI machines have no vgpu-stub: the search must come up empty.
err=$("$BIN" 2>&1 >/dev/null); rc=$?
expect_eq "$rc" "1" "no device: exit 1"
grep -q "no vgpu-stub device (PCI 1af4:1111)" <<<"$err" && pass "no device: says so" || fail "$err"
finish
