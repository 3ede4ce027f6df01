#!/bin/bash
# SPDX-License-Identifier: MIT
# A removed VM's slot is not given to another VM while anything of the old
# one is held (issue 9): its request still running finishes first, and the
# VM that takes the slot then starts with its own statistics only.
. "$(dirname "$0")/lib.sh"

vm 1 A low; vm 2 B low
# Two slots: when VM 1 leaves, its slot is the only one for VM 3.
start_mediator --set max_vms=2 --set registry_poll_ms=100 --set cpu_threads=1 --set max_inflight=1
# One sgemm: a second or more on one core, long enough for the registry
# change below to be seen while it runs. 1536 cubed takes about a second in
# the plain and ASan builds but 35 s or more under TSan, which instruments
# every load of the product: `make test-tsan` sets a smaller size.
python3 "$RAW" "$(sock 1)" pipeline-sgemm 1 "${VGPU_E2E_SGEMM_LONG:-1536}" >"$T/pipe.out" 2>&1 &
client=$!
running() { [ "$(stats | jq -r '.mediator.inflight')" -ge 1 ]; }
wait_for "VM 1's sgemm running" 20 running
admin remove-vm --vm-uuid "$(uuid 1)" >/dev/null
vm 3 A high
# The line is logged only while no slot is free: VM 1's is held by its work.
wait_for "VM 3 waits for the slot" 5 grep -q "VM $(uuid 3) not served yet" "$T/mediator.log"
wait_for "VM 3 served once VM 1's work is done" 60 test -S "$(sock 3)"
wait "$client" || true # VM 1's connection was closed at its removal
expect_eq "$(python3 "$RAW" "$(sock 3)" ok 100)" "0" "VM 3 served"
expect_eq "$(vm_stat 3 .submitted)/$(vm_stat 3 .completed)/$(vm_stat 3 .failed)" "1/1/0" \
	"VM 3's statistics are its own (1 request), none of VM 1's"
expect_eq "$(vm_stat 3 .bytes_out)" "400" "VM 3's bytes are its own"
e2e_finish
