#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-timeout.sh - a hanging xenstore-read delays the start by the
# wrapper's 5 s deadline at most, then the VM starts unchanged.
. "$(dirname "$0")/lib.sh"

make_db
register "$UUID1" i-2-33-VM B 2 7
xs_domain 5 "$UUID1" i-2-33-VM
touch "$FAKE_XENSTORE_DIR/.hang"

start=$(date +%s)
run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
took=$(($(date +%s) - start))
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}"
expect_log 'did not answer within 5000 ms; starting it without vgpu-stub'
[ "$took" -le 12 ] || fail "took $took s"
[ "$took" -ge 4 ] || fail "gave up after $took s, before the deadline"
ok "hanging xenstore-read: unchanged after ${took}s"
