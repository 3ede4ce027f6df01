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
#   a. a VM limited to 200 GPU-ms/s, 3 s busy: at most its rate and the
#      100 ms burst (+100 ms), at least 70% of its rate, paced half the
#      time or more; another VM of its pool, unlimited, beside it: the
#      rest, about 0.8 of the time (at least 0.6), paced at most 30% of
#      it; every launch of both went through;
#   b. pool A's weight 300 against pool B's 100, a VM of each busy 4 s:
#      GPU time 3:1 (2.2 to 4.0), both ran, the time all charged (0.8 to
#      1 of the wall time between the readings, +50 ms);
#   c. pool B capped at 25%, its VM alone 3 s: at most 25% and the burst
#      (+100 ms), at least 60% of 25%.
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

cuda_ms() { stats | jq -r --arg u "$(uuid "$1")" ".vms[] | select(.vm_uuid == \$u) | .cuda.$2"; }

# spin SECONDS VM...: the VMs' programs at once, for SECONDS once all are
# ready; sets GPU[vm] and PACED[vm] (ms charged, paced meanwhile), OUT[vm]
# (the program's last line) and WALL (ms between the two readings).
declare -A GPU PACED OUT
spin() {
	local secs=$1 n pids=() t0
	shift
	declare -A g0 p0
	for n in "$@"; do
		mkfifo "$T/in$n"
		$SPIN "$(sock "$n")" <"$T/in$n" >"$T/out$n" 2>"$T/err$n" &
		pids+=($!)
		eval "exec {fd$n}>\"$T/in$n\""
	done
	for n in "$@"; do
		for _ in $(seq 100); do grep -q ready "$T/out$n" && break; sleep 0.1; done
	done
	t0=$EPOCHREALTIME
	for n in "$@"; do
		g0[$n]=$(cuda_ms "$n" gpu_ms); p0[$n]=$(cuda_ms "$n" paced_ms)
	done
	sleep "$secs"
	for n in "$@"; do
		GPU[$n]=$(awk -v a="${g0[$n]}" -v b="$(cuda_ms "$n" gpu_ms)" 'BEGIN { printf "%.0f", b - a }')
		PACED[$n]=$(awk -v a="${p0[$n]}" -v b="$(cuda_ms "$n" paced_ms)" 'BEGIN { printf "%.0f", b - a }')
	done
	WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	for n in "$@"; do
		eval "echo stop >&\$fd$n; exec {fd$n}>&-"
	done
	wait "${pids[@]}"
	for n in "$@"; do
		OUT[$n]=$(tail -n 1 "$T/out$n")
		rm -f "$T/in$n"
	done
}
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
spun_ok() { [[ "${OUT[$1]}" =~ ^spun\ 0\ [1-9][0-9]*\ [0-9]+\ 0$ ]]; }

# ---- a. a rate limit ----
spin 3 1 3
spun_ok 1 && spun_ok 3 && pass "both programs' launches all went through (${OUT[1]}; ${OUT[3]})" ||
	fail "VM 1: '${OUT[1]}' $(cat "$T/err1"); VM 3: '${OUT[3]}' $(cat "$T/err3")"
hi=$((WALL / 5 + 200)) lo=$((WALL * 14 / 100))
within "${GPU[1]}" "$lo" "$hi" &&
	pass "VM 1, limited to 200 GPU-ms/s, busy ${WALL} ms: ${GPU[1]} ms charged (rate and 100 ms burst, +100; $lo to $hi)" ||
	fail "VM 1 limited, busy ${WALL} ms: ${GPU[1]} ms charged ($lo to $hi)"
within "${PACED[1]}" "$((WALL / 2))" "$WALL" && pass "and paced ${PACED[1]} ms of them (half or more)" ||
	fail "VM 1 paced ${PACED[1]} ms of ${WALL}"
within "${GPU[3]}" "$((WALL * 6 / 10))" "$WALL" &&
	pass "VM 3 beside it in its pool, unlimited: ${GPU[3]} ms (the rest; 60% of ${WALL} ms or more)" ||
	fail "VM 3 beside the limited VM: ${GPU[3]} ms of ${WALL}"
within "${PACED[3]}" 0 "$((WALL * 3 / 10))" && pass "VM 3 hardly paced: ${PACED[3]} ms (at most 30%)" ||
	fail "VM 3 paced ${PACED[3]} ms of ${WALL}"

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
hi=$((WALL / 4 + 200)) lo=$((WALL * 15 / 100))
within "${GPU[2]}" "$lo" "$hi" &&
	pass "pool B capped at 25%, its VM alone ${WALL} ms: ${GPU[2]} ms (cap and 100 ms burst, +100; $lo to $hi)" ||
	fail "pool B capped, ${WALL} ms: ${GPU[2]} ms ($lo to $hi)"

admin_out=$("$VGPU_ADMIN_BIN" --db "$DB" stats --run-dir "$RUN")
grep -q "GPU_MS *PACED_MS" <<<"$admin_out" && pass "vgpu-admin stats shows each worker's GPU and paced time" ||
	fail "$admin_out"
e2e_finish
