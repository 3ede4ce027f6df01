#!/bin/bash
# SPDX-License-Identifier: MIT
# startup-cli.sh - vgpu-vm-startup.sh VM-UUID: sets the platform keys of a
# registered VM with one xe vm-param-set, and nothing for any other VM.
. "$(dirname "$0")/startup-lib.sh"

SET7="vm-param-set uuid=$UUID1 platform:vgpu-pool=B platform:vgpu-priority=2 platform:vgpu-vm-id=7"

make_db
register "$UUID1" i-2-33-VM B 2 7

run_startup "$UUID1"
expect_status 0
expect_xe "$SET7"
ok "registered VM: exactly one xe $SET7"

run_startup "$UUID2"
expect_status 0
expect_no_xe
if [ -s "$T/stdout" ] || [ -s "$T/stderr" ]; then fail "unregistered VM: output"; fi
ok "unregistered VM: silent, status 0, no xe"

VGPU_DB=$T/missing.db run_startup "$UUID1"
expect_status 0
expect_no_xe
expect_stderr "warning: no vgpu registry at $T/missing.db"
[ ! -e "$T/missing.db" ] || fail "the registry was created"
ok "missing registry: warning, status 0, no xe"

if [ ! -e /etc/vgpu/vgpu_config.db ]; then
	VGPU_DB='' run_startup "$UUID1"
	expect_status 0
	expect_stderr 'warning: no vgpu registry at /etc/vgpu/vgpu_config.db'
	ok "empty VGPU_DB means /etc/vgpu/vgpu_config.db"
fi

touch "$T/xe.fail"
run_startup "$UUID1"
expect_status 1
expect_stderr "error: xe vm-param-set failed for VM $UUID1"
rm "$T/xe.fail"
ok "xe fails: error, status 1"

VGPU_ADMIN=$T/no-such-admin run_startup "$UUID1"
expect_status 1
expect_no_xe
expect_stderr 'error: vgpu-admin not found'
mkdir -p "$T/path-without-admin"
if PATH="$T/path-without-admin:/usr/bin:/bin" command -v vgpu-admin >/dev/null; then
	echo "note: vgpu-admin is installed on this host; not checking the PATH lookup" >&2
else
	VGPU_ADMIN='' PATH="$T/bin:/usr/bin:/bin" run_startup "$UUID1"
	expect_status 1
	expect_stderr 'error: vgpu-admin not found'
fi
ok "vgpu-admin missing: error, status 1"

ln -s "$VGPU_ADMIN_BIN" "$T/bin/vgpu-admin"
VGPU_ADMIN='' run_startup "$UUID1"
expect_status 0
expect_xe "$SET7"
rm "$T/bin/vgpu-admin"
ok "vgpu-admin found on PATH"

for bad in "" not-a-uuid "${UUID1}x" "x$UUID1" "${UUID1:0:35}" "${UUID1//-/}" \
	"$UUID1 " "'$UUID1'" "$UUID1;true"; do
	run_startup "$bad"
	expect_status 2
	expect_no_xe
	expect_stderr 'error: not a VM UUID'
done
run_startup "${UUID1^^}"
expect_status 0
ok "malformed UUID: usage error, status 2; upper case accepted"

for args in "" "--bogus" "$UUID1 $UUID2" "--help extra"; do
	# shellcheck disable=SC2086 # splitting is the point
	run_startup $args
	expect_status 2
	expect_no_xe
	grep -q '^Usage:' "$T/stderr" || fail "no usage for '$args'"
done
run_startup --help
expect_status 0
grep -q '^Usage:' "$T/stdout" || fail "--help: no usage"
ok "usage errors: status 2; --help: status 0"
