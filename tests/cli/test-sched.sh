#!/bin/bash
# SPDX-License-Identifier: MIT
# The scheduler's settings through vgpu-admin on a real registry: pools C
# to Z made, changed, shown (text and JSON) and deleted; a VM's weight,
# rate limit and memory quota; VMs moved into a new pool. None of them
# touches the toolstack: the fake xe must see no call.
. "$(dirname "$0")/lib.sh"

for c in create-pool update-pool delete-pool set-sched; do
	admin "$c" --help
	expect_rc 0 "$c --help"
	expect_out "Usage: vgpu-admin $c" "$c --help shows its usage"
done

# --- pools ----------------------------------------------------------------
admin create-pool --pool c
expect_rc 0 "create-pool with defaults"
expect_out "Created pool C." "says which pool"
expect_out "Pool C: weight 100, cap 100%, GPUs all." "defaults: weight 100, no cap, all GPUs"
admin create-pool --pool Z --name "render farm" --description "nightly jobs" --weight 400 --cap 50 --gpus 2,0
expect_rc 0 "create-pool with every setting"
expect_out "Pool Z: weight 400, cap 50%, GPUs 0,2." "settings read back"
admin list-pools
expect_rc 0 "list-pools"
expect_out "WEIGHT CAP  GPUS" "list-pools has the scheduler's columns"
echo "$OUT" | grep -Eq '^Z +render farm +yes +0 +400 +50% +0,2 +nightly jobs$' &&
	pass "pool Z's row: enabled, no VMs, weight 400, cap 50%, GPUs 0,2" ||
	{ fail "pool Z's row"; echo "$OUT" | sed 's/^/#  /'; }
admin list-pools --json
expect_eq "$(echo "$OUT" | jq -c '.pools[] | select(.pool_id == "Z") | [.pool_name, .description, .weight, .cap_percent, .gpus]')" \
	'["render farm","nightly jobs",400,50,"0,2"]' "list-pools --json: pool Z's settings"
expect_eq "$(echo "$OUT" | jq -r '[.pools[].pool_id] | join(",")')" "A,B,C,Z" "pools in order"
admin update-pool --pool Z --weight 250 --gpus all --description ""
expect_rc 0 "update-pool: three fields"
expect_out "Pool Z: weight 250, cap 50%, GPUs all." "changed, the cap kept"
admin show-pool --pool-id z
expect_rc 0 "show-pool Z"
expect_out "Weight:      250" "show-pool: weight"
expect_out "Cap:         50%" "show-pool: cap"
expect_out "GPUs:        all" "show-pool: GPUs"
expect_out "Description: -" "show-pool: the description cleared"
admin update-pool --pool A --cap 100 --weight 300
expect_out "Pool A: weight 300, cap 100%, GPUs all." "pool A's settings change too"
admin show-pool --pool-id A
expect_out "Cap:         100% (none)" "a cap of 100% reads as none"

# --- VMs in a new pool, and their settings ---------------------------------
admin register-vm --vm-uuid "$U1" --pool C --priority high
expect_rc 0 "register a VM in pool C"
expect_out "in pool C" "registered in pool C"
admin show-vm --vm-uuid "$U1"
expect_out "Weight:    100 (within pool C)" "a new VM's weight: 100"
expect_out "GPU rate:  no limit" "no rate limit by default"
expect_out "Memory:    no quota" "no memory quota by default"
admin set-sched --vm-uuid "$U1" --weight 50 --rate-limit 250 --mem-quota 4096
expect_rc 0 "set-sched: all three"
expect_out "weight 50 in pool C, at most 250 GPU-ms per second, at most 4096 MiB of device memory." \
	"set-sched says what holds now"
expect_out "the VM keeps running" "set-sched needs no restart"
admin show-vm --vm-uuid "$U1" --json
expect_eq "$(echo "$OUT" | jq -c '[.weight, .rate_limit_ms, .mem_quota_mib, .pool_id]')" \
	'[50,250,4096,"C"]' "show-vm --json: the settings"
admin set-sched --vm-uuid "$U1" --rate-limit 0
expect_out "no rate limit" "0 lifts the rate limit"
admin show-vm --vm-uuid "$U1"
expect_out "Memory:    at most 4096 MiB of device memory" "the quota kept"
expect_out "Weight:    50 (within pool C)" "the weight kept"

# --- delete --------------------------------------------------------------
admin delete-pool --pool C
expect_rc 4 "delete-pool refuses a pool with VMs"
expect_err "pool C has 1 VM: move or remove it first" "and says why"
admin register-vm --vm-uuid "$U2" --pool B
admin set-pool --vm-uuid "$U2" --pool Z --yes --no-restart
expect_rc 0 "set-pool moves a VM into pool Z"
admin remove-vm --vm-uuid "$U1"
admin delete-pool --pool C
expect_rc 0 "delete-pool once it is empty"
expect_out "Deleted pool C." "says so"
admin list-pools --json
expect_eq "$(echo "$OUT" | jq -r '[.pools[].pool_id] | join(",")')" "A,B,Z" "pool C is gone"
admin register-vm --vm-uuid "$U1" --pool C
expect_rc 3 "registering into a deleted pool"
expect_eq "$(calls)" "" "no toolstack call for any of it"

# --- scan-vms groups a host VM in pool Z under it ---------------------------
fake_vm "$U2" "two" running
admin scan-vms
expect_rc 0 "scan-vms"
expect_out "Pool Z" "scan-vms lists pool Z, which has a host VM"
admin scan-vms --json
expect_eq "$(echo "$OUT" | jq -r '.groups | keys | join(",")')" "A,B,Z,unregistered" \
	"scan-vms --json: A and B always, Z for its VM"
expect_eq "$(echo "$OUT" | jq -r '.groups.Z[0].vm_uuid')" "$U2" "the VM is in group Z"
finish
