#!/bin/bash
# SPDX-License-Identifier: MIT
# Every source file names its licence (COPYING): an SPDX identifier on one
# of its first three lines, of a licence whose text is in LICENSES/. The
# QEMU device's own sources are GPL-2.0-or-later (they are built into
# QEMU); the headers that the device, the guest library and a Linux module
# share must stay MIT, which all three may include.
. "$VGPU_TESTS/lib/assert.sh"
cd "${VGPU_SRC:?}" || exit 1

# The source files: those git tracks, or (outside a git tree) those under
# the source directories; the fuzz corpora are data, the docs prose;
# third_party/ is others' code, unmodified, under its own LICENSE file.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files)
else
	files=$(find admin bench common device guest libvgpu-config mediator protocol scripts \
		tests xcpng docs/man -type f; ls Makefile meson.build meson_options.txt .ci/run)
fi
files=$(printf '%s\n' "$files" | grep -v -E '^(tests/fuzz/corpus|third_party)/' |
	grep -E '\.(c|h|cu|map|sh|py|sql|build|[18])$|^Makefile$|^meson_options\.txt$|^\.ci/run$|^tests/fakes/|\.service$|\.conf$')
count=$(printf '%s\n' "$files" | grep -c .)
[ "$count" -ge 200 ] && pass "$count source files to check" || fail "only $count source files found"

missing="" unknown=""
while IFS= read -r f; do
	id=$(head -n 3 "$f" | sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+-]*\).*/\1/p' | head -n 1)
	if [ -z "$id" ]; then
		missing="$missing $f"
	elif [ ! -f "LICENSES/$id.txt" ]; then
		unknown="$unknown $f($id)"
	fi
done <<<"$files"
[ -z "$missing" ] && pass "every source file has an SPDX line" || fail "no SPDX line in:$missing"
[ -z "$unknown" ] && pass "every identifier has its text in LICENSES/" || fail "no text for:$unknown"

spdx() { head -n 3 "$1" | sed -n 's/.*SPDX-License-Identifier: \([A-Za-z0-9.+-]*\).*/\1/p'; }
expect_eq "$(spdx device/vgpu-stub.c)" "GPL-2.0-or-later" "the QEMU device is GPL-2.0-or-later"
shared=$(for f in device/vgpu-stub-regs.h protocol/*.h; do spdx "$f"; done | sort -u)
expect_eq "$shared" "MIT" "the shared headers (device registers, protocol) are MIT"
cmp -s LICENSE LICENSES/MIT.txt && pass "LICENSE is the MIT text" || fail "LICENSE differs from LICENSES/MIT.txt"
finish
