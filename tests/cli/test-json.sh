#!/bin/bash
# SPDX-License-Identifier: MIT
# --json on every read command, parsed back with jq and compared with the
# registry and the fake host.
. "$(dirname "$0")/lib.sh"

admin register-vm --vm-uuid "$U1" --vm-name 'quote "q" \ back' --pool B --priority high --vm-id 3
admin register-vm --vm-uuid "$U2" --vm-name "ünï-cødé" --priority low
admin register-vm --vm-uuid "$U3"
fake_vm "$U1" 'quote "q" \ back' running
fake_vm "$U5" $'bad\x01label\xff' halted

admin list-pools --json
expect_rc 0 "list-pools --json"
expect_eq "$(echo "$OUT" | jq -r '[.pools[] | .pool_id + ":" + .pool_name + ":" + (.vm_count|tostring) + ":" + (.enabled|tostring)] | join(" ")')" \
	"A:Pool A:2:true B:Pool B:1:true" "list-pools JSON round trip"

admin show-pool --pool-id B --json
expect_rc 0 "show-pool --json"
expect_eq "$(echo "$OUT" | jq -r '.pool_id + " " + (.vms | length | tostring) + " " + .vms[0].vm_uuid')" \
	"B 1 $U1" "show-pool JSON has the pool and its VMs"

admin show-vm --vm-uuid "$U1" --json
expect_rc 0 "show-vm --json"
expect_eq "$(echo "$OUT" | jq -r '.vm_name')" 'quote "q" \ back' "quotes and backslashes survive JSON"
expect_eq "$(echo "$OUT" | jq -r '[.vm_id, .pool_id, .priority, .priority_name] | map(tostring) | join(",")')" \
	"3,B,2,high" "show-vm JSON fields"
admin show-vm --vm-uuid "$U2" --json
expect_eq "$(echo "$OUT" | jq -r '.vm_name')" "ünï-cødé" "UTF-8 names survive JSON"

admin list-vms --json --pool A
expect_rc 0 "list-vms --json"
expect_eq "$(echo "$OUT" | jq -r '[.vms[].vm_uuid] | join(" ")')" "$U2 $U3" "list-vms JSON, filtered and ordered by vm_id"
admin list-vms --json --priority high
expect_eq "$(echo "$OUT" | jq -r '.vms | length')" "1" "list-vms JSON with priority filter"

admin scan-vms --json
expect_rc 0 "scan-vms --json"
expect_eq "$(echo "$OUT" | jq -r '.groups.B[0].vm_uuid + " " + .groups.B[0].power_state + " " + .groups.B[0].matched_by')" \
	"$U1 running uuid" "scan-vms JSON: registered VM in its pool"
expect_eq "$(echo "$OUT" | jq -r '.groups.unregistered[0].vm_uuid + " " + (.groups.unregistered[0].registered|tostring)')" \
	"$U5 false" "scan-vms JSON: unregistered VM"
expect_eq "$(echo "$OUT" | jq -r '.groups.unregistered[0].name_label')" "bad?label?" "control bytes and bad UTF-8 from xe are replaced"
expect_eq "$(echo "$OUT" | jq -r '[.not_on_host[].vm_uuid] | join(" ")')" "$U2 $U3" "scan-vms JSON: registered VMs not on the host"

admin status --json
expect_rc 0 "status --json"
expect_eq "$(echo "$OUT" | jq -r '.xe_available')" "true" "status JSON: xe available"
expect_eq "$(echo "$OUT" | jq -r '.summary.vms, .summary.running, .summary.by_priority.high' | tr '\n' ' ')" \
	"3 1 1 " "status JSON summary"
expect_eq "$(echo "$OUT" | jq -r '.pools[1].vms[0].power_state')" "running" "status JSON power state"
expect_eq "$(echo "$OUT" | jq -r '.schema_version')" "3" "status JSON schema version"
PATH=/usr/bin:/bin admin status --json
expect_eq "$(echo "$OUT" | jq -r '.xe_available, .pools[0].vms[0].power_state' | tr '\n' ' ')" \
	"false unknown " "status JSON without xe"

# --json is refused where it means nothing.
admin register-vm --vm-uuid "$U4" --json
expect_rc 2 "--json on register-vm is a usage error"

finish
