#!/bin/bash
# SPDX-License-Identifier: MIT
# build-qemu.sh - a QEMU with the vgpu-stub device, from Debian's own QEMU
# source (the QEMU this project's tests boot guests in):
#
#   scripts/build-qemu.sh            (or: make qemu)
#
# 1. Adds a deb-src entry for Debian 12 when apt has none (a fresh
#    Debian 12 lists binary packages only) and installs what the build
#    needs (as root; quiet when everything is there).
# 2. `apt-get source qemu` into build-qemu/src (once per Debian version):
#    the source with Debian's patches applied.
# 3. Links the files device/qemu-files lists into hw/misc/ and adds the
#    meson.build and Kconfig lines (idempotent).
# 4. Configures a small x86_64 system emulator (TCG and KVM, no UI, no
#    tools, no docs, only the devices the boards select plus vgpu-stub)
#    and builds it with ccache in $VGPU_CCACHE_DIR (default
#    /var/cache/vgpu/ccache), so that a build in a fresh clone is quick
#    once the cache is warm; a repeated build in the same tree is a
#    no-op for ninja.
#
# Result: build-qemu/qemu-system-x86_64 (a link to the built binary; run
# it with -L /usr/share/qemu -L /usr/share/seabios for the firmware).
# Never: touch the system's QEMU, or build from anything but Debian's
# source package.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${VGPU_QEMU_BUILD:-$ROOT/build-qemu}
export CCACHE_DIR=${VGPU_CCACHE_DIR:-/var/cache/vgpu/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
# Paths inside the checkout are hashed relative to it, and the working
# directory not at all: a fresh clone elsewhere hits what another built.
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1
say() { echo "build-qemu: $*"; }

# ---- 1. packages ----
# The last two are Debian's firmware and option ROMs (SeaBIOS, linuxboot):
# the dfsg source has none, so the built QEMU runs with -L for both.
PKGS=(dpkg-dev ccache ninja-build meson pkg-config python3 python3-venv libglib2.0-dev
      libpixman-1-dev zlib1g-dev libfdt-dev flex bison seabios qemu-system-data)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
have_src() { apt-get source --print-uris qemu >/dev/null 2>&1; }
if [ ${#missing[@]} -gt 0 ] || ! have_src; then
	if [ "$(id -u)" != 0 ]; then
		say "needs root to install: ${missing[*]:-} (and a deb-src entry)"; exit 1
	fi
	if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		say "adding Debian 12 source entries (/etc/apt/sources.list.d/vgpu-deb-src.sources)"
		cat >/etc/apt/sources.list.d/vgpu-deb-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	fi
	say "apt-get update and install: ${missing[*]:-nothing}"
	apt-get update -qq
	[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- 2. the source ----
mkdir -p "$OUT" "$CCACHE_DIR"
version=$(apt-cache showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -n 1)
src=$OUT/src
if [ "$(cat "$OUT/src.version" 2>/dev/null)" != "$version" ]; then
	say "apt-get source qemu ($version)"
	rm -rf "$src" "$OUT/dl" "$OUT/obj"
	mkdir -p "$OUT/dl"
	chown _apt "$OUT/dl" 2>/dev/null || true # apt downloads as _apt where it can
	(cd "$OUT/dl" && apt-get source -qq "qemu=$version" >/dev/null)
	mv "$(find "$OUT/dl" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n 1)" "$src"
	rm -rf "$OUT/dl"
	echo "$version" >"$OUT/src.version"
fi

# ---- 3. the device ----
# device/qemu-files lists them: the device, and the protocol code it speaks.
sources=()
while read -r from to; do
	ln -sf "$ROOT/$from" "$src/hw/misc/$to"
	[[ $to == *.c ]] && sources+=("'$to'")
done < <(grep -v '^#' "$ROOT/device/qemu-files")
line="softmmu_ss.add(when: 'CONFIG_VGPU_STUB', if_true: files($(IFS=,; echo "${sources[*]}" | sed 's/,/, /g')))"
grep -qxF "$line" "$src/hw/misc/meson.build" || {
	sed -i '/CONFIG_VGPU_STUB/d' "$src/hw/misc/meson.build"
	echo "$line" >>"$src/hw/misc/meson.build"
}
grep -q VGPU_STUB "$src/hw/misc/Kconfig" ||
	printf '\nconfig VGPU_STUB\n    bool\n    default y if PCI_DEVICES\n    depends on PCI\n' >>"$src/hw/misc/Kconfig"
grep -q VGPU_STUB "$src/configs/devices/i386-softmmu/default.mak" ||
	echo "CONFIG_VGPU_STUB=y" >>"$src/configs/devices/i386-softmmu/default.mak"

# ---- 4. configure and build ----
obj=$OUT/obj
if [ ! -f "$obj/build.ninja" ]; then
	say "configuring in $obj"
	mkdir -p "$obj"
	(cd "$obj" && "$src/configure" --target-list=x86_64-softmmu --without-default-devices \
		--cc="ccache gcc" --cxx="ccache g++" --host-cc="ccache gcc" \
		--disable-docs --disable-tools --disable-guest-agent --disable-user \
		--disable-werror --enable-kvm --enable-tcg --audio-drv-list= \
		--disable-xen --disable-vnc --disable-sdl --disable-gtk --disable-opengl \
		--disable-spice --disable-curses --disable-libusb --disable-usb-redir \
		--disable-capstone --enable-fdt=system --disable-slirp --disable-vhost-user \
		--disable-pa --disable-alsa --disable-oss --disable-jack --disable-gnutls \
		--disable-nettle --disable-gcrypt --disable-curl --disable-rbd --disable-glusterfs \
		--disable-libiscsi --disable-libnfs --disable-seccomp --disable-cap-ng \
		--disable-virglrenderer --disable-vte --disable-brlapi --disable-smartcard \
		--disable-bpf --disable-zstd --disable-lzo --disable-snappy --disable-bzip2 \
		>"$OUT/configure.log" 2>&1) || { tail -n 30 "$OUT/configure.log"; exit 1; }
fi
t0=$(date +%s)
ccache -z >/dev/null 2>&1 || true # the figures below are this build's
ninja -C "$obj" qemu-system-x86_64 >"$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log"; exit 1; }
# QEMU itself builds without -Werror (its warnings vary with the compiler);
# ours must build clean.
if grep -A4 'hw/misc/\(vgpu\|le\.h\)[^ ]*:[0-9]*:[0-9]*: warning' "$OUT/build.log"; then
	say "warnings in vgpu-stub: fix them"
	touch "$ROOT/device/vgpu-stub.c" # so that the next build shows them again
	exit 1
fi
ln -sf "$obj/qemu-system-x86_64" "$OUT/qemu-system-x86_64"
say "built $OUT/qemu-system-x86_64 in $(($(date +%s) - t0)) s ($(grep -c '^\[' "$OUT/build.log" || true) steps; ccache$(ccache -s 2>/dev/null | grep -m1 -i 'hits' | tr -s ' ' || true))"
