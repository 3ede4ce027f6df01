#!/bin/bash
# SPDX-License-Identifier: MIT
# `make run`: the main job on embedded defaults, all under ./var/.
#  1. a fresh registry with 8 VMs in both pools at every priority;
#  2. vgpu-mediator on ./var/run (cuda when a GPU is usable, else cpu);
#  3. 8 VM clients as separate processes at once, each checking every result,
#     three over their VM's socket, three over their VM's spool directory
#     and two over a shared-memory window asked for on their VM's socket;
#  4. the tables per VM and per priority level, then the mediator stops.
# usage: run-example.sh BUILD_DIR
set -eu
build=${1:-build}
admin="$build/admin/vgpu-admin"
mediator="$build/mediator/vgpu-mediator"
submit="$build/guest/vgpu-submit"
var=$PWD/var
db=$var/vgpu_config.db
run=$var/run

mkdir -p "$var"
rm -rf "$db" "$db-wal" "$db-shm" "$run" "$var/clients"
mkdir -p "$var/clients"

# uuid name pool priority op
vms='6f1c2a10-0000-4000-8000-00000000a001 render-a1 A high sgemm --m 256 --n 256 --k 256
6f1c2a10-0000-4000-8000-00000000a002 train-a2 A medium saxpy --n 1048576
6f1c2a10-0000-4000-8000-00000000a003 batch-a3 A low vector-add --n 4194304
6f1c2a10-0000-4000-8000-00000000a004 etl-a4 A low reduce-sum --n 4194304
6f1c2a10-0000-4000-8000-00000000b001 infer-b1 B high vector-add --n 65536
6f1c2a10-0000-4000-8000-00000000b002 notebook-b2 B medium sgemm --m 128 --n 128 --k 512
6f1c2a10-0000-4000-8000-00000000b003 backfill-b3 B low saxpy --n 4194304
6f1c2a10-0000-4000-8000-00000000b004 report-b4 B medium reduce-sum --n 1048576'
while read -r uuid name pool prio _; do
	"$admin" --db "$db" register-vm --vm-uuid "$uuid" --vm-name "$name" \
		--pool "$pool" --priority "$prio" >/dev/null
done <<<"$vms"

"$mediator" --db "$db" --run-dir "$run" --spool-dir "$var/spool" --backend auto \
	--log stderr --log-level notice 2>"$var/mediator.log" &
mpid=$!
trap 'kill -TERM $mpid 2>/dev/null; wait $mpid 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] || { cat "$var/mediator.log"; exit 1; }
echo "mediator: $(grep -o 'backend [a-z]*' "$var/mediator.log" | head -n1), registry $db"

pids=()
n=0
while read -r uuid name pool prio op args; do
	n=$((n + 1))
	case $((n % 3)) in
	1) uri="unix:$run/vm-$uuid.sock" tr=socket ;;
	2) uri="spool:$var/spool/$uuid" tr=spool ;;
	0) uri="shm:$run/vm-$uuid.sock" tr=shm ;;
	esac
	# shellcheck disable=SC2086 # the sizes are words
	"$submit" --transport "$uri" "$op" $args --verify --repeat 50 --json \
		>"$var/clients/$name.json" 2>"$var/clients/$name.err" &
	pids+=("$!:$name:$pool:$prio:$op:$tr")
done <<<"$vms"

failed=0
printf '\n%-12s %-4s %-8s %-7s %-11s %8s %9s %10s %10s\n' VM POOL PRIORITY VIA OP REQUESTS FAILURES P50_US P99_US
for entry in "${pids[@]}"; do
	IFS=: read -r pid name pool prio op tr <<<"$entry"
	wait "$pid" || failed=1
	jq -r --arg n "$name" --arg p "$pool" --arg r "$prio" --arg o "$op" --arg t "$tr" \
		'"\($n) \($p) \($r) \($t) \($o) \(.requests) \(.failures) \(.latency_us.p50 // 0) \(.latency_us.p99 // 0)"' \
		"$var/clients/$name.json" | xargs printf '%-12s %-4s %-8s %-7s %-11s %8s %9s %10.0f %10.0f\n'
done
echo
"$admin" --db "$db" stats --run-dir "$run"
kill -TERM $mpid
wait $mpid
trap - EXIT
if [ $failed -ne 0 ]; then
	echo "some client failed: see $var/clients/*.err" >&2
	exit 1
fi
echo
echo "all 8 clients verified every result."
