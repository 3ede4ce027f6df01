#!/bin/bash
# SPDX-License-Identifier: MIT
# build-driver.sh - build the guest driver (guest/driver, vgpu.ko) out of
# the source tree, against the headers of the kernel the VM tests boot:
#
#   scripts/build-driver.sh OUTDIR [KDIR]
#
# A DKMS-style source tree is made in OUTDIR/src (make dkms-source: the
# shared headers copied in), built there with Kbuild, and vgpu.ko copied
# to OUTDIR. KDIR defaults to /usr/src/linux-headers-<scripts/guest-kernel.sh>
# (make deps installs it). Kbuild's warnings are errors here (W=1 not set:
# the kernel's own level).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1
KDIR=${2:-/usr/src/linux-headers-$("$ROOT/scripts/guest-kernel.sh")}
[ -d "$KDIR" ] || { echo "build-driver: no kernel headers at $KDIR: run 'make deps' as root" >&2; exit 1; }
rm -rf "$OUT/src"
make -s -C "$ROOT/guest/driver" dkms-source DESTDIR="$OUT/src"
make -s -C "$KDIR" M="$OUT/src" KCFLAGS=-Werror modules >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
cp "$OUT/src/vgpu.ko" "$OUT/vgpu.ko"
