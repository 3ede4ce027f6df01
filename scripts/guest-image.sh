#!/bin/bash
# SPDX-License-Identifier: MIT
# guest-image.sh - the initramfs the VM tests and `make run` boot with
# Debian's kernel: busybox (scripts/vm-assets.sh), guest/image/init.sh as
# /init, the guest driver vgpu.ko, a static vgpu-submit and vgpu-guest-info
# from BUILD, and BUILD/tests/vm/guest_ring and guest_streams when they
# were built (tests only); where the
# guest libcuda.so.1 was built, it (and libnvidia-ml.so.1 with the tests'
# nvml_check in /cuda/bin) and its CUDA programs (/cuda/run/: the
# tests' cuda_probe, and each program named in $VGPU_GUEST_CUDA, e.g. the
# GPU machine's samples), with the shared libraries they need (the host's
# glibc and libstdc++: the guest runs Debian's kernel with them).
#
#   [VGPU_GUEST_CUDA="PROG..."] scripts/guest-image.sh BUILD OUT.gz
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
[ -x "$build/tests/vm/guest_streams" ] && cp "$build/tests/vm/guest_streams" "$root/bin/guest_streams"
# add_libs FILE: the shared libraries FILE needs, at their own paths.
add_libs() {
	ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
	done
}
if [ -f "$build/guest/cuda/libcuda.so.1" ]; then
	mkdir -p "$root/cuda/lib" "$root/cuda/run"
	cp "$build/guest/cuda/libcuda.so.1" "$root/cuda/lib/"
	add_libs "$build/guest/cuda/libcuda.so.1"
	# NVML's, and the tests' question list for it (in /cuda/bin: it
	# takes the library's path).
	if [ -f "$build/guest/nvml/libnvidia-ml.so.1" ] && [ -x "$build/tests/guest/nvml_check" ]; then
		mkdir -p "$root/cuda/bin"
		cp "$build/guest/nvml/libnvidia-ml.so.1" "$root/cuda/lib/"
		cp "$build/tests/guest/nvml_check" "$root/cuda/bin/"
		add_libs "$build/tests/guest/nvml_check"
	fi
	progs=${VGPU_GUEST_CUDA:-}
	[ -x "$build/tests/guest/cuda_probe" ] && progs="$build/tests/guest/cuda_probe $progs"
	for p in $progs; do
		cp "$p" "$root/cuda/run/"
		add_libs "$p"
	done
fi
cp "$ROOT/guest/image/init.sh" "$root/init"
chmod 755 "$root/init" "$root/bin/"*
[ ! -d "$root/cuda/run" ] || chmod 755 "$root/cuda/run/"*
[ ! -d "$root/cuda/bin" ] || chmod 755 "$root/cuda/bin/"*
(cd "$root" && find . | "$assets/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$out")
