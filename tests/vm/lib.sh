# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # the variables are the callers'
# lib.sh - what the VM tests that boot the full guest image share: the
# scratch directory $T (kept with VGPU_VM_KEEP=1), the image
# (scripts/guest-image.sh) at $T/initrd.gz, Debian's kernel in $ASSETS,
# the registry $DB and the names of VM N. A test may define
# vm_cleanup_more to stop what else it started; MPID is the mediator.
vm_setup() { # NAME
	T=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	MPID=""
	trap vm_cleanup EXIT
	[ -x "$VGPU_QEMU" ] || { echo "# no QEMU at $VGPU_QEMU: run make qemu"; exit 1; }
	ASSETS=$(bash "$VGPU_SRC/scripts/vm-assets.sh")
	mkdir -p "$T/run" "$T/spool"
	bash "$VGPU_SRC/scripts/guest-image.sh" "$VGPU_BUILD" "$T/initrd.gz"
	DB=$T/registry.db
}
vm_cleanup() {
	[ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
	if declare -F vm_cleanup_more >/dev/null; then vm_cleanup_more; fi
	jobs -p | xargs -r kill -9 2>/dev/null || true
	[ -n "${VGPU_VM_KEEP:-}" ] || rm -rf "$T"
}
admin() { "$VGPU_ADMIN_BIN" --db "$DB" "$@"; }
uuid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
sock() { echo "$T/run/vm-$(uuid "$1").sock"; }
