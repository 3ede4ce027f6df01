#!/bin/bash
# SPDX-License-Identifier: MIT
# Eight vgpu-admin processes registering and updating VMs in one registry at
# once: no update lost, never "database is locked", integrity_check ok.
. "$(dirname "$0")/lib.sh"

admin list-pools   # create the registry
per=12
worker() { # worker N: register $per VMs, then change each one's priority and pool
	local n=$1 i u
	for i in $(seq 1 $per); do
		u=$(printf '%08x-0000-4000-8000-%012x' "$n" "$i")
		"$VGPU_ADMIN_BIN" --db "$DB" register-vm --vm-uuid "$u" --vm-name "w$n-$i" >/dev/null || echo "register $u failed" >>"$T/errors"
	done
	for i in $(seq 1 $per); do
		u=$(printf '%08x-0000-4000-8000-%012x' "$n" "$i")
		"$VGPU_ADMIN_BIN" --db "$DB" update-vm --vm-uuid "$u" --priority high --pool B --no-restart >/dev/null ||
			echo "update $u failed" >>"$T/errors"
	done
}
for n in 1 2 3 4 5 6 7 8; do worker "$n" 2>>"$T/stderr" & done
wait
total=$((8 * per))
expect_eq "$(cat "$T/errors" 2>/dev/null | wc -l)" "0" "every command succeeded"
if grep -qi "locked\|busy" "$T/stderr"; then fail "a command saw 'database is locked'"; else pass "no 'database is locked'"; fi
expect_eq "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM vms')" "$total" "all $total VMs registered"
expect_eq "$(sqlite3 "$DB" 'SELECT COUNT(DISTINCT vm_id), MIN(vm_id), MAX(vm_id) FROM vms')" "$total|1|$total" \
	"vm_ids distinct and dense from 1"
expect_eq "$(sqlite3 "$DB" "SELECT COUNT(*) FROM vms WHERE priority = 2 AND pool_id = 'B'")" "$total" "no update lost"
expect_eq "$(sqlite3 "$DB" 'PRAGMA integrity_check')" "ok" "integrity_check"
finish
