#!/bin/bash
# SPDX-License-Identifier: MIT
# The scheduler's shares, rate limits and caps for the VMs' own CUDA
# programs (mediator/pace.h, docs/scheduler.md "A CUDA worker's work"):
# programs that launch kernels back to back without synchronizing
# (cuda_spin.py) keep their VMs' workers busy, the mediator charges each
# worker its share of the time while busy and paces the launches of those
# over their limit or ahead of their share. Checked against the GPU time
# `vgpu-admin stats` shows per VM (what the mediator charged), each with
# its margin:
#   a. a VM limited to 200 GPU-ms/s, 3 s busy: at most its rate and its
#      burst (100 ms of its rate: 20 ms; +100 ms), at least 70% of its
#      rate, paced half the time or more, its launches held in the worker
#      (its slowest 5 ms or more, fewer than its rival's); another VM of
#      its pool, unlimited, beside it: the rest, about 0.8 of the time (at
#      least 0.6), paced at most 30% of it; every launch of both went
#      through; the same limit on a program that synchronizes after each
#      launch: held the same;
#   b. pool A's weight 300 against pool B's 100, a VM of each busy 4 s:
#      GPU time 3:1 (2.2 to 4.0), both ran, the time all charged (0.8 to
#      1 of the wall time between the readings, +50 ms);
#   c. pool B capped at 25%, its VM alone 3 s: at most 25% and the burst
#      (25 ms; +100 ms), at least 60% of 25%.
# Each over the wall time between two readings of `vgpu-admin stats`
# (the busy time, and the time the readings take).
# With the cpu backend the host's driver is vgpu's own over the scripted
# host (kernels run at once: the time charged is the time busy); on the
# GPU machine, NVIDIA's.
. "$(dirname "$0")/lib.sh"
SPIN="python3 $VGPU_TESTS/e2e/cuda_spin.py"

vm 1 A medium
vm 2 B medium
vm 3 A medium
admin set-sched --vm-uuid "$(uuid 1)" --rate-limit 200 >/dev/null
cuda_host
start_mediator --set "cuda_worker=$VGPU_CUDA_WORKER" --set cuda_worker_user= --set registry_poll_ms=100
MEDIATOR_WRAP=

# spin SECONDS VM[:sync]...: the VMs' programs at once (":sync": one that
# synchronizes after each launch), for SECONDS once all are ready; sets
# GPU[vm] and PACED[vm] (ms charged, paced meanwhile), OUT[vm] (the
# program's last line: its launches, its slowest) and WALL (ms between
# the two readings of vgpu-admin stats, each of every VM at once).
declare -A GPU PACED OUT
reading() { stats | jq -r '.vms[] | "\(.vm_uuid) \(.cuda.gpu_ms) \(.cuda.paced_ms)"'; }
spin() {
	local secs=$1 n arg pids=() t0 vms=() r0 r1
	shift
	for arg in "$@"; do
		n=${arg%%:*}
		vms+=("$n")
		mkfifo "$T/in$n"
		# shellcheck disable=SC2046 # the flag or nothing
		$SPIN "$(sock "$n")" $([ "$arg" != "${arg%:sync}" ] && echo --sync) <"$T/in$n" >"$T/out$n" 2>"$T/err$n" &
		pids+=($!)
		eval "exec {fd$n}>\"$T/in$n\""
	done
	for n in "${vms[@]}"; do
		for _ in $(seq 100); do grep -q ready "$T/out$n" && break; sleep 0.1; done
	done
	t0=$EPOCHREALTIME
	r0=$(reading)
	sleep "$secs"
	r1=$(reading)
	WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	for n in "${vms[@]}"; do
		eval "echo stop >&\$fd$n; exec {fd$n}>&-"
	done
	wait "${pids[@]}"
	for n in "${vms[@]}"; do
		read -r _ g0 p0 <<<"$(grep "^$(uuid "$n") " <<<"$r0")"
		read -r _ g1 p1 <<<"$(grep "^$(uuid "$n") " <<<"$r1")"
		GPU[$n]=$(awk -v a="$g0" -v b="$g1" 'BEGIN { printf "%.0f", b - a }')
		PACED[$n]=$(awk -v a="$p0" -v b="$p1" 'BEGIN { printf "%.0f", b - a }')
		OUT[$n]=$(tail -n 1 "$T/out$n")
		rm -f "$T/in$n"
	done
}
launches() { read -r _ _ n _ <<<"${OUT[$1]}"; echo "$n"; }
slowest() { read -r _ _ _ ms _ <<<"${OUT[$1]}"; echo "$ms"; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
spun_ok() { [[ "${OUT[$1]}" =~ ^spun\ 0\ [1-9][0-9]*\ [0-9]+\ 0$ ]]; }

# ---- a. a rate limit ----
spin 3 1 3
spun_ok 1 && spun_ok 3 && pass "both programs' launches all went through (${OUT[1]}; ${OUT[3]})" ||
	fail "VM 1: '${OUT[1]}' $(cat "$T/err1"); VM 3: '${OUT[3]}' $(cat "$T/err3")"
hi=$((WALL / 5 + 120)) lo=$((WALL * 14 / 100))
within "${GPU[1]}" "$lo" "$hi" &&
	pass "VM 1, limited to 200 GPU-ms/s, busy ${WALL} ms: ${GPU[1]} ms charged (rate and 20 ms burst, +100; $lo to $hi)" ||
	fail "VM 1 limited, busy ${WALL} ms: ${GPU[1]} ms charged ($lo to $hi)"
within "${PACED[1]}" "$((WALL / 2))" "$WALL" && pass "and paced ${PACED[1]} ms of them (half or more)" ||
	fail "VM 1 paced ${PACED[1]} ms of ${WALL}"
[ "$(slowest 1)" -ge 5 ] && [ "$(launches 3)" -gt "$(launches 1)" ] &&
	pass "its worker held its launches: the slowest took $(slowest 1) ms (5 or more), $(launches 1) launches to VM 3's $(launches 3)" ||
	fail "VM 1's launches not held: ${OUT[1]} against VM 3's ${OUT[3]}"
within "${GPU[3]}" "$((WALL * 6 / 10))" "$WALL" &&
	pass "VM 3 beside it in its pool, unlimited: ${GPU[3]} ms (the rest; 60% of ${WALL} ms or more)" ||
	fail "VM 3 beside the limited VM: ${GPU[3]} ms of ${WALL}"
within "${PACED[3]}" 0 "$((WALL * 3 / 10))" && pass "VM 3 hardly paced: ${PACED[3]} ms (at most 30%)" ||
	fail "VM 3 paced ${PACED[3]} ms of ${WALL}"
# A program that waits for each kernel: held the same.
spin 3 1:sync
spun_ok 1 && pass "a program synchronizing after each launch: all went through (${OUT[1]})" ||
	fail "VM 1, synchronizing: '${OUT[1]}' $(cat "$T/err1")"
hi=$((WALL / 5 + 120))
within "${GPU[1]}" 1 "$hi" && [ "$(slowest 1)" -ge 5 ] &&
	pass "and held to its limit: ${GPU[1]} ms charged in ${WALL} (at most $hi), the slowest launch $(slowest 1) ms" ||
	fail "VM 1 synchronizing: ${GPU[1]} ms charged in ${WALL} (at most $hi); ${OUT[1]}"

# ---- b. pool weights ----
admin set-sched --vm-uuid "$(uuid 1)" --rate-limit 0 >/dev/null
admin update-pool --pool A --weight 300 >/dev/null
sleep 0.5 # the registry read (100 ms)
spin 4 1 2
spun_ok 1 && spun_ok 2 && pass "both programs' launches all went through" ||
	fail "VM 1: '${OUT[1]}'; VM 2: '${OUT[2]}'"
ratio=$(awk -v a="${GPU[1]}" -v b="${GPU[2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 99) }')
within "$ratio" 2.2 4.0 &&
	pass "pool A (weight 300) against pool B (100), busy 4 s: ${GPU[1]} / ${GPU[2]} ms, ${ratio}:1 (2.2 to 4.0)" ||
	fail "pool weights 3:1: ${GPU[1]} / ${GPU[2]} ms (${ratio}:1)"
within "$((GPU[1] + GPU[2]))" "$((WALL * 8 / 10))" "$((WALL + 50))" &&
	pass "all the time charged: $((GPU[1] + GPU[2])) ms of $WALL between the readings (80% or more, not more than it)" ||
	fail "time charged between them: $((GPU[1] + GPU[2])) ms of $WALL"
[ "${GPU[2]}" -ge 400 ] && pass "the lighter pool still ran: ${GPU[2]} ms (400 or more)" ||
	fail "pool B: ${GPU[2]} ms"

# ---- c. a pool's cap ----
admin update-pool --pool B --cap 25 >/dev/null
sleep 0.5
spin 3 2
spun_ok 2 && pass "its program's launches all went through" || fail "VM 2: '${OUT[2]}'"
hi=$((WALL / 4 + 125)) lo=$((WALL * 15 / 100))
within "${GPU[2]}" "$lo" "$hi" &&
	pass "pool B capped at 25%, its VM alone ${WALL} ms: ${GPU[2]} ms (cap and 25 ms burst, +100; $lo to $hi)" ||
	fail "pool B capped, ${WALL} ms: ${GPU[2]} ms ($lo to $hi)"

admin_out=$("$VGPU_ADMIN_BIN" --db "$DB" stats --run-dir "$RUN")
grep -q "GPU_MS *PACED_MS" <<<"$admin_out" && pass "vgpu-admin stats shows each worker's GPU and paced time" ||
	fail "$admin_out"
e2e_finish
