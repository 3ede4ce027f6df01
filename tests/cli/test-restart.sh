#!/bin/bash
# SPDX-License-Identifier: MIT
# The restart workflow of set-vm-id and update-vm (a new vm_id) on a running
# VM: confirmation (yes, no, no terminal), the order shutdown -> registry ->
# start, forced shutdown, and rollback when a step fails. And what does not
# restart: set-pool, set-priority and update-vm without a new vm_id change
# only the registry (the mediator applies pool and priority live, to the
# device's registers too), whatever the VM is doing, without asking xe.
. "$(dirname "$0")/lib.sh"

admin register-vm --vm-uuid "$U1" --vm-name one --pool A --priority low --vm-id 5
admin register-vm --vm-uuid "$U2" --vm-name two --vm-id 6
fake_vm "$U1" one running
fake_vm "$U2" two running
row() { sqlite3 "$DB" "SELECT pool_id||','||priority||','||vm_id FROM vms WHERE vm_uuid='$1'"; }
actions() { sed 's/ uuid=[^ ]*//; s/ param-name=power-state//' "$FAKE_XE_DIR/calls.log" | tr '\n' ';'; }

# --- pool and priority of a running VM: live, no restart, no question --------
reset_calls
admin set-pool --vm-uuid "$U1" --pool B
expect_rc 0 "set-pool on a running VM, no terminal, no --yes"
expect_out "no restart needed" "says no restart is needed"
expect_eq "$(row "$U1")" "B,0,5" "pool changed"
expect_eq "$(calls)" "" "set-pool asks xe nothing: no shutdown, no start"
expect_eq "$(power_of "$U1")" "running" "VM still running"
admin set-priority --vm-uuid "$U1" --priority high --yes
expect_rc 0 "set-priority --yes (accepted, no effect)"
expect_eq "$(row "$U1")" "B,2,5" "priority changed"
admin set-priority --vm-uuid "$U1" --priority low --no-restart --timeout 5
expect_rc 0 "set-priority --no-restart --timeout (accepted, no effect)"
expect_eq "$(row "$U1")" "B,0,5" "priority changed again"
admin update-vm --vm-uuid "$U1" --pool A --priority medium
expect_rc 0 "update-vm of pool and priority, no --yes"
expect_eq "$(row "$U1")" "A,1,5" "update-vm changed both"
expect_eq "$(calls)" "" "no xe call for any of them"
PATH=/usr/bin:/bin admin set-pool --vm-uuid "$U1" --pool B
expect_rc 0 "set-pool without xe"
PATH=/usr/bin:/bin admin set-pool --vm-uuid "$U1" --pool A
expect_eq "$(row "$U1")" "A,1,5" "and back"
"$TTY_RUN" yes "(yes/no):" -- "$VGPU_ADMIN_BIN" --db "$DB" set-priority --vm-uuid "$U1" --priority high >"$T/tty" 2>&1 || true
grep -q "(yes/no)" "$T/tty" && fail "set-priority asked on a terminal: $(cat "$T/tty")" ||
	pass "set-priority on a terminal does not ask"
expect_eq "$(row "$U1")" "A,2,5" "priority changed from a terminal"
admin set-priority --vm-uuid "$U1" --priority medium
expect_eq "$(calls)" "" "still no xe call"

# --- a new vm_id, no terminal, no --yes: refuse at once, change nothing -------
before=$(snapshot); reset_calls
admin set-vm-id --vm-uuid "$U1" --vm-id 7
expect_rc 5 "no terminal and no --yes refuses"
expect_err "confirm with --yes" "says how to confirm"
expect_eq "$(snapshot)" "$before" "registry unchanged"
expect_eq "$(power_of "$U1")" "running" "VM still running"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "no shutdown"

# --- answered "no" on a terminal --------------------------------------------
before=$(snapshot); reset_calls
set +e
"$TTY_RUN" no "(yes/no):" -- "$VGPU_ADMIN_BIN" --db "$DB" set-vm-id --vm-uuid "$U1" --vm-id 7 >"$T/tty" 2>&1
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
"$TTY_RUN" yes "(yes/no):" -- "$VGPU_ADMIN_BIN" --db "$DB" set-vm-id --vm-uuid "$U1" --vm-id 7 >"$T/tty" 2>&1
RC=$?; set -e; OUT=$(cat "$T/tty")
expect_rc 0 "answer yes"
expect_eq "$(row "$U1")" "A,1,7" "vm_id changed"
expect_eq "$(power_of "$U1")" "running" "VM running again"
expect_eq "$(actions)" \
	"vm-param-get | registry=A,1,5;vm-shutdown | registry=A,1,5;vm-start | registry=A,1,7;" \
	"order: shutdown with old settings, registry, start with new"

# --- --yes, each command -----------------------------------------------------
reset_calls
admin update-vm --vm-uuid "$U1" --priority high --vm-id 8 --yes
expect_rc 0 "update-vm --vm-id --yes"
expect_eq "$(row "$U1")" "A,2,8" "vm_id and priority changed"
expect_eq "$(actions)" "vm-param-get | registry=A,1,7;vm-shutdown | registry=A,1,7;vm-start | registry=A,2,8;" \
	"update-vm with a new vm_id: restart order"
admin set-vm-id --vm-uuid "$U1" --vm-id 9 --yes
expect_rc 0 "set-vm-id --yes"
expect_eq "$(row "$U1")" "A,2,9" "vm_id changed"
admin update-vm --vm-uuid "$U1" --pool B --priority medium --vm-id 10 --yes
expect_rc 0 "update-vm --yes"
expect_eq "$(row "$U1")" "B,1,10" "update-vm changed three fields in one restart"
expect_eq "$(power_of "$U1")" "running" "running after update-vm"
admin set-pool --vm-uuid "$U1" --pool A
expect_eq "$(row "$U1")" "A,1,10" "(set-pool back, live)"

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
admin set-vm-id --vm-uuid "$U1" --vm-id 11 --yes
expect_rc 0 "clean shutdown failure falls back to --force"
expect_out "forcing" "says it forces"
grep -q "^vm-shutdown uuid=$U1 --force" "$FAKE_XE_DIR/calls.log" && pass "forced shutdown called" || fail "no forced shutdown"
expect_eq "$(row "$U1")" "A,1,11" "vm_id changed after forced shutdown"

# --- clean shutdown hangs past --timeout: forced ------------------------------------
reset_calls
touch "$FAKE_XE_DIR/hang/vm-shutdown"
start=$(date +%s)
admin set-vm-id --vm-uuid "$U1" --vm-id 12 --yes --timeout 1
rm "$FAKE_XE_DIR/hang/vm-shutdown"
expect_rc 0 "hung shutdown is forced after the timeout"
[ $(( $(date +%s) - start )) -lt 15 ] && pass "timeout honoured" || fail "took too long"
expect_eq "$(row "$U1")" "A,1,12" "vm_id changed after timeout"

# --- both shutdowns fail: nothing changes, VM keeps running ------------------------
before=$(snapshot); reset_calls
xe_fail vm-shutdown; xe_fail vm-shutdown-force
admin set-vm-id --vm-uuid "$U1" --vm-id 13 --yes
xe_ok vm-shutdown; xe_ok vm-shutdown-force
expect_rc 1 "shutdown impossible"
expect_err "registry was not changed" "says the registry was not changed"
expect_eq "$(snapshot)" "$before" "registry unchanged"
expect_eq "$(power_of "$U1")" "running" "VM still running"

# --- vm-start fails once: registry rolled back, VM started with old settings --------
before=$(values); reset_calls
xe_fail vm-start 1
admin set-vm-id --vm-uuid "$U1" --vm-id 13 --yes
expect_rc 1 "start with new settings fails"
expect_err "registry was restored" "says the registry was restored"
expect_out "running again with its previous settings" "says the VM runs again"
expect_eq "$(values)" "$before" "registry holds the old values"
expect_eq "$(power_of "$U1")" "running" "VM running again"
expect_eq "$(actions)" \
	"vm-param-get | registry=A,1,12;vm-shutdown | registry=A,1,12;vm-start | registry=A,1,13;vm-start | registry=A,1,12;" \
	"second start happened after the rollback"

# --- vm-start always fails: registry rolled back, VM left halted, exit 6 -------------
before=$(values)
xe_fail vm-start
admin set-vm-id --vm-uuid "$U1" --vm-id 13 --yes
xe_ok vm-start
expect_rc 6 "VM could not be started again"
expect_err "HALTED" "says loudly that the VM is halted"
expect_eq "$(values)" "$before" "registry holds the old values"
expect_eq "$(power_of "$U1")" "halted" "VM halted (as reported)"

# --- xe missing: refuse (power state unknown); --no-restart works ---------------------
echo running >"$FAKE_XE_DIR/vms/$U1/power-state"
before=$(snapshot)
PATH=/usr/bin:/bin admin set-vm-id --vm-uuid "$U1" --vm-id 13 --yes
expect_rc 1 "xe missing"
expect_err "xe not found" "says xe is missing"
expect_eq "$(snapshot)" "$before" "registry unchanged without xe"
PATH=/usr/bin:/bin admin update-vm --vm-uuid "$U1" --vm-id 13 --pool B --no-restart
expect_rc 0 "--no-restart without xe"
expect_out "next start" "says when the vm_id takes effect"
expect_out "its new pool and priority at once" "and that the pool applies at once"
expect_eq "$(row "$U1")" "B,1,13" "--no-restart updated the registry"

# --- suspended VM: refused for a new vm_id; a new priority is only stored ----------------
echo suspended >"$FAKE_XE_DIR/vms/$U2/power-state"
before=$(snapshot)
admin set-vm-id --vm-uuid "$U2" --vm-id 20 --yes
expect_rc 1 "suspended VM refused"
expect_err "is suspended" "says the VM is suspended"
expect_eq "$(snapshot)" "$before" "registry unchanged"
admin set-priority --vm-uuid "$U2" --priority low
expect_rc 0 "a suspended VM's priority: registry only"
expect_eq "$(row "$U2")" "A,0,6" "priority stored"

# --- CloudStack recreated the VM: new XAPI UUID, same name -------------------------
admin register-vm --vm-uuid "$U3" --vm-name i-2-33-VM --vm-id 33
fake_vm "$U4" i-2-33-VM running
reset_calls
admin set-vm-id --vm-uuid "$U3" --vm-id 34 --yes
expect_rc 0 "VM found by name on the host"
expect_out "has its name and is used instead" "says which VM it restarts"
grep -q "^vm-shutdown uuid=$U4" "$FAKE_XE_DIR/calls.log" && grep -q "^vm-start uuid=$U4" "$FAKE_XE_DIR/calls.log" &&
	pass "the recreated VM was restarted" || fail "recreated VM not restarted: $(calls)"
expect_eq "$(row "$U3")" "A,1,34" "registry entry updated"
# Two host VMs with that name: neither is restarted, only the registry changes.
fake_vm "$U5" i-2-33-VM running
reset_calls
admin set-vm-id --vm-uuid "$U3" --vm-id 35 --yes
expect_rc 0 "ambiguous name: registry only"
expect_out "none is restarted" "says the name is ambiguous"
expect_eq "$(grep -c 'vm-shutdown' "$FAKE_XE_DIR/calls.log" || true)" "0" "nothing restarted"

finish
