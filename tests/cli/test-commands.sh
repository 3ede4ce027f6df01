#!/bin/bash
# SPDX-License-Identifier: MIT
# The whole vgpu-admin command set on a real SQLite registry, with the fake xe
# for the commands that ask the toolstack (scan-vms, status).
. "$(dirname "$0")/lib.sh"

# --- help and version ---------------------------------------------------
admin --help;  expect_rc 0 "--help"; expect_out "register-vm" "--help lists commands"
admin --version; expect_rc 0 "--version"; expect_out "vgpu-admin " "--version prints the version"
for c in list-pools show-pool scan-vms register-vm show-vm list-vms set-pool set-priority \
	set-vm-id update-vm remove-vm status; do
	admin "$c" --help
	expect_rc 0 "$c --help"
	expect_out "Usage: vgpu-admin $c" "$c --help shows its usage"
done
admin help set-vm-id; expect_out "is shut down" "help set-vm-id explains the restart"
admin help set-pool; expect_out "VM is not restarted" "help set-pool says the change is live"
expect_out "have no effect" "help set-pool: --yes, --no-restart, --timeout change nothing"
admin; expect_rc 2 "no command is a usage error"

# --- registry created on first use, pools ---------------------------------
admin list-pools
expect_rc 0 "list-pools on a new registry"
[ -f "$DB" ] && pass "registry file and directory created" || fail "registry not created"
expect_out "Pool A" "list-pools shows Pool A"
expect_out "Pool B" "list-pools shows Pool B"
expect_eq "$(sqlite3 "$DB" 'PRAGMA journal_mode')" "wal" "registry is in WAL mode"

# --- register-vm: defaults and explicit values ---------------------------
admin register-vm --vm-uuid "$U1"
expect_rc 0 "register-vm with defaults"
expect_out "vm_id 1 in pool A with priority medium" "defaults: pool A, medium, vm_id 1"
admin register-vm --vm-uuid "${U2^^}" --vm-name "db 2" --pool b --priority high --vm-id 7
expect_rc 0 "register-vm with every option (upper-case UUID, pool b)"
expect_eq "$(sqlite3 "$DB" "SELECT vm_id||pool_id||priority||vm_name FROM vms WHERE vm_uuid='$U2'")" \
	"7B2db 2" "stored lower-case with the given values"
admin register-vm --vm-uuid="$U3" --vm-name=web-3 --pool=B --priority=low
expect_rc 0 "register-vm with --opt=value forms"
expect_out "vm_id 2 in pool B with priority low" "next automatic vm_id is the lowest free (2)"
admin register-vm --vm-uuid "$U4" --vm-name "i-2-33-VM" --priority 0
expect_rc 0 "priority given as a number"

# --- show-vm -----------------------------------------------------------------
admin show-vm --vm-uuid "$U2"
expect_rc 0 "show-vm"
expect_out "vm_id:     7" "show-vm shows the vm_id"
expect_out "high (2)" "show-vm shows the priority"
admin show-vm --vm-name "i-2-33-VM"
expect_rc 0 "show-vm by name"; expect_out "$U4" "show-vm by name finds the VM"
admin show-vm --vm-uuid "$U2" --export
expect_eq "$OUT" $'VGPU_VM_ID=7\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2' "show-vm --export"
admin show-vm --vm-uuid "$U5"
expect_rc 3 "show-vm of an unregistered VM"; expect_err "no VM is registered" "says not registered"
admin show-vm
expect_rc 2 "show-vm without a selector"

# --- list-vms with filters ------------------------------------------------
admin list-vms
expect_rc 0 "list-vms"
expect_eq "$(echo "$OUT" | awk 'NR>1 {print $1}' | tr '\n' ' ')" "1 2 3 7 " "list-vms ordered by vm_id"
admin list-vms --pool B
expect_eq "$(echo "$OUT" | awk 'NR>1 {print $1}' | tr '\n' ' ')" "2 7 " "list-vms --pool B"
admin list-vms --priority high
expect_eq "$(echo "$OUT" | awk 'NR>1 {print $1}' | tr '\n' ' ')" "7 " "list-vms --priority high"
admin list-vms --pool A --priority medium
expect_eq "$(echo "$OUT" | awk 'NR>1 {print $1}' | tr '\n' ' ')" "1 " "list-vms with both filters"

# --- show-pool ---------------------------------------------------------------
admin show-pool --pool-id B
expect_rc 0 "show-pool"
expect_out "VMs:         2" "show-pool counts the pool's VMs"
expect_out "$U3" "show-pool lists the pool's VMs"

# --- scan-vms and status against the fake host ------------------------------
fake_vm "$U1" "vm-one" running
fake_vm "$U2" "db 2" halted
fake_vm "$U5" "stranger" running
fake_vm 99999999-9999-4999-8999-999999999999 "i-2-33-VM" running   # recreated by CloudStack
admin scan-vms
expect_rc 0 "scan-vms"
expect_eq "$(echo "$OUT" | grep -c '^Pool A\|^Pool B\|^Unregistered')" "3" "three groups"
expect_out "stranger" "unregistered host VM listed"
expect_out "(matched by name)" "recreated VM matched by its name"
pool_a=$(echo "$OUT" | sed -n '/^Pool A/,/^Pool B/p')
case "$pool_a" in *"$U1"*"running"*) pass "U1 in Pool A, running" ;; *) fail "U1 not in Pool A: $pool_a" ;; esac
unreg=$(echo "$OUT" | sed -n '/^Unregistered/,$p')
case "$unreg" in *"$U5"*) pass "U5 under Unregistered" ;; *) fail "U5 not under Unregistered" ;; esac
grep -q "^vm-list is-control-domain=false" "$FAKE_XE_DIR/calls.log" && pass "scan-vms asked xe vm-list for non-dom0 VMs" || fail "no vm-list call"

# A second host VM with the same name-label makes the name match ambiguous.
fake_vm 88888888-8888-4888-8888-888888888888 "i-2-33-VM" halted
admin scan-vms
case "$OUT" in *"(matched by name)"*) fail "ambiguous name still matched" ;; *) pass "ambiguous name matches nothing" ;; esac
rm -r "$FAKE_XE_DIR/vms/88888888-8888-4888-8888-888888888888"

admin status
expect_rc 0 "status"
expect_out "[Pool A]" "status shows Pool A"
expect_out "[Pool B]" "status shows Pool B"
expect_out "Summary: 4 VMs registered (high 1, medium 1, low 2)" "status summary counts priorities"
expect_out "2 running, 1 halted, 1 absent or other" "status summary counts power states"
echo "$OUT" | grep "$U3" | grep -q absent && pass "VM not on the host shown as absent" || fail "U3 not absent"

# Without xe: status still works, scan-vms fails clearly.
PATH=/usr/bin:/bin admin status
expect_rc 0 "status works without xe"
expect_out "Power states unknown: xe not found" "status says xe is missing"
PATH=/usr/bin:/bin admin scan-vms
expect_rc 1 "scan-vms without xe fails"
expect_err "xe not found" "scan-vms says xe is missing"
xe_fail vm-list
admin scan-vms
expect_rc 1 "scan-vms when xe vm-list fails"
expect_err "fake failure of vm-list" "scan-vms passes xe's message on"
xe_ok vm-list

# --- update commands on a halted VM / VM not on host (no restart needed) -----
reset_calls
admin set-pool --vm-uuid "$U2" --pool A
expect_rc 0 "set-pool on a halted VM"
expect_out "no restart needed" "set-pool: registry only, applied live"
admin set-vm-id --vm-uuid "$U2" --vm-id 70
expect_rc 0 "set-vm-id on a halted VM"
expect_out "The VM is halted" "halted VM only updated"
expect_eq "$(grep -c 'vm-shutdown\|vm-start' "$FAKE_XE_DIR/calls.log" || true)" "0" "halted VM not restarted"
admin set-priority --vm-uuid "$U3" --priority medium
expect_rc 0 "set-priority on a VM not on this host"
admin set-vm-id --vm-uuid "$U3" --vm-id 100
expect_rc 0 "set-vm-id on a VM not on this host"
expect_out "not on this host" "says the VM is not on this host"
admin update-vm --vm-uuid "$U3" --vm-name renamed --pool A --priority high --vm-id 101
expect_rc 0 "update-vm with every field"
expect_eq "$(sqlite3 "$DB" "SELECT vm_id||pool_id||priority||vm_name FROM vms WHERE vm_uuid='$U3'")" \
	"101A2renamed" "update-vm stored every field"
admin update-vm --vm-uuid "$U3" --vm-name renamed --pool A
expect_rc 0 "update-vm with unchanged values"
expect_out "nothing to change" "unchanged values change nothing"
admin update-vm --vm-uuid "$U1" --vm-name "new name"
expect_rc 0 "renaming a running VM needs no restart"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "rename did not restart"

# --- remove-vm ---------------------------------------------------------------------
admin remove-vm --vm-uuid "$U4"
expect_rc 0 "remove-vm"
admin remove-vm --vm-uuid "$U4"
expect_rc 3 "remove-vm of a removed VM"
expect_eq "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM vms')" "3" "three VMs left"
expect_eq "$(sqlite3 "$DB" 'PRAGMA integrity_check')" "ok" "integrity_check"

# $VGPU_DB is used when --db is absent.
VGPU_DB=$DB "$VGPU_ADMIN_BIN" list-vms >"$T/o2" && grep -q "$U1" "$T/o2" && pass "VGPU_DB selects the registry" || fail "VGPU_DB ignored"

finish
