#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-passthrough.sh - every VM the wrapper cannot or need not decorate
# starts with its arguments unchanged, and the reason is logged.
. "$(dirname "$0")/lib.sh"

make_db
register "$UUID1" i-2-33-VM B 2 7
xs_domain 5 "$UUID2" other-vm
xs_domain 6 "$UUID1" i-2-33-VM

run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}"
expect_log "VM $UUID2 \\(\"other-vm\"\\) is not registered; starting it unchanged"
ok "unregistered VM: unchanged"

run_wrapper 5 --syslog "${ODD_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${ODD_ARGS[@]}"
ok "unregistered VM: odd arguments byte for byte"

printf '' >"$FAKE_XENSTORE_DIR/local/domain/5/name"
run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}"
ok "unregistered VM without a name: unchanged"

VGPU_DB=$T/missing.db run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
expect_log "^vgpu-qemu-wrapper\\[[0-9]+\\]: .*cannot open the registry: database $T/missing.db does not exist; starting it without vgpu-stub"
[ ! -e "$T/missing.db" ] || fail "the wrapper created the registry"
ok "missing registry: unchanged, logged on stderr, nothing created"

printf 'this is not a database, just some bytes long enough to look like one....' \
	>"$T/corrupt.db"
VGPU_DB=$T/corrupt.db run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
expect_log 'cannot open the registry'
ok "corrupt registry: unchanged, logged"

mkdir "$T/dir.db"
VGPU_DB=$T/dir.db run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
expect_log 'cannot open the registry'
ok "registry path is a directory: unchanged, logged"

if [ "$(id -u)" -ne 0 ]; then
	cp "$VGPU_DB" "$T/unreadable.db"
	chmod 000 "$T/unreadable.db"
	VGPU_DB=$T/unreadable.db run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
	expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
	expect_log 'cannot open the registry'
	ok "unreadable registry: unchanged, logged"
fi

# The registry path from the configuration file, when $VGPU_DB is empty.
printf 'db = %s\n' "$VGPU_DB" >"$VGPU_CONF"
VGPU_DB='' run_wrapper 6 --syslog
expect_argv "$STOCK" 6 --syslog -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
printf 'db = %s\n' "$T/missing.db" >"$VGPU_CONF"
run_wrapper 6 --syslog
expect_argv "$STOCK" 6 --syslog -device vgpu-stub,pool_id=B,priority=2,vm_id=7,mediator=/run/vgpu/vm-$UUID1.sock
rm "$VGPU_CONF"
ok "db from the configuration file is used; \$VGPU_DB overrides it"

for conf in 'strict = maybe' 'no_such_key = 1' 'stock_wrapper = relative/path' \
	'just a line' "db = $T/missing.db
stock_wrapper"; do
	printf '%s\n' "$conf" >"$VGPU_CONF"
	run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
	expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
	expect_log "ignoring the configuration file: $VGPU_CONF:[0-9]+: "
	expect_log 'the configuration file is unusable; starting it unchanged'
done
mkdir "$T/conf-dir"
VGPU_CONF=$T/conf-dir run_wrapper 6 --syslog
expect_argv "$STOCK" 6 --syslog
expect_log 'not a regular file'
rm "$VGPU_CONF"
ok "malformed configuration file: unchanged, the line at fault logged"

: >"$FAKE_XENSTORE_DIR/calls.log"
for domid in 0 00 007 -1 +5 " 5" "5 " 5x 0x5 32752 99999 4294967301 "" "--help"; do
	run_wrapper "$domid" --syslog "${QEMU_ARGS[@]}"
	expect_argv "$STOCK" "$domid" --syslog "${QEMU_ARGS[@]}"
	expect_log 'malformed domid'
done
run_wrapper
expect_argv "$STOCK"
[ ! -s "$FAKE_XENSTORE_DIR/calls.log" ] || fail "xenstore was read for a malformed domid"
ok "malformed or missing domid: unchanged, xenstore not read"

run_wrapper 7 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 7 --syslog "${QEMU_ARGS[@]}"
expect_log "xenstore-read /local/domain/7/vm failed with status 1: xenstore-read: couldn't read path /local/domain/7/vm"
ok "xenstore-read fails (no such domain): unchanged, logged"

rm "$FAKE_XENSTORE_DIR/local/domain/5/name"
run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 5 --syslog "${QEMU_ARGS[@]}"
expect_log 'xenstore-read /local/domain/5/name failed'
ok "xenstore-read of the name fails: unchanged, logged"

mkdir "$T/empty-path"
PATH=$T/empty-path run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
expect_log 'xenstore-read is not installed'
ok "xenstore-read missing from PATH: unchanged, logged"

for value in "vm/$UUID1" "/vm/$UUID1/x" "/vm/${UUID1}0" "/vm/../$UUID1" \
	"/vm/$UUID1"$'\n'"/vm/$UUID1" "garbage" ""; do
	printf '%s' "$value" >"$FAKE_XENSTORE_DIR/local/domain/6/vm"
	run_wrapper 6 --syslog "${QEMU_ARGS[@]}"
	expect_argv "$STOCK" 6 --syslog "${QEMU_ARGS[@]}"
	expect_log 'starting it without vgpu-stub'
done
head -c 300 /dev/zero | tr '\0' x >"$FAKE_XENSTORE_DIR/local/domain/6/vm"
run_wrapper 6 --syslog
expect_argv "$STOCK" 6 --syslog
expect_log 'gave more than'
xs_domain 6 "$UUID2" $'bad\001name'
run_wrapper 6 --syslog
expect_argv "$STOCK" 6 --syslog
expect_log 'is not a valid VM name: "bad\?name"'
ok "malformed xenstore values: unchanged, logged"
