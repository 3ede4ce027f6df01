#!/bin/bash
# SPDX-License-Identifier: MIT
# xcpng-patch.sh - scripts/make-xcpng-patch.sh makes a patch that `patch
# -p1` applies to the files QEMU 4.2.1 has (their first lines, as in QEMU
# 4.0 to 5.0, written out below, followed by other lines), adding the
# device's sources unchanged and hooking them into the build; applying it
# twice is refused. Not a 4.2.1 build: see docs/xcp-ng.md.
. "$(dirname "$0")/lib.sh"

"$VGPU_SRC/scripts/make-xcpng-patch.sh" "$T/vgpu.patch" >/dev/null
tree=$T/qemu-4.2.1
mkdir -p "$tree/hw/misc"
printf '%s\n' 'common-obj-$(CONFIG_APPLESMC) += applesmc.o' 'common-obj-$(CONFIG_MAX111X) += max111x.o' \
	'common-obj-$(CONFIG_TMP105) += tmp105.o' 'common-obj-$(CONFIG_TMP421) += tmp421.o' \
	'common-obj-$(CONFIG_ISA_DEBUG) += debugexit.o' >"$tree/hw/misc/Makefile.objs"
printf '%s\n' 'config APPLESMC' '    bool' '    depends on ISA_BUS' '' 'config MAX111X' '    bool' \
	>"$tree/hw/misc/Kconfig"

(cd "$tree" && patch -p1 --quiet <"$T/vgpu.patch") || fail "the patch does not apply"
n=0
while read -r from to; do
	cmp -s "$VGPU_SRC/$from" "$tree/hw/misc/$to" || fail "hw/misc/$to differs from $from"
	n=$((n + 1))
done < <(grep -v '^#' "$VGPU_SRC/device/qemu-files")
ok "adds the $n files device/qemu-files lists, unchanged"
[ "$(head -n 1 "$tree/hw/misc/Makefile.objs")" = 'common-obj-$(CONFIG_VGPU_STUB) += vgpu-stub.o vgpu-stub-link.o vgpu-protocol.o vgpu-protocol-device.o' ] &&
	[ "$(sed -n 2p "$tree/hw/misc/Makefile.objs")" = 'common-obj-$(CONFIG_APPLESMC) += applesmc.o' ] ||
	fail "Makefile.objs not hooked"
grep -qx 'config VGPU_STUB' "$tree/hw/misc/Kconfig" && grep -qx '    default y if PCI_DEVICES' "$tree/hw/misc/Kconfig" &&
	grep -qx 'config APPLESMC' "$tree/hw/misc/Kconfig" || fail "Kconfig not hooked"
ok "hooks the build: Makefile.objs and Kconfig"
if (cd "$tree" && patch -p1 --forward --dry-run --quiet <"$T/vgpu.patch") >/dev/null 2>&1; then
	fail "applies twice"
fi
ok "a second application is refused"
