#!/bin/bash
# Back-pressure: with a small per-VM queue, a flood of pipelined requests gets
# some VGPU_BUSY answers at once instead of growing memory; every request is
# answered exactly once and the other VM is still served.
. "$(dirname "$0")/lib.sh"

vm 1 A high; vm 2 B low
start_mediator --set cpu_threads=1 --set max_inflight=1 --set queue_per_vm=2
out=$(python3 "$RAW" "$(sock 1)" pipeline-sgemm 40 384)
echo "# statuses: $out"
case "$out" in *"-9="*) pass "some requests answered busy" ;; *) fail "no busy answer: $out" ;; esac
case "$out" in *"0="*) pass "some requests served" ;; *) fail "none served: $out" ;; esac
total=$(echo "$out" | tr ' ' '\n' | awk -F= '{ s += $2 } END { print s }')
expect_eq "$total" "40" "all 40 answered exactly once"
expect_eq "$(python3 "$RAW" "$(sock 2)" ok 10)" "0" "other VM served"
doc=$(stats)
busy=$(echo "$out" | tr ' ' '\n' | awk -F= '$1 == "-9" { print $2 }')
expect_eq "$(echo "$doc" | jq -r --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | .rejected')" "$busy" "busy answers counted as rejected"
e2e_finish
