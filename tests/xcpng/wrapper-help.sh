#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-help.sh - --help and --version, only as the sole argument.
. "$(dirname "$0")/lib.sh"

run_wrapper --help
[ "$status" -eq 0 ] || fail "--help: status $status"
expect_not_run
grep -q '^Usage: vgpu-qemu-wrapper DOMID --syslog' "$T/stdout" || fail "--help: no usage"
for key in stock_wrapper db strict; do
	grep -q "^  $key " "$T/stdout" || fail "--help does not list $key"
done
[ ! -s "$T/stderr" ] || fail "--help wrote to stderr"
ok "--help prints usage and the settings"

run_wrapper --version
[ "$status" -eq 0 ] || fail "--version: status $status"
expect_not_run
grep -Eq '^vgpu-qemu-wrapper [0-9]+\.[0-9]+\.[0-9]+$' "$T/stdout" || fail "--version output"
ok "--version"

run_wrapper --help --syslog
expect_argv "$STOCK" --help --syslog
run_wrapper 5 --version
expect_argv "$STOCK" 5 --version
ok "--help/--version among other arguments are passed through"
