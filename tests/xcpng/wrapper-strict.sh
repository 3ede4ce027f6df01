#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-strict.sh - with strict = yes, trouble reading xenstore or the
# registry stops the start (status 1, no exec); unregistered VMs still pass.
. "$(dirname "$0")/lib.sh"

make_db
register "$UUID1" i-2-33-VM B 2 7
xs_domain 5 "$UUID1" i-2-33-VM
xs_domain 6 "$UUID2" other-vm
printf '# strict mode\nstrict = yes\n' >"$VGPU_CONF"

VGPU_DB=$T/missing.db run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_not_run
expect_log 'database .*missing.db does not exist; strict = yes, so not starting it'
ok "strict, missing registry: exit 1, stock wrapper not run"

run_wrapper 7 --syslog "${QEMU_ARGS[@]}"
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_not_run
expect_log "couldn't read path /local/domain/7/vm; strict = yes"
PATH=/nonexistent run_wrapper 5 --syslog
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_not_run
ok "strict, xenstore-read failing or missing: exit 1, stock wrapper not run"

run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
ok "strict, unregistered VM: unchanged"

run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}" -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
ok "strict, registered VM: device added"

run_wrapper x5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" x5 --syslog "${QEMU_ARGS[@]}"
ok "strict, malformed domid: unchanged"
