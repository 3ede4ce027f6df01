#!/bin/bash
# SPDX-License-Identifier: MIT
# A hostile guest: garbage, oversized and inconsistent messages and a request
# naming another VM's id. Each gets an error response or a closed connection,
# is counted as rejected, and other VMs go on unaffected.
. "$(dirname "$0")/lib.sh"

vm 1 A high; vm 2 B low
start_mediator
S1=$(sock 1); S2=$(sock 2)

expect_eq "$(python3 "$RAW" "$S1" garbage)" "closed" "garbage header: connection closed"
expect_eq "$(python3 "$RAW" "$S1" oversize)" "closed" "oversized payload_len: connection closed"
expect_eq "$(python3 "$RAW" "$S1" bad-checksum)" "-14" "bad checksum: VGPU_PROTOCOL"
expect_eq "$(python3 "$RAW" "$S1" bad-size)" "-14" "payload shorter than n says: VGPU_PROTOCOL"
expect_eq "$(python3 "$RAW" "$S1" vm-id 2)" "-10" "request naming VM 2's id on VM 1's socket: VGPU_DENIED"
expect_eq "$(python3 "$RAW" "$S1" vm-id 1)" "0" "request naming its own id: served"
expect_eq "$(python3 "$RAW" "$S2" ok 1000)" "0" "the other VM is served"
expect_eq "$(python3 "$RAW" "$S1" ok 5)" "0" "VM 1 still served after its bad messages"
kill -0 "$MPID" && pass "mediator still running" || fail "mediator died"

doc=$(stats)
expect_eq "$(echo "$doc" | jq -r --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | .rejected')" "5" "5 rejections counted for VM 1"
expect_eq "$(echo "$doc" | jq -r --arg u "$(uuid 2)" '.vms[] | select(.vm_uuid == $u) | .rejected')" "0" "none for VM 2"
grep -q "names vm_id 2, but the channel is vm_id 1" "$T/mediator.log" && pass "denial logged" || fail "denial not logged"

# Rate-limited logging: 50 bad messages give at most the burst of lines.
expect_eq "$(python3 "$RAW" "$S2" bad-checksum-many 50)" "-14=50" "50 bad requests, 50 error answers"
lines=$(grep -c "VM $(uuid 2): request .* refused" "$T/mediator.log" || true)
# All 50 fall in one 10 s window that VM 2 opens: exactly the burst is logged.
expect_eq "$lines" "10" "guest errors rate-limited (10 lines for 50 bad requests)"
e2e_finish
