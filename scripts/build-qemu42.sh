#!/bin/bash
# SPDX-License-Identifier: MIT
# build-qemu42.sh - the vgpu-stub device built into QEMU 4.2, the device
# model of XCP-ng 8.2, the way docs/xcp-ng.md tells an operator to build
# it (make qemu42):
#
#   scripts/build-qemu42.sh
#
# 1. Downloads QEMU's 4.2.0 release once (Ubuntu 20.04's orig tarball of
#    it, checked against the SHA-256 below: Debian's archive no longer has
#    a 4.2 and download.qemu.org is not reachable from the machines this
#    project is tested on) into $VGPU_QEMU42_CACHE (/var/cache/vgpu/qemu-4.2).
# 2. Unpacks it afresh into build-qemu42/src and applies the patch that
#    scripts/make-xcpng-patch.sh makes, with `patch -p1`, as the RPM does
#    (skipped, with the rest, when the same patch was built by the same
#    script before).
# 3. Configures as XCP-ng's package does where it matters to the device:
#    --without-default-devices plus CONFIG_VGPU_STUB=y (docs/xcp-ng.md's
#    recipe), Xen on (Debian's libxen), and KVM and TCG so that the tests
#    can boot it here. --disable-werror, because QEMU 4.2's own code is
#    not warning-free under gcc 12; the device's files are then compiled
#    again on their own and any warning in them fails this script.
# 4. Builds x86_64-softmmu with ccache ($VGPU_CCACHE_DIR, as make qemu),
#    without 4.2's option ROMs (its linker flags predate Debian 12's
#    binutils; the tests boot with Debian's ROMs, -L /usr/share/qemu).
#
# Result: build-qemu42/qemu-system-x86_64. QEMU 4.2.0, not XCP-ng's 4.2.1
# with its own patches: 4.2.1 is a stable release of 4.2 (fixes only, the
# same device API); XCP-ng's patches (xen-platform, its own PV devices)
# do not touch what the device uses.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${VGPU_QEMU42_BUILD:-$ROOT/build-qemu42}
CACHE=${VGPU_QEMU42_CACHE:-/var/cache/vgpu/qemu-4.2}
URL=http://archive.ubuntu.com/ubuntu/pool/main/q/qemu/qemu_4.2.orig.tar.xz
SHA256=d3481d4108ce211a053ef15be69af1bdd9dde1510fda80d92be0f6c3e98768f0
export CCACHE_DIR=${VGPU_CCACHE_DIR:-/var/cache/vgpu/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G} CCACHE_NOHASHDIR=1
say() { echo "build-qemu42: $*"; }

# ---- 1. packages and the release ----
PKGS=(ccache make pkg-config python3 libglib2.0-dev libpixman-1-dev zlib1g-dev
      libfdt-dev libxen-dev flex bison curl xz-utils patch seabios qemu-system-data)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { say "needs root to install: ${missing[*]}"; exit 1; }
	say "apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p "$CACHE" "$OUT" "$CCACHE_DIR"
tarball=$CACHE/qemu_4.2.orig.tar.xz
if ! echo "$SHA256  $tarball" | sha256sum -c --status 2>/dev/null; then
	say "downloading $URL"
	curl -fsS -m 600 -o "$tarball.part" "$URL" || { say "cannot download $URL"; exit 1; }
	echo "$SHA256  $tarball.part" | sha256sum -c --status ||
		{ say "$URL: wrong SHA-256"; rm -f "$tarball.part"; exit 1; }
	mv "$tarball.part" "$tarball"
fi

# ---- 2. pristine source, the operator's patch ----
# Built before from the same patch by the same script: nothing to do.
"$ROOT/scripts/make-xcpng-patch.sh" "$OUT/vgpu-stub.patch.new" >/dev/null
stamp=$(cat "$OUT/vgpu-stub.patch.new" "$0" | sha256sum | cut -d ' ' -f 1)
if [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$OUT/qemu-system-x86_64" ]; then
	rm -f "$OUT/vgpu-stub.patch.new"
	say "$OUT/qemu-system-x86_64 is up to date"
	exit 0
fi
rm -f "$OUT/stamp"
mv "$OUT/vgpu-stub.patch.new" "$OUT/vgpu-stub.patch"
say "unpacking QEMU 4.2.0 and applying scripts/make-xcpng-patch.sh's patch"
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
tar -xJf "$tarball" -C "$OUT/src" --strip-components=1
(cd "$OUT/src" && patch -p1 --quiet --forward <"$OUT/vgpu-stub.patch")
echo CONFIG_VGPU_STUB=y >>"$OUT/src/default-configs/i386-softmmu.mak"

# ---- 3. configure ----
obj=$OUT/obj
rm -rf "$obj"
mkdir -p "$obj"
say "configuring (log: $OUT/configure.log)"
(cd "$obj" && ../src/configure --target-list=x86_64-softmmu --without-default-devices \
	--enable-xen --enable-kvm --disable-werror --disable-docs --disable-tools \
	--disable-guest-agent --disable-gtk --disable-sdl --disable-vnc --disable-slirp \
	--disable-capstone --cc="ccache gcc" --python=python3) >"$OUT/configure.log" 2>&1 ||
	{ tail -n 20 "$OUT/configure.log"; exit 1; }

# ---- 4. build; then the device's files alone, warnings fatal ----
say "building x86_64-softmmu (log: $OUT/build.log)"
make -C "$obj" -j"$(nproc)" ROMS= >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }
objs=$(sed -n 's/^common-obj-\$(CONFIG_VGPU_STUB) += //p' "$OUT/src/hw/misc/Makefile.objs")
[ -n "$objs" ] || { say "the patch's objects are not in hw/misc/Makefile.objs"; exit 1; }
for o in $objs; do
	[ -f "$obj/hw/misc/$o" ] || { say "hw/misc/$o was not built (CONFIG_VGPU_STUB off?)"; exit 1; }
	rm -f "$obj/hw/misc/$o"
done
(cd "$obj" && CCACHE_DISABLE=1 make V=1 $(printf 'hw/misc/%s ' $objs)) >"$OUT/device.log" 2>&1 ||
	{ cat "$OUT/device.log"; exit 1; }
if grep -n 'warning:' "$OUT/device.log"; then
	say "the device's files have warnings against QEMU 4.2 (above; all in $OUT/device.log)"
	exit 1
fi
make -C "$obj" -j"$(nproc)" ROMS= >>"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }
"$obj/x86_64-softmmu/qemu-system-x86_64" -device help 2>&1 | grep -q '"vgpu-stub"' ||
	{ say "the built QEMU has no vgpu-stub device"; exit 1; }
ln -sfn obj/x86_64-softmmu/qemu-system-x86_64 "$OUT/qemu-system-x86_64"
echo "$stamp" >"$OUT/stamp"
say "$OUT/qemu-system-x86_64: $("$OUT/qemu-system-x86_64" -version | head -n 1), vgpu-stub built warning-free"
