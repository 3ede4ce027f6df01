#!/bin/bash
# SPDX-License-Identifier: MIT
# vm-assets.sh - what the VM test boots, from Debian's packages: the kernel
# of linux-image-amd64 and the busybox of busybox-static, unpacked with
# `apt-get download` and `dpkg-deb -x` (nothing is installed on the host).
#
#   scripts/vm-assets.sh [DIR]     (default $VGPU_VM_CACHE or /var/cache/vgpu/vm)
#
# Prints DIR; leaves DIR/vmlinuz and DIR/busybox. Kept per package
# version, so a second run with the same versions downloads nothing.
set -euo pipefail

DIR=${1:-${VGPU_VM_CACHE:-/var/cache/vgpu/vm}}
mkdir -p "$DIR"
# The versioned package behind the metapackage: linux-image-6.1.0-NN-amd64.
kpkg=linux-image-$("$(dirname "$0")/guest-kernel.sh")
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
bver=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
want="$kpkg $kver busybox-static $bver"

if [ "$(cat "$DIR/versions" 2>/dev/null)" != "$want" ] || [ ! -s "$DIR/vmlinuz" ] || [ ! -x "$DIR/busybox" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt-get download -qq "$kpkg" busybox-static >/dev/null 2>&1) || {
		echo "vm-assets: apt-get download $kpkg busybox-static failed" >&2; exit 1; }
	mkdir "$work/x"
	for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
	cp "$(find "$work/x/boot" -name 'vmlinuz-*' | head -n 1)" "$DIR/vmlinuz"
	cp "$work/x/bin/busybox" "$DIR/busybox"
	echo "$want" >"$DIR/versions"
fi
echo "$DIR"
