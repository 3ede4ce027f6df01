#!/bin/bash
# SPDX-License-Identifier: MIT
# `make install`'s layout: meson install into a staging DESTDIR, then the
# installed vgpu-admin runs against the installed library.
. "$(dirname "$0")/lib.sh"
: "${VGPU_BUILD:?}"

stage=$T/stage
if meson install -C "$VGPU_BUILD" --no-rebuild --destdir "$stage" --quiet >"$T/install.log" 2>&1; then
	pass "meson install into DESTDIR"
else
	fail "meson install failed"; cat "$T/install.log"; finish
fi
prefix=$(meson introspect "$VGPU_BUILD" --buildoptions | jq -r '.[] | select(.name == "prefix") | .value')
root=$stage$prefix
for f in sbin/vgpu-admin sbin/vgpu-qemu-wrapper sbin/vgpu-vm-startup.sh sbin/vgpu-mediator \
	sbin/vgpu-agent bin/vgpu-submit lib/systemd/system/vgpu-mediator.service \
	lib/systemd/system/vgpu-agent.service share/man/man8/vgpu-agent.8 \
	include/vgpu/vgpu_config.h include/vgpu/vgpu_error.h include/vgpu/libvgpu.h \
	include/vgpu/vgpu_protocol.h \
	share/man/man8/vgpu-admin.8 share/man/man8/vgpu-qemu-wrapper.8 \
	share/man/man8/vgpu-mediator.8 share/man/man1/vgpu-submit.1; do
	[ -e "$root/$f" ] && pass "installed $f" || fail "missing $f"
done
grep -q "^ExecStart=$prefix/sbin/vgpu-mediator" "$root/lib/systemd/system/vgpu-mediator.service" &&
	pass "service file names the installed mediator" || fail "service file ExecStart wrong"
grep -q "^ExecStart=$prefix/sbin/vgpu-agent" "$root/lib/systemd/system/vgpu-agent.service" &&
	pass "the agent's service file names the installed agent" || fail "agent service ExecStart wrong"
[ -n "$(find "$root" -name 'libvgpu.so.0')" ] && pass "installed libvgpu.so.0" || fail "missing libvgpu.so.0"
lib=$(find "$root" -name 'libvgpu-config.so.0' | head -n1)
[ -n "$lib" ] && pass "installed libvgpu-config.so.0" || fail "missing libvgpu-config.so.0"
pc=$(find "$root" -name 'vgpu-config.pc' | head -n1)
[ -n "$pc" ] && pass "installed vgpu-config.pc" || fail "missing vgpu-config.pc"
sql=$(find "$stage" -name init_db.sql | head -n1)
[ -n "$sql" ] && pass "installed init_db.sql ($sql)" || fail "missing init_db.sql"
[ -x "$root/sbin/vgpu-qemu-wrapper" ] && [ -x "$root/sbin/vgpu-vm-startup.sh" ] && pass "programs executable" || fail "not executable"

if LD_LIBRARY_PATH=$(dirname "$lib") "$root/sbin/vgpu-admin" --db "$T/i.db" register-vm --vm-uuid "$U1" >/dev/null; then
	pass "installed vgpu-admin runs with the installed library"
else
	fail "installed vgpu-admin does not run"
fi
finish
