#!/bin/bash
# SPDX-License-Identifier: MIT
# The restart workflow of set-pool, set-priority, set-vm-id and update-vm on a
# running VM: confirmation (yes, no, no terminal), the order shutdown ->
# registry -> start, forced shutdown, and rollback when a step fails.
. "$(dirname "$0")/lib.sh"

admin register-vm --vm-uuid "$U1" --vm-name one --pool A --priority low --vm-id 5
admin register-vm --vm-uuid "$U2" --vm-name two --vm-id 6
fake_vm "$U1" one running
fake_vm "$U2" two running
row() { sqlite3 "$DB" "SELECT pool_id||','||priority||','||vm_id FROM vms WHERE vm_uuid='$1'"; }
actions() { sed 's/ uuid=[^ ]*//; s/ param-name=power-state//' "$FAKE_XE_DIR/calls.log" | tr '\n' ';'; }

# --- no terminal, no --yes: refuse at once, change nothing -------------------
before=$(snapshot); reset_calls
admin set-pool --vm-uuid "$U1" --pool B
expect_rc 5 "no terminal and no --yes refuses"
expect_err "confirm with --yes" "says how to confirm"
expect_eq "$(snapshot)" "$before" "registry unchanged"
expect_eq "$(power_of "$U1")" "running" "VM still running"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "no shutdown"

# --- answered "no" on a terminal --------------------------------------------
before=$(snapshot); reset_calls
set +e
"$TTY_RUN" no "(yes/no):" -- "$VGPU_ADMIN_BIN" --db "$DB" set-pool --vm-uuid "$U1" --pool B >"$T/tty" 2>&1
RC=$?; set -e; OUT=$(cat "$T/tty")
expect_rc 5 "answer no"
expect_out "Do you want to apply these settings? (yes/no):" "asks the seed's question"
expect_out "CURRENT" "shows current and new settings"
expect_out "Cancelled" "says it was cancelled"
expect_eq "$(snapshot)" "$before" "registry unchanged after no"
expect_eq "$(power_of "$U1")" "running" "VM still running after no"

# --- answered "yes" on a terminal: shutdown, registry, start -----------------
reset_calls
set +e
"$TTY_RUN" yes "(yes/no):" -- "$VGPU_ADMIN_BIN" --db "$DB" set-pool --vm-uuid "$U1" --pool B >"$T/tty" 2>&1
RC=$?; set -e; OUT=$(cat "$T/tty")
expect_rc 0 "answer yes"
expect_eq "$(row "$U1")" "B,0,5" "pool changed"
expect_eq "$(power_of "$U1")" "running" "VM running again"
expect_eq "$(actions)" \
	"vm-param-get | registry=A,0,5;vm-shutdown | registry=A,0,5;vm-start | registry=B,0,5;" \
	"order: shutdown with old settings, registry, start with new"

# --- --yes, each command -----------------------------------------------------
reset_calls
admin set-priority --vm-uuid "$U1" --priority high --yes
expect_rc 0 "set-priority --yes"
expect_eq "$(row "$U1")" "B,2,5" "priority changed"
expect_eq "$(actions)" "vm-param-get | registry=B,0,5;vm-shutdown | registry=B,0,5;vm-start | registry=B,2,5;" "set-priority restart order"
admin set-vm-id --vm-uuid "$U1" --vm-id 9 --yes
expect_rc 0 "set-vm-id --yes"
expect_eq "$(row "$U1")" "B,2,9" "vm_id changed"
admin update-vm --vm-uuid "$U1" --pool A --priority medium --vm-id 10 --yes
expect_rc 0 "update-vm --yes"
expect_eq "$(row "$U1")" "A,1,10" "update-vm changed three fields in one restart"
expect_eq "$(power_of "$U1")" "running" "running after update-vm"

# --- taken vm_id: refused before anything is touched ---------------------------
before=$(snapshot); reset_calls
admin set-vm-id --vm-uuid "$U1" --vm-id 6 --yes
expect_rc 4 "vm_id taken"
expect_err "already used" "says the vm_id is taken"
expect_eq "$(snapshot)" "$before" "registry unchanged"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "VM not shut down"

# --- clean shutdown fails: forced -----------------------------------------------
reset_calls
xe_fail vm-shutdown 1
admin set-pool --vm-uuid "$U1" --pool B --yes
expect_rc 0 "clean shutdown failure falls back to --force"
expect_out "forcing" "says it forces"
grep -q "^vm-shutdown uuid=$U1 --force" "$FAKE_XE_DIR/calls.log" && pass "forced shutdown called" || fail "no forced shutdown"
expect_eq "$(row "$U1")" "B,1,10" "pool changed after forced shutdown"

# --- clean shutdown hangs past --timeout: forced ------------------------------------
reset_calls
touch "$FAKE_XE_DIR/hang/vm-shutdown"
start=$(date +%s)
admin set-pool --vm-uuid "$U1" --pool A --yes --timeout 1
rm "$FAKE_XE_DIR/hang/vm-shutdown"
expect_rc 0 "hung shutdown is forced after the timeout"
[ $(( $(date +%s) - start )) -lt 15 ] && pass "timeout honoured" || fail "took too long"
expect_eq "$(row "$U1")" "A,1,10" "pool changed after timeout"

# --- both shutdowns fail: nothing changes, VM keeps running ------------------------
before=$(snapshot); reset_calls
xe_fail vm-shutdown; xe_fail vm-shutdown-force
admin set-pool --vm-uuid "$U1" --pool B --yes
xe_ok vm-shutdown; xe_ok vm-shutdown-force
expect_rc 1 "shutdown impossible"
expect_err "registry was not changed" "says the registry was not changed"
expect_eq "$(snapshot)" "$before" "registry unchanged"
expect_eq "$(power_of "$U1")" "running" "VM still running"

# --- vm-start fails once: registry rolled back, VM started with old settings --------
before=$(values); reset_calls
xe_fail vm-start 1
admin set-pool --vm-uuid "$U1" --pool B --yes
expect_rc 1 "start with new settings fails"
expect_err "registry was restored" "says the registry was restored"
expect_out "running again with its previous settings" "says the VM runs again"
expect_eq "$(values)" "$before" "registry holds the old values"
expect_eq "$(power_of "$U1")" "running" "VM running again"
expect_eq "$(actions)" \
	"vm-param-get | registry=A,1,10;vm-shutdown | registry=A,1,10;vm-start | registry=B,1,10;vm-start | registry=A,1,10;" \
	"second start happened after the rollback"

# --- vm-start always fails: registry rolled back, VM left halted, exit 6 -------------
before=$(values)
xe_fail vm-start
admin set-pool --vm-uuid "$U1" --pool B --yes
xe_ok vm-start
expect_rc 6 "VM could not be started again"
expect_err "HALTED" "says loudly that the VM is halted"
expect_eq "$(values)" "$before" "registry holds the old values"
expect_eq "$(power_of "$U1")" "halted" "VM halted (as reported)"

# --- xe missing: refuse (power state unknown); --no-restart works ---------------------
echo running >"$FAKE_XE_DIR/vms/$U1/power-state"
before=$(snapshot)
PATH=/usr/bin:/bin admin set-pool --vm-uuid "$U1" --pool B --yes
expect_rc 1 "xe missing"
expect_err "xe not found" "says xe is missing"
expect_eq "$(snapshot)" "$before" "registry unchanged without xe"
PATH=/usr/bin:/bin admin set-pool --vm-uuid "$U1" --pool B --no-restart
expect_rc 0 "--no-restart without xe"
expect_out "next start" "says when it takes effect"
expect_eq "$(row "$U1")" "B,1,10" "--no-restart updated the registry"

# --- suspended VM: refused --------------------------------------------------------------
echo suspended >"$FAKE_XE_DIR/vms/$U2/power-state"
before=$(snapshot)
admin set-priority --vm-uuid "$U2" --priority low --yes
expect_rc 1 "suspended VM refused"
expect_err "is suspended" "says the VM is suspended"
expect_eq "$(snapshot)" "$before" "registry unchanged"

# --- CloudStack recreated the VM: new XAPI UUID, same name -------------------------
admin register-vm --vm-uuid "$U3" --vm-name i-2-33-VM --vm-id 33
fake_vm "$U4" i-2-33-VM running
reset_calls
admin set-priority --vm-uuid "$U3" --priority high --yes
expect_rc 0 "VM found by name on the host"
expect_out "has its name and is used instead" "says which VM it restarts"
grep -q "^vm-shutdown uuid=$U4" "$FAKE_XE_DIR/calls.log" && grep -q "^vm-start uuid=$U4" "$FAKE_XE_DIR/calls.log" &&
	pass "the recreated VM was restarted" || fail "recreated VM not restarted: $(calls)"
expect_eq "$(row "$U3")" "A,2,33" "registry entry updated"
# Two host VMs with that name: neither is restarted, only the registry changes.
fake_vm "$U5" i-2-33-VM running
reset_calls
admin set-priority --vm-uuid "$U3" --priority low --yes
expect_rc 0 "ambiguous name: registry only"
expect_out "none is restarted" "says the name is ambiguous"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "nothing restarted"

finish
