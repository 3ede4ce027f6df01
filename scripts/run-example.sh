#!/bin/bash
# SPDX-License-Identifier: MIT
# `make run`: the main job on embedded defaults, all under ./var/.
#  1. a fresh registry with 8 VMs in both pools at every priority;
#  2. vgpu-mediator on ./var/run (cuda when a GPU is usable, else cpu);
#  3. 8 VM clients as separate processes at once, each checking every result,
#     three over their VM's socket, three over their VM's spool directory
#     and two over a shared-memory window asked for on their VM's socket;
#     and beside them 4 real guests (Debian's kernel in the QEMU that
#     `make qemu` builds; TCG, or KVM with VGPU_RUN_ACCEL=kvm), each
#     registered as a VM of its own, submitting through its vgpu-stub
#     device with the guest driver and vgpu-submit (dev:/dev/vgpu0);
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
# uuid name pool priority workload (guest/image/init.sh's run workloads)
guests='6f1c2a10-0000-4000-8000-00000000c001 guest-a5 A high 1
6f1c2a10-0000-4000-8000-00000000c002 guest-a6 A low 2
6f1c2a10-0000-4000-8000-00000000c003 guest-b5 B high 3
6f1c2a10-0000-4000-8000-00000000c004 guest-b6 B medium 4'
while read -r uuid name pool prio _; do
	"$admin" --db "$db" register-vm --vm-uuid "$uuid" --vm-name "$name" \
		--pool "$pool" --priority "$prio" >/dev/null
done <<<"$vms
$guests"
qemu=build-qemu/qemu-system-x86_64
kernel=$(scripts/vm-assets.sh)/vmlinuz
scripts/guest-image.sh "$build" "$var/initrd.gz"
# TCG unless asked for KVM: where we run, /dev/kvm exists but a nested KVM
# guest hangs at boot (measured), while TCG boots one in about 6 s.
accel=${VGPU_RUN_ACCEL:-tcg}

"$mediator" --db "$db" --run-dir "$run" --spool-dir "$var/spool" --backend auto \
	--log stderr --log-level notice 2>"$var/mediator.log" &
mpid=$!
trap 'kill -TERM $mpid 2>/dev/null; wait $mpid 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$run/control.sock" ] && break; sleep 0.1; done
[ -S "$run/control.sock" ] || { cat "$var/mediator.log"; exit 1; }
echo "mediator: $(grep -o 'backend [a-z]*' "$var/mediator.log" | head -n1), registry $db"

# The guests first (they take longest to start): each a VM of its own.
gpids=()
while read -r uuid name pool prio job; do
	level=$(case $prio in high) echo 2 ;; medium) echo 1 ;; *) echo 0 ;; esac)
	vm_id=$("$admin" --db "$db" show-vm --vm-uuid "$uuid" --json </dev/null | jq -r .vm_id)
	"$qemu" -L /usr/share/qemu -L /usr/share/seabios -M pc,memory-backend=ram -accel $accel \
		-m 160 -object memory-backend-memfd,id=ram,size=160M,share=on -smp 1 \
		-display none -no-reboot -nodefaults -serial stdio \
		-kernel "$kernel" -initrd "$var/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 vgpu_test=run vgpu_arg=$job" \
		-device "vgpu-stub,pool_id=$pool,priority=$level,vm_id=$vm_id,mediator=$run/vm-$uuid.sock" \
		</dev/null >"$var/clients/$name.console" 2>"$var/clients/$name.err" &
	gpids+=("$!:$name:$pool:$prio")
done <<<"$guests"

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
for entry in "${gpids[@]}"; do
	IFS=: read -r pid name pool prio <<<"$entry"
	wait "$pid" || true
	json=$(tr -d '\r' <"$var/clients/$name.console" | sed -n 's/^RUN-JSON //p')
	if [ -z "$json" ] || ! tr -d '\r' <"$var/clients/$name.console" | grep -q '^RUN-RC 0'; then
		failed=1
		printf '%-12s %-4s %-8s %-7s did not finish: see %s\n' "$name" "$pool" "$prio" device \
			"$var/clients/$name.console"
		continue
	fi
	jq -r --arg n "$name" --arg p "$pool" --arg r "$prio" \
		'"\($n) \($p) \($r) device \(.op) \(.requests) \(.failures) \(.latency_us.p50 // 0) \(.latency_us.p99 // 0)"' \
		<<<"$json" | xargs printf '%-12s %-4s %-8s %-7s %-11s %8s %9s %10.0f %10.0f\n'
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
echo "all 8 host clients and 4 guests ($accel) verified every result."
