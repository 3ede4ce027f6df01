#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-xenopsd-hook against the fake systemctl (tests/fakes/systemctl: a
# xenopsd-xc that comes up only with an executable wrapper, or can be made
# to fail): enable sets the key and keeps the file as it was; a xenopsd that
# does not come back is rolled back to the file as it was; disable puts it
# back; a missing or broken wrapper is refused before anything changes.
set -eu
: "${VGPU_BUILD:?run through meson test}" "${VGPU_SRC:?}" "${VGPU_FAKES:?}" "${VGPU_TESTS:?}"
. "$VGPU_TESTS/lib/assert.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-hook.XXXXXX")
trap 'rm -rf "$T"' EXIT
export PATH="$VGPU_FAKES:$PATH"
HOOK=$VGPU_SRC/xcpng/vgpu-xenopsd-hook.sh
WRAPPER=$VGPU_BUILD/xcpng/vgpu-qemu-wrapper
export FAKE_SYSTEMCTL_DIR=$T/sysd
mkdir -p "$FAKE_SYSTEMCTL_DIR"
CONF=$T/xenopsd.conf
echo "$CONF" >"$FAKE_SYSTEMCTL_DIR/conf"
printf '#!/bin/sh\n' >"$T/qemu-wrapper"; chmod +x "$T/qemu-wrapper" # XCP-ng's stock one
printf '# xenopsd settings\nsockets-group=xapi\nupstream-compat-qemu-dm-wrapper=%s\n' "$T/qemu-wrapper" >"$CONF"
cp "$CONF" "$T/original"
hook() { "$HOOK" "$@" --conf "$CONF"; }

expect_eq "$(hook status)" disabled "status: disabled at first"
rc=0; hook enable --wrapper "$T/none" 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "enable with a wrapper that does not exist: refused"
cmp -s "$CONF" "$T/original" && [ ! -e "$FAKE_SYSTEMCTL_DIR/calls.log" ] &&
	pass "nothing changed, xenopsd not restarted" || fail "changed before refusing"
printf '#!/bin/sh\nexit 1\n' >"$T/broken"; chmod +x "$T/broken"
rc=0; hook enable --wrapper "$T/broken" 2>/dev/null || rc=$?
expect_eq "$rc" 1 "enable with a wrapper that does not run: refused"

rc=0; hook enable --wrapper "$WRAPPER" 2>"$T/err" || rc=$?
expect_eq "$rc" 0 "enable with the built wrapper"
expect_eq "$(grep -c '^upstream-compat-qemu-dm-wrapper=' "$CONF")" 1 "one wrapper key"
grep -qx "upstream-compat-qemu-dm-wrapper=$WRAPPER" "$CONF" && grep -qx 'sockets-group=xapi' "$CONF" &&
	pass "the key names the wrapper, the other settings kept" || fail "conf: $(cat "$CONF")"
cmp -s "$CONF.vgpu-backup" "$T/original" && pass "the file as it was kept as .vgpu-backup" || fail "backup"
expect_eq "$(cat "$FAKE_SYSTEMCTL_DIR/state")" active "xenopsd restarted and active"
expect_eq "$(hook status --wrapper "$WRAPPER")" "enabled $WRAPPER" "status: enabled"
rc=0; hook enable --wrapper "$WRAPPER" 2>"$T/err" || rc=$?
expect_eq "$rc" 0 "enable again: nothing to do"
grep -q "already" "$T/err" && pass "and says so" || fail "$(cat "$T/err")"

rc=0; hook disable 2>/dev/null || rc=$?
expect_eq "$rc" 0 "disable"
cmp -s "$CONF" "$T/original" && [ ! -e "$CONF.vgpu-backup" ] &&
	pass "the file is back as it was, the backup gone" || fail "conf after disable: $(cat "$CONF")"
rc=0; hook disable 2>/dev/null || rc=$?
expect_eq "$rc" 0 "disable again: nothing to do"

# A xenopsd that does not come back: rolled back.
touch "$FAKE_SYSTEMCTL_DIR/fail-restart"
rc=0; hook enable --wrapper "$WRAPPER" 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "enable with a xenopsd that fails to restart: exit 1"
cmp -s "$CONF" "$T/original" && pass "the file rolled back to what it was" || fail "not rolled back: $(cat "$CONF")"
grep -q "rolling back" "$T/err" && pass "and says so" || fail "$(cat "$T/err")"
expect_eq "$(grep -c "^restart" "$FAKE_SYSTEMCTL_DIR/calls.log")" 4 "xenopsd restarted again after the rollback (4 restarts: enable, disable, the failed enable, the rollback)"
rm "$FAKE_SYSTEMCTL_DIR/fail-restart"

# A file without the key at first: disable removes the key.
printf 'sockets-group=xapi\n' >"$CONF"
rm -f "$CONF.vgpu-backup"
hook enable --wrapper "$WRAPPER" 2>/dev/null
rm "$CONF.vgpu-backup" # as if it were lost
hook disable 2>/dev/null
expect_eq "$(cat "$CONF")" "sockets-group=xapi" "without the backup, disable drops the key"

rc=0; "$HOOK" frobnicate 2>/dev/null || rc=$?
expect_eq "$rc" 2 "an unknown action: usage"
rc=0; "$HOOK" enable --wrapper relative/path --conf "$CONF" 2>/dev/null || rc=$?
expect_eq "$rc" 2 "a relative wrapper path: usage"
finish
