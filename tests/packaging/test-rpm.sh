#!/bin/bash
# SPDX-License-Identifier: MIT
# packaging/vgpu.spec with Debian's rpmbuild: the source tree as the
# release tarball (vgpu-VERSION/ at its top, the spec inside), rpmbuild -ta
# on it (build dependencies are Debian's packages here: --nodeps), then the
# four binary RPMs' file lists, scriptlets and dependencies checked.
set -eu
: "${VGPU_SRC:?run through meson test}" "${VGPU_TESTS:?}"
. "$VGPU_TESTS/lib/assert.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-rpm.XXXXXX")
trap 'rm -rf "$T"' EXIT
V=$(sed -n 's/^Version: *//p' "$VGPU_SRC/packaging/vgpu.spec")
expect_eq "$V" "$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" "$VGPU_SRC/meson.build" | head -1)" \
	"the spec's version is the project's"

# The tarball: the files git knows (tracked, and new ones not ignored), or
# without git (an unpacked tarball) every file but build trees.
cd "$VGPU_SRC"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard >"$T/files"
else
	find . -type f -not -path './build*' -not -path './var/*' | sed 's,^\./,,' >"$T/files"
fi
tar -czf "$T/vgpu-$V.tar.gz" --transform "s,^,vgpu-$V/," -T "$T/files"
cd "$T"
if rpmbuild -ta --nodeps --define "_topdir $T/top" "$T/vgpu-$V.tar.gz" >"$T/build.log" 2>&1; then
	pass "rpmbuild -ta vgpu-$V.tar.gz"
else
	fail "rpmbuild failed:"; tail -40 "$T/build.log"; finish
fi
rpms=$(cd "$T/top/RPMS" && find . -name '*.rpm' -printf '%f\n' | sort | tr '\n' ' ')
expect_eq "$rpms" "vgpu-$V-1.x86_64.rpm vgpu-devel-$V-1.x86_64.rpm vgpu-dkms-$V-1.noarch.rpm vgpu-guest-$V-1.x86_64.rpm " \
	"four binary RPMs: vgpu, devel, dkms, guest"
list() { rpm -qlp "$(find "$T/top/RPMS" -name "$1-$V-1.*.rpm")" 2>/dev/null; }
has() { # has PACKAGE FILE...
	local p=$1 f missing=""
	shift
	for f in "$@"; do list "$p" | grep -qx "$f" || missing="$missing $f"; done
	[ -z "$missing" ] && pass "$p has $*" || fail "$p lacks$missing"
}
has vgpu /usr/sbin/vgpu-mediator /usr/sbin/vgpu-admin /usr/sbin/vgpu-agent /usr/sbin/vgpu-qemu-wrapper \
	/usr/sbin/vgpu-vm-startup.sh /usr/sbin/vgpu-xenopsd-hook /usr/sbin/vgpu-cloudstack \
	/usr/lib/systemd/system/vgpu-mediator.service \
	/usr/lib/systemd/system/vgpu-agent.service /etc/vgpu/vgpu.conf.example /etc/vgpu/init_db.sql \
	"/usr/share/vgpu/qemu-4.2.1-vgpu-stub.patch"
list vgpu | grep -q '^/usr/share/man/man8/vgpu-agent.8' && list vgpu | grep -q '^/usr/share/man/man8/vgpu-mediator.8' &&
	pass "vgpu has the dom0 manuals" || fail "dom0 manuals missing"
list vgpu | grep -q '^/usr/lib64/libvgpu-config.so.0' && pass "and the registry library" || fail "no libvgpu-config.so.0"
has vgpu-guest /usr/bin/vgpu-submit /usr/bin/vgpu-guest-info
list vgpu-guest | grep -q '^/usr/lib64/libvgpu.so.0' && pass "vgpu-guest has libvgpu.so.0" || fail "no libvgpu.so.0"
has vgpu-dkms "/usr/src/vgpu-$V/dkms.conf" "/usr/src/vgpu-$V/vgpu.c" "/usr/src/vgpu-$V/Kbuild"
list vgpu-devel | grep -q '^/usr/include/vgpu/vgpu_config.h$' && pass "vgpu-devel has the headers" || fail "no headers"
# dom0 and guest apart: nothing of one in the other.
! list vgpu | grep -qE '/usr/bin/vgpu-submit|/libvgpu\.so|/usr/src/' && pass "no guest file in the dom0 package" ||
	fail "guest files in vgpu"
! list vgpu-guest | grep -qE '/usr/sbin/' && pass "no dom0 program in the guest package" || fail "dom0 files in vgpu-guest"
rpm2cpio "$(find "$T/top/RPMS" -name "vgpu-dkms-$V-1.noarch.rpm")" |
	(cd "$T" && cpio -id --quiet "./usr/src/vgpu-$V/dkms.conf")
grep -q "PACKAGE_VERSION=\"$V\"" "$(find "$T/top" -path "*usr/src/vgpu-$V/dkms.conf" 2>/dev/null | head -1 || echo /dev/null)" 2>/dev/null ||
	rpm2cpio "$(find "$T/top/RPMS" -name "vgpu-dkms-*.rpm")" | (cd "$T" && cpio -id --quiet "./usr/src/vgpu-$V/dkms.conf")
grep -q "PACKAGE_VERSION=\"\?$V\"\?" "$T/usr/src/vgpu-$V/dkms.conf" && pass "dkms.conf names version $V" ||
	fail "dkms.conf: $(cat "$T/usr/src/vgpu-$V/dkms.conf" 2>/dev/null)"
# Removal points xenopsd back first; installing activates nothing.
scripts=$(rpm -qp --scripts "$(find "$T/top/RPMS" -name "vgpu-$V-1.x86_64.rpm")" 2>/dev/null)
grep -q "vgpu-xenopsd-hook disable" <<<"$scripts" && pass "removal runs vgpu-xenopsd-hook disable" ||
	fail "no disable at removal"
! grep -q "vgpu-xenopsd-hook enable" <<<"$scripts" && pass "installing does not enable it" || fail "enabled at install"
# What it needs at run time, found in its programs.
reqs=$(rpm -qpR "$(find "$T/top/RPMS" -name "vgpu-$V-1.x86_64.rpm")" 2>/dev/null)
grep -q 'libmicrohttpd' <<<"$reqs" && grep -q 'libjansson' <<<"$reqs" && grep -q 'libsqlite3' <<<"$reqs" &&
	pass "run-time requirements: libmicrohttpd, jansson, sqlite" || fail "requires: $reqs"
finish
