#!/bin/bash
# SPDX-License-Identifier: MIT
# pack-guest.sh - put in ./.devbin what the bench/device-*.sh scripts need
# on the GPU machine (which has no network): the CUDA build's mediator,
# admin, bench, device-peer, sched-cost, vgpu-submit and vgpu-cuda-worker
# (from BUILD_DEV, default build-dev), the host agent (in .devbin/agent),
# the guest libcuda.so.1 and its probe (in .devbin/guest-cuda), the QEMU
# that `make qemu` built, stripped, with the libraries it needs that a
# stock Ubuntu lacks and its firmware, Debian's guest kernel, and the
# guest image (from BUILD, default build: vgpu.ko, static vgpu-submit),
# and in .devbin/samples the programs bench/device-samples.sh runs
# (bench/build-samples.sh); initrd-cuda.gz
# is the image with the guest libcuda.so.1, cuda_probe and the samples
# (bench/device-guest-cuda.sh).
#
#   bash bench/pack-guest.sh [BUILD_DEV [BUILD]]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
dev=${1:-build-dev} plain=${2:-build}
D=$ROOT/.devbin
mkdir -p "$D/qemu/firmware"
for f in mediator/vgpu-mediator admin/vgpu-admin bench/vgpu-bench bench/device-peer \
	bench/sched-cost bench/cuda-calls guest/vgpu-submit cudaworker/vgpu-cuda-worker \
	libvgpu-config/libvgpu-config.so.0 guest/libvgpu.so.0; do
	cp -L "$dev/$f" "$D/"
done
cp -L /usr/lib/x86_64-linux-gnu/libjansson.so.4 "$D/"
# The host agent, apart with the libraries a stock Ubuntu may lack
# (libmicrohttpd and its GnuTLS): in .devbin itself they would shadow the
# machine's own for every program there (bench/device-agent.sh).
mkdir -p "$D/agent"
cp -L "$dev/agent/vgpu-agent" "$D/agent/"
LD_LIBRARY_PATH=$D ldd "$D/agent/vgpu-agent" | awk '/=> \// { print $3 }' |
	grep -v -E '/lib(c|m|pthread|dl|rt|resolv|stdc\+\+)\.so|/\.devbin/' |
	while read -r lib; do cp -L "$lib" "$D/agent/"; done || true
# The guest libcuda.so.1 and libnvidia-ml.so.1 and the probe
# (tests/e2e/test-cuda.sh), apart: in .devbin itself they would shadow
# the machine's real driver.
mkdir -p "$D/guest-cuda"
cp -L "$dev/guest/cuda/libcuda.so.1" "$dev/guest/nvml/libnvidia-ml.so.1" \
	"$dev/tests/guest/cuda_probe" "$dev/tests/guest/nvml_check" "$D/guest-cuda/"
strip -o "$D/qemu/qemu-system-x86_64" "$(readlink -f "$ROOT/build-qemu/qemu-system-x86_64")"
# Libraries beyond glibc's own (the GPU machine has neither QEMU's nor
# libxen): carried beside the programs (LD_LIBRARY_PATH=.devbin).
for prog in "$D/qemu/qemu-system-x86_64" "$D/vgpu-mediator" "$D/vgpu-admin" "$D/vgpu-bench"; do
	LD_LIBRARY_PATH=$D ldd "$prog" | awk '/=> \// { print $3 }' |
		grep -v -E '/lib(c|m|pthread|dl|rt|resolv|stdc\+\+)\.so|/\.devbin/' |
		while read -r lib; do cp -L "$lib" "$D/"; done || true
done
for f in bios-256k.bin; do cp -L "/usr/share/seabios/$f" "$D/qemu/firmware/"; done
for f in linuxboot_dma.bin kvmvapic.bin; do cp -L "/usr/share/qemu/$f" "$D/qemu/firmware/" 2>/dev/null || true; done
# cuda-samples and cublas-sgemm for bench/device-samples.sh.
bash "$ROOT/bench/build-samples.sh" "$D/samples"
assets=$("$ROOT/scripts/vm-assets.sh")
cp "$assets/vmlinuz" "$D/vmlinuz"
"$ROOT/scripts/guest-image.sh" "$plain" "$D/initrd.gz"
# The samples and cuda-calls in a guest (bench/device-guest-cuda.sh), with
# cuda_probe.
VGPU_GUEST_CUDA="$D/samples/vectorAdd $D/samples/matrixMul $D/samples/simpleStreams $D/samples/reduction $D/cuda-calls" \
	"$ROOT/scripts/guest-image.sh" "$plain" "$D/initrd-cuda.gz"
du -sh "$D"
