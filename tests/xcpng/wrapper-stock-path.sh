#!/bin/bash
# SPDX-License-Identifier: MIT
# wrapper-stock-path.sh - which stock wrapper runs: VGPU_STOCK_WRAPPER over
# the file's stock_wrapper over the default; never the wrapper itself.
. "$(dirname "$0")/lib.sh"

make_db
xs_domain 5 "$UUID1" i-2-33-VM
ln -s "$STOCK" "$T/stock-from-conf"
ln -s "$STOCK" "$T/stock-from-env"
printf 'stock_wrapper = %s\n' "$T/stock-from-conf" >"$VGPU_CONF"

VGPU_STOCK_WRAPPER='' run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$T/stock-from-conf" 5 --syslog "${QEMU_ARGS[@]}"
ok "stock_wrapper from the configuration file, as argv[0]"

VGPU_STOCK_WRAPPER=$T/stock-from-env run_wrapper 5 --syslog "${QEMU_ARGS[@]}"
expect_argv "$T/stock-from-env" 5 --syslog "${QEMU_ARGS[@]}"
ok "VGPU_STOCK_WRAPPER overrides the file"

VGPU_STOCK_WRAPPER=stock-from-env run_wrapper 5 --syslog
expect_argv "$T/stock-from-conf" 5 --syslog
expect_log 'ignoring VGPU_STOCK_WRAPPER: not an absolute path'
ok "relative VGPU_STOCK_WRAPPER is ignored and logged"

rm "$VGPU_CONF"
VGPU_STOCK_WRAPPER='' run_wrapper 5 --syslog
if [ -x /usr/lib64/xen/bin/qemu-wrapper ]; then
	echo "note: this host has a stock wrapper; not checking the default" >&2
else
	[ "$status" -eq 1 ] || fail "status $status, expected 1"
	expect_log 'cannot exec the stock wrapper /usr/lib64/xen/bin/qemu-wrapper: No such file'
	ok "default stock wrapper /usr/lib64/xen/bin/qemu-wrapper; exec failure: exit 1, logged"
fi

VGPU_STOCK_WRAPPER=$T/missing run_wrapper 5 --syslog
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_log "cannot exec the stock wrapper $T/missing"
printf '#!/bin/sh\n' >"$T/not-executable"
VGPU_STOCK_WRAPPER=$T/not-executable run_wrapper 5 --syslog
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_log 'Permission denied'
ok "stock wrapper missing or not executable: exit 1, logged"

ln -s "$WRAPPER" "$T/self-link"
ln "$WRAPPER" "$T/self-hard" 2>/dev/null || true
for self in "$WRAPPER" "$T/self-link" "$T/self-hard"; do
	[ -e "$self" ] || continue
	: >"$FAKE_XENSTORE_DIR/calls.log"
	VGPU_STOCK_WRAPPER=$self timeout 20 "$WRAPPER" 5 --syslog >"$T/stdout" 2>"$T/stderr" &&
		status=0 || status=$?
	[ "$status" -eq 1 ] || fail "status $status for $self, expected 1"
	expect_log 'is this wrapper itself: refusing to loop'
	[ ! -s "$FAKE_XENSTORE_DIR/calls.log" ] || fail "it went on to read xenstore"
done
printf 'stock_wrapper = %s\n' "$WRAPPER" >"$VGPU_CONF"
VGPU_STOCK_WRAPPER='' timeout 20 "$WRAPPER" 5 --syslog >"$T/stdout" 2>"$T/stderr" &&
	status=0 || status=$?
[ "$status" -eq 1 ] || fail "status $status, expected 1"
expect_log 'refusing to loop'
ok "stock wrapper is the wrapper itself (path, symlink, hard link, conf): exit 1, no loop"
