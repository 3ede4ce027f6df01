#!/bin/bash
# SPDX-License-Identifier: MIT
# Back-pressure: with a small per-VM queue, a flood of pipelined requests gets
# some VGPU_BUSY answers at once instead of growing memory; every request is
# answered exactly once and the other VM is still served. The sgemms are
# 768 cubed, so that computing one takes about twice as long as sending
# the next (384 left too little margin: run beside another test on 2
# cores, every one of 40 was served before the next came).
. "$(dirname "$0")/lib.sh"

vm 1 A high; vm 2 B low
start_mediator --set cpu_threads=1 --set max_inflight=1 --set queue_per_vm=2
out=$(python3 "$RAW" "$(sock 1)" pipeline-sgemm 40 768)
echo "# statuses: $out"
# Each "status=count" pair on its own: a pattern such as *"0="* would also
# take "-10=3" for served. Only 0 (served) and -9 (VGPU_BUSY) may appear.
served=0 busy=0 other=""
for kv in $out; do
	if [[ $kv =~ ^0=([1-9][0-9]*)$ ]]; then
		served=${BASH_REMATCH[1]}
	elif [[ $kv =~ ^-9=([1-9][0-9]*)$ ]]; then
		busy=${BASH_REMATCH[1]}
	else
		other="$other $kv"
	fi
done
expect_eq "${other# }" "" "no status but 0 and -9 (VGPU_BUSY)"
[ "$busy" -ge 1 ] && pass "some requests answered busy ($busy)" || fail "no busy answer: $out"
[ "$served" -ge 1 ] && pass "some requests served ($served)" || fail "none served: $out"
expect_eq "$((served + busy))" "40" "all 40 answered exactly once"
expect_eq "$(python3 "$RAW" "$(sock 2)" ok 10)" "0" "other VM served"
doc=$(stats)
expect_eq "$(echo "$doc" | jq -r --arg u "$(uuid 1)" '.vms[] | select(.vm_uuid == $u) | .rejected')" "$busy" "busy answers counted as rejected"
e2e_finish
