#!/bin/bash
# SPDX-License-Identifier: MIT
# guest-image.sh - the initramfs the VM tests and `make run` boot with
# Debian's kernel: busybox (scripts/vm-assets.sh), guest/image/init.sh as
# /init, the guest driver vgpu.ko, a static vgpu-submit and vgpu-guest-info
# from BUILD, and
# BUILD/tests/vm/guest_ring when it was built (tests only).
#
#   scripts/guest-image.sh BUILD OUT.gz
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
build=$1 out=$2
assets=$("$ROOT/scripts/vm-assets.sh")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root" # mktemp made it 0700: the guest's / for every user
mkdir -p "$root/bin" "$root/lib" "$root/tmp"
cp "$assets/busybox" "$root/bin/busybox"
cp "$build/guest/vgpu-submit-static" "$root/bin/vgpu-submit"
cp "$build/guest/vgpu-guest-info" "$root/bin/vgpu-guest-info"
cp "$build/guest/driver/vgpu.ko" "$root/lib/vgpu.ko"
[ -x "$build/tests/vm/guest_ring" ] && cp "$build/tests/vm/guest_ring" "$root/bin/guest_ring"
cp "$ROOT/guest/image/init.sh" "$root/init"
chmod 755 "$root/init" "$root/bin/"*
(cd "$root" && find . | "$assets/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$out")
