#!/bin/bash
# SPDX-License-Identifier: MIT
# startup-parse.sh - vgpu-vm-startup.sh reads vgpu-admin's --export output
# strictly and never executes it: a stand-in vgpu-admin prints bad output.
. "$(dirname "$0")/startup-lib.sh"

make_db
cat >"$T/bin/admin-stub" <<'STUB'
#!/bin/bash
# Prints $XE_STUB_DIR/admin.out and exits with $XE_STUB_DIR/admin.status.
printf '%s\n' "$*" >"$XE_STUB_DIR/admin.args"
cat "$XE_STUB_DIR/admin.out"
exit "$(cat "$XE_STUB_DIR/admin.status")"
STUB
chmod +x "$T/bin/admin-stub"
export VGPU_ADMIN=$T/bin/admin-stub

# admin_says STATUS TEXT
admin_says() {
	printf '%s' "$2" >"$T/admin.out"
	echo "$1" >"$T/admin.status"
}

admin_says 0 $'VGPU_VM_ID=7\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n'
run_startup "$UUID1"
expect_status 0
expect_xe "vm-param-set uuid=$UUID1 platform:vgpu-pool=B platform:vgpu-priority=2 platform:vgpu-vm-id=7"
[ "$(cat "$T/admin.args")" = "--db $VGPU_DB show-vm --vm-uuid $UUID1 --export" ] ||
	fail "vgpu-admin called as: $(cat "$T/admin.args")"
ok "vgpu-admin called as --db DB show-vm --vm-uuid U --export"

admin_says 0 $'VGPU_PRIORITY=0\nVGPU_FUTURE_KEY=x y\nVGPU_POOL_ID=A\nVGPU_VM_ID=2147483647\n'
run_startup "$UUID1"
expect_status 0
expect_xe "vm-param-set uuid=$UUID1 platform:vgpu-pool=A platform:vgpu-priority=0 platform:vgpu-vm-id=2147483647"
ok "any order; unknown VGPU_* keys ignored"

while IFS= read -r -d '' out; do
	admin_says 0 "$out"
	run_startup "$UUID1"
	expect_status 1
	expect_no_xe
	expect_stderr 'error: vgpu-admin (printed|did not print)'
	run_startup -vmuuid "$UUID1" -reason start
	expect_status 0
	expect_no_xe
done < <(printf '%s\0' \
	"" \
	$'VGPU_VM_ID=7\nVGPU_POOL_ID=B\n' \
	$'VGPU_VM_ID=7\nVGPU_POOL_ID=C\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7\nVGPU_POOL_ID=b\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7\nVGPU_POOL_ID=B\nVGPU_PRIORITY=3\n' \
	$'VGPU_VM_ID=0\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=07\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=2147483648\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7 \nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7\nVGPU_VM_ID=8\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=$(touch pwned)\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7;touch pwned\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\ntouch pwned\n' \
	$'PATH=/tmp\nVGPU_VM_ID=7\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n' \
	$'VGPU_VM_ID=7\r\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2\n')
if [ -e pwned ] || [ -e "$T/pwned" ]; then fail "vgpu-admin output was executed"; fi
ok "malformed, duplicated, missing or hostile output: error, no xe (CLI 1, hook 0)"

admin_says 1 ""
run_startup "$UUID1"
expect_status 1
expect_stderr 'vgpu-admin show-vm failed \(status 1\)'
expect_no_xe
run_startup -vmuuid "$UUID1" -reason start
expect_status 0
expect_no_xe
ok "vgpu-admin fails: error (CLI 1, hook 0)"

admin_says 3 ""
run_startup "$UUID1"
expect_status 0
expect_no_xe
ok "vgpu-admin status 3 (not registered): silent, status 0"
