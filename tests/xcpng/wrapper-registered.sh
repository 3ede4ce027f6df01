#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-registered.sh - vgpu-qemu-wrapper adds -device vgpu-stub for a
# registered VM, found by UUID or (its UUID changed) by name, after the
# original arguments, which pass byte for byte.
. "$(dirname "$0")/lib.sh"

make_db
register "$UUID1" i-2-33-VM B 2 7
register "$UUID2" i-2-40-VM A 0 12
xs_domain 5 "$UUID1" i-2-33-VM

run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}" -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
expect_log 'domain 5, VM 0a1b2c3d-0000-4000-8000-000000000001: adding -device vgpu-stub'
[ "$(cat "$FAKE_XENSTORE_DIR/calls.log")" = /local/domain/5/vm ] ||
	fail "expected one xenstore-read of /local/domain/5/vm, got: $(cat "$FAKE_XENSTORE_DIR/calls.log")"
ok "registered VM: original arguments in order, then -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock"

run_wrapper 5 --syslog
expect_argv "$STOCK" 5 --syslog -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
ok "registered VM with no QEMU arguments"

run_wrapper 5 --syslog "${ODD_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${ODD_ARGS[@]}" -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
ok "spaces, commas, quotes, newlines and empty arguments pass byte for byte"

printf '/vm/%s\n' "${UUID2^^}" >"$FAKE_XENSTORE_DIR/local/domain/5/vm"
run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}" -device vgpu-stub,pool_id=A,priority=0,vm_id=12,mediator=/run/vgpu/vm-$UUID2.sock
ok "upper-case UUID in xenstore is found"

# CloudStack recreated the VM: new UUID, same name.
xs_domain 9 "$UUID3" i-2-33-VM
: >"$FAKE_XENSTORE_DIR/calls.log"
run_wrapper 9 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 9 --syslog "${QEMU_ARGS[@]}" -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
expect_log "VM $UUID3 is registered by its name \"i-2-33-VM\" under UUID $UUID1"
printf '/local/domain/9/vm\n/local/domain/9/name\n' | cmp -s - "$FAKE_XENSTORE_DIR/calls.log" ||
	fail "expected xenstore-read of vm then name"
ok "VM whose UUID changed is found by its name"

# Two VMs registered under one name: not registered.
sqlite3 "$VGPU_DB" "UPDATE vms SET vm_name = 'i-2-33-VM' WHERE vm_uuid = '$UUID2';"
run_wrapper 9 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 9 --syslog "${QEMU_ARGS[@]}"
expect_log 'several VMs are registered as "i-2-33-VM"'
ok "ambiguous name counts as not registered: unchanged, logged"

# xenopsd may start the wrapper with SIGCHLD ignored. The lookup must still
# read xenstore-read's status, and the stock wrapper must get the
# disposition the wrapper was started with.
export ARGV_DUMP_SIGIGN=$T/sigign
sigchld_ignored() {
	[ $((16#$(cat "$ARGV_DUMP_SIGIGN") & 0x10000)) -ne 0 ]
}
xs_domain 5 "$UUID1" i-2-33-VM
(
	trap '' CHLD
	run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
	expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}" -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
	sigchld_ignored || fail "the stock wrapper did not inherit the ignored SIGCHLD"
)
run_wrapper 5 --syslog
expect_argv "$STOCK" 5 --syslog -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
if sigchld_ignored; then fail "the stock wrapper got SIGCHLD ignored"; fi
unset ARGV_DUMP_SIGIGN
ok "started with SIGCHLD ignored: lookup works, the stock wrapper inherits the disposition"

# The stock wrapper gets the descriptors xenopsd gave the wrapper (here 7,
# and whatever the test runner passes on), and none of the wrapper's own
# (registry, pipes, syslog socket).
export ARGV_DUMP_FDS=$T/fds
"$STOCK" 7<"$VGPU_DB"
expected_fds=$(sort -n "$ARGV_DUMP_FDS" | tr '\n' ' ')
case " $expected_fds" in *" 7 "*) ;; *) fail "fd 7 missing from the baseline" ;; esac
run_wrapper 5 --syslog 7<"$VGPU_DB"
expect_argv "$STOCK" 5 --syslog -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
got_fds=$(sort -n "$ARGV_DUMP_FDS" | tr '\n' ' ')
[ "$got_fds" = "$expected_fds" ] || fail "the stock wrapper got descriptors $got_fds, not $expected_fds"
unset ARGV_DUMP_FDS
ok "inherited descriptors pass on; the wrapper's own do not leak"
