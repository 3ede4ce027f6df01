#!/bin/bash
# SPDX-License-Identifier: MIT
# make-xcpng-patch.sh - the vgpu-stub device as a patch for XCP-ng 8.2's
# QEMU 4.2.1 package (docs/xcp-ng.md says how to build the RPM with it).
#
#   scripts/make-xcpng-patch.sh [OUT]    (default build-qemu/qemu-4.2.1-vgpu-stub.patch)
#
# The patch adds the files device/qemu-files lists to hw/misc/ (the device,
# its link to the mediator and the protocol code it speaks, as they are:
# the one source builds against 4.2.1 and 7.2) and hooks them into
# QEMU 4.2's make-based build: a line at the top of hw/misc/Makefile.objs
# and a Kconfig entry at the top of hw/misc/Kconfig (default y with PCI
# devices; XCP-ng's spec configures --without-default-devices, so
# docs/xcp-ng.md also sets CONFIG_VGPU_STUB=y). Its context lines are the first lines of those files,
# the same from QEMU 4.0 to 5.0. It applies with `patch -p1`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/build-qemu/qemu-4.2.1-vgpu-stub.patch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a/hw/misc" "$work/b/hw/misc" "$(dirname "$OUT")"

# What 4.2.1's files start with (the hunks' context).
printf '%s\n' 'common-obj-$(CONFIG_APPLESMC) += applesmc.o' \
	'common-obj-$(CONFIG_MAX111X) += max111x.o' 'common-obj-$(CONFIG_TMP105) += tmp105.o' \
	>"$work/a/hw/misc/Makefile.objs"
printf '%s\n' 'config APPLESMC' '    bool' '    depends on ISA_BUS' >"$work/a/hw/misc/Kconfig"

files=()
objs=""
while read -r from to; do
	files+=("$to")
	cp "$ROOT/$from" "$work/b/hw/misc/$to"
	[[ $to == *.c ]] && objs="$objs ${to%.c}.o"
done < <(grep -v '^#' "$ROOT/device/qemu-files")
{ echo "common-obj-\$(CONFIG_VGPU_STUB) +=$objs"; cat "$work/a/hw/misc/Makefile.objs"; } \
	>"$work/b/hw/misc/Makefile.objs"
{ printf '%s\n' 'config VGPU_STUB' '    bool' '    default y if PCI_DEVICES' '    depends on PCI' ''
  cat "$work/a/hw/misc/Kconfig"; } >"$work/b/hw/misc/Kconfig"

{
	echo "vgpu-stub: the vgpu PCI device (vendor 0x1af4, device 0x1111), for QEMU 4.2.1"
	echo
	echo "From the vgpu project's device/ (docs/specs/vgpu-stub.md is the register map)."
	echo
	(cd "$work" && LC_ALL=C diff -Naur --label a/hw/misc/Kconfig --label b/hw/misc/Kconfig \
		a/hw/misc/Kconfig b/hw/misc/Kconfig || true)
	(cd "$work" && LC_ALL=C diff -Naur --label a/hw/misc/Makefile.objs --label b/hw/misc/Makefile.objs \
		a/hw/misc/Makefile.objs b/hw/misc/Makefile.objs || true)
	for f in "${files[@]}"; do
		(cd "$work" && LC_ALL=C diff -Naur --label /dev/null --label "b/hw/misc/$f" \
			/dev/null "b/hw/misc/$f" || true)
	done
} >"$OUT"
echo "$OUT"
