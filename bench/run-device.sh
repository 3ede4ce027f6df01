#!/bin/bash
# SPDX-License-Identifier: MIT
# run-device.sh - the CUDA correctness suite and the benchmark on the GPU
# machine, in one command, from the repository root:
#
#   bash bench/run-device.sh
#
# It uses binaries built elsewhere and carried in ./.devbin (VGPU_DEVBIN
# overrides): vgpu-mediator, vgpu-admin, vgpu-submit, vgpu-bench, cuda-check,
# libvgpu-config.so.0 and libvgpu.so.0 (and any library the machine lacks,
# e.g. libjansson.so.4: the preflight step names what is missing).
#
# Steps, each bounded in time, each exit status recorded; a failed step
# never stops the ones after it:
#   preflight    the binaries are there and their libraries resolve; cuBLAS
#                is found (VGPU_CUBLAS is set for the mediator and the bench)
#   nvidia-smi   what the card is and how it is set (read only)
#   registry     a temporary registry with 2 VMs (vgpu-admin register-vm)
#   cuda-check   the CUDA backend against the CPU backend (run before the
#                mediator starts, so it has the GPU to itself)
#   mediator     vgpu-mediator --backend cuda in the background, until its
#                VM sockets appear
#   submit-*     vgpu-submit --verify --repeat 20 for each op over VM 2's
#                socket: the cuda backend end to end (spool-*, shm-*: the
#                same over its spool directory and a shared-memory window)
#   bench        vgpu-bench over VM 1's window, socket and spool directory,
#                --json $OUT/bench.json; the host's steal time meanwhile
#                (/proc/stat) is printed with the result
#   stats        vgpu-admin stats from the running mediator
#   stop         SIGTERM to the mediator; it must exit 0
# VGPU_MEDIATOR_CPUS and VGPU_BENCH_CPUS (taskset -c lists) pin the
# mediator and the bench, for placement experiments.
# Files in $OUT: summary.txt, steps.log, bench.json, bench.txt,
# cuda-check.log, submit.json, mediator.log, threads.log. The short tables
# are printed last. Exit status 0 only when every step succeeded.
#
# Never: change the card's settings, leave the mediator running, or report
# a step that did not run as passed.
set -u

BIN=${VGPU_DEVBIN:-./.devbin}
OUT=${OUT:-$PWD/.devout}
TOTAL_S=${VGPU_DEV_TOTAL_S:-560}       # the whole script stays under this
STOP_RESERVE_S=45                      # kept back for stopping the mediator
RUN=/tmp/vgpu-run
SPOOL=/tmp/vgpu-spool
VM1=6f1c2a10-0000-4000-8000-0000000b0001 # the bench's VM: pool A, high
VM2=6f1c2a10-0000-4000-8000-0000000b0002 # vgpu-submit's VM: pool B, medium

# Optional CPU placement, for experiments: taskset -c lists.
MEDIATOR_WRAP=() BENCH_WRAP=()
[ -n "${VGPU_MEDIATOR_CPUS:-}" ] && MEDIATOR_WRAP=(taskset -c "$VGPU_MEDIATOR_CPUS")
[ -n "${VGPU_BENCH_CPUS:-}" ] && BENCH_WRAP=(taskset -c "$VGPU_BENCH_CPUS")
mkdir -p "$OUT"
BIN=$(cd "$BIN" 2>/dev/null && pwd || echo "$BIN")
WORK=$(mktemp -d /tmp/vgpu-dev.XXXXXX)
DB=$WORK/registry.db
STEPS_LOG=$OUT/steps.log
: >"$STEPS_LOG"
: >"$OUT/submit.json"
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
T_START=$(ms)
elapsed_s() { echo $((($(ms) - T_START) / 1000)); }

# The time a step may take: its own limit, cut to what is left of TOTAL_S.
cap() {
	local left=$((TOTAL_S - STOP_RESERVE_S - $(elapsed_s)))
	[ "$left" -lt 5 ] && left=5
	[ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}

S_NAME=() S_RC=() S_MS=() S_NOTE=()
record() { # name rc ms note
	S_NAME+=("$1") S_RC+=("$2") S_MS+=("$3") S_NOTE+=("$4")
	printf '[%4ss] %-18s %-4s %7.1fs %s\n' "$(elapsed_s)" "$1" \
		"$([ "$2" -eq 0 ] && echo ok || echo "FAIL($2)")" "$(awk "BEGIN{print $3/1000}")" "$4"
}

# run_step NAME LIMIT_S OUTFILE COMMAND...: stdout and stderr appended to
# OUTFILE (headed in steps.log too); the tail is shown when it fails.
# COMMAND may be a function of this script (exported, run by a child bash).
run_step() {
	local name=$1 limit=$2 outfile=$3 t t0 rc note=""
	shift 3
	t=$(cap "$limit")
	echo "=== $name (limit ${t}s): $*" >>"$STEPS_LOG"
	t0=$(ms)
	if [ "$(type -t "$1")" = function ]; then
		timeout -k 5 "$t" bash -c '"$@"' run-step "$@" >"$WORK/step.out" 2>&1
	else
		timeout -k 5 "$t" "$@" >"$WORK/step.out" 2>&1
	fi
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then note="timed out after ${t}s"; fi
	cat "$WORK/step.out" >>"$outfile"
	[ "$outfile" != "$STEPS_LOG" ] && echo "(output in $(basename "$outfile"))" >>"$STEPS_LOG"
	echo "=== $name: exit $rc" >>"$STEPS_LOG"
	record "$name" $rc $(($(ms) - t0)) "$note"
	if [ $rc -ne 0 ]; then tail -n 15 "$WORK/step.out" | sed 's/^/    | /'; fi
	return $rc
}

MPID=
cleanup() {
	if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
		kill -KILL "$MPID" 2>/dev/null
		wait "$MPID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- preflight ----
preflight() {
	local f bad=0 d found=
	for f in vgpu-mediator vgpu-admin vgpu-submit vgpu-bench cuda-check libvgpu-config.so.0 \
		libvgpu.so.0; do
		if [ ! -e "$BIN/$f" ]; then echo "missing: $BIN/$f"; bad=1; fi
	done
	for f in vgpu-mediator vgpu-admin vgpu-submit vgpu-bench cuda-check; do
		[ -e "$BIN/$f" ] || continue
		if ldd "$BIN/$f" | grep 'not found'; then
			echo "^ $f: libraries not found (copy them into $BIN)"
			bad=1
		fi
	done
	# cuBLAS is dlopen()ed by the mediator and the bench: libcublas.so.13 from
	# the loader's path, else from $VGPU_CUBLAS; libcublasLt must resolve too.
	if [ -n "${VGPU_CUBLAS:-}" ] && [ -e "$VGPU_CUBLAS" ]; then
		found=$VGPU_CUBLAS
	elif ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '; then
		for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
			/usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu; do
			[ -e "$d/libcublas.so.13" ] && { found=$d/libcublas.so.13; break; }
		done
		[ -z "$found" ] && found=$(timeout 30 find /usr/local /opt /usr/lib -name 'libcublas.so.13' \
			2>/dev/null | head -n1)
	else
		echo "cuBLAS: $(ldconfig -p | grep 'libcublas\.so\.13 ' | head -n1)"
	fi
	if [ -n "$found" ]; then
		echo "cuBLAS: $found"
		echo "export VGPU_CUBLAS=$found" >"$WORK/cublas.env"
	elif ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '; then
		echo "cuBLAS: libcublas.so.13 not found: sgemm will fail"
		bad=1
	fi
	echo "host: $(uname -srm), $(grep -h '^PRETTY_NAME=' /etc/os-release 2>/dev/null | cut -d= -f2-), $(nproc) cores"
	echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
	return $bad
}
export BIN OUT WORK DB RUN SPOOL VM1 VM2
export -f preflight
run_step preflight 60 "$STEPS_LOG" preflight
if [ -e "$WORK/cublas.env" ]; then
	# shellcheck disable=SC1091
	. "$WORK/cublas.env"
	export VGPU_CUBLAS
	LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$VGPU_CUBLAS")"
	export LD_LIBRARY_PATH
fi

# ---- the card, read only ----
nvsmi() {
	nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,memory.total,memory.used,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.max.sm,pstate,compute_mode,mig.mode.current --format=csv &&
		nvidia-smi
}
export -f nvsmi
run_step nvidia-smi 20 "$STEPS_LOG" nvsmi

# ---- registry ----
registry() {
	"$BIN/vgpu-admin" --db "$DB" register-vm --vm-uuid "$VM1" --vm-name bench-a1 \
		--pool A --priority high &&
		"$BIN/vgpu-admin" --db "$DB" register-vm --vm-uuid "$VM2" --vm-name submit-b1 \
			--pool B --priority medium &&
		"$BIN/vgpu-admin" --db "$DB" list-vms
}
export -f registry
run_step registry 20 "$STEPS_LOG" registry

# ---- the CUDA backend against the CPU backend, GPU to itself ----
run_step cuda-check 150 "$OUT/cuda-check.log" "$BIN/cuda-check"

# ---- the mediator ----
start_mediator() {
	local t0 limit
	rm -rf "$RUN" "$SPOOL"
	mkdir -p "$SPOOL"
	limit=$(cap 45)
	t0=$(ms)
	"${MEDIATOR_WRAP[@]}" "$BIN/vgpu-mediator" --db "$DB" --backend cuda --run-dir "$RUN" --spool-dir "$SPOOL" \
		--log stderr --log-level info 2>"$WORK/mediator.log" &
	MPID=$!
	echo "=== mediator: pid $MPID" >>"$STEPS_LOG"
	while [ $(($(ms) - t0)) -lt $((limit * 1000)) ]; do
		if ! kill -0 "$MPID" 2>/dev/null; then
			wait "$MPID"
			local rc=$?
			record mediator $((rc ? rc : 1)) $(($(ms) - t0)) "exited during start"
			tail -n 15 "$WORK/mediator.log" | sed 's/^/    | /'
			MPID=
			return 1
		fi
		if [ -S "$RUN/vm-$VM1.sock" ] && [ -S "$RUN/vm-$VM2.sock" ]; then
			record mediator 0 $(($(ms) - t0)) "$(grep -o 'backend [a-z]*' "$WORK/mediator.log" | head -n1)"
			return 0
		fi
		sleep 0.1
	done
	record mediator 1 $(($(ms) - t0)) "no VM sockets after ${limit}s"
	tail -n 15 "$WORK/mediator.log" | sed 's/^/    | /'
	return 1
}
start_mediator

# ---- the cuda backend end to end, over VM 2's socket, spool and a window ----
U1=unix:$RUN/vm-$VM1.sock
# submit URI ARGS...: vgpu-submit on VM 2, every result verified.
submit() { local uri=$1; shift; "$BIN/vgpu-submit" --transport "$uri" "$@" --verify --timeout-ms 20000 --json; }
export -f submit
for t in "submit unix:$RUN/vm-$VM2.sock" "spool spool:$SPOOL/$VM2" "shm shm:$RUN/vm-$VM2.sock"; do
	name=${t%% *} uri=${t#* }
	run_step "$name-vector-add" 25 "$OUT/submit.json" submit "$uri" vector-add --n 4194304 --repeat 20
	run_step "$name-sgemm" 25 "$OUT/submit.json" submit "$uri" sgemm --m 512 --n 384 --k 257 --repeat 20
	[ "$name" = spool ] && continue # the spool is slow: two ops are enough there
	run_step "$name-saxpy" 25 "$OUT/submit.json" submit "$uri" saxpy --n 1048577 --repeat 20
	run_step "$name-reduce-sum" 25 "$OUT/submit.json" submit "$uri" reduce-sum --n 16777216 --repeat 20
	run_step "$name-depth8" 25 "$OUT/submit.json" submit "$uri" vector-add --n 65536 --repeat 200 --depth 8
done

# ---- the benchmark, over VM 1's window, socket and spool directory ----
BENCH_T=$(cap 240)
BENCH_DEADLINE=$((BENCH_T > 90 ? BENCH_T - 70 : 20)) # its watchdog fires 60 s after this
# The CPU time the host took from this VM during the bench (the steal
# column of /proc/stat, all CPUs): small-op latencies move with it.
cpu_ticks() { awk '/^cpu /{t=0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat; }
# The GPU's interrupts meanwhile (/proc/interrupts, all CPUs): a request
# path that waits on blocking-sync events costs one per request.
gpu_irqs() { awk '/nvidia/{for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i} END{print n + 0}' /proc/interrupts; }
# Where the mediator's and the bench's threads ran meanwhile: every 0.2 s,
# per thread, its CPU and /proc's schedstat (ns on a CPU, ns waiting on a
# run queue, time slices) and involuntary switches, into threads.log;
# thread_table sums it up per thread (the slow mode of the small-op figures,
# docs/performance.md, runs 6 to 22).
sample_threads() {
	local p t
	while :; do
		for p in $(pgrep -x vgpu-mediator) $(pgrep -x vgpu-bench); do
			for t in "/proc/$p"/task/*; do
				read -r run wait slices <"$t/schedstat" 2>/dev/null || continue
				echo "$(ms) ${t##*/} $(cat "$t/comm" 2>/dev/null) $(awk '{print $39}' "$t/stat" 2>/dev/null)" \
					"$run $wait $slices $(awk '/^nonvoluntary/{print $2}' "$t/status" 2>/dev/null)"
			done
		done
		sleep 0.2
	done
}
thread_table() { # per thread seen for over 10 ms of CPU: first and last sample
	awk '{ k = $2; if (!(k in f)) { f[k] = $0; c[k] = $4; m[k] = 0 } else if ($4 != c[k]) { m[k]++; c[k] = $4 } l[k] = $0 }
	END { for (k in l) { split(f[k], a); split(l[k], b)
			if ((b[5] - a[5]) / 1e6 < 10) continue
			printf "%-15s %8s %9.1f %9.2f %8d %7d\n", b[3], k, (b[5] - a[5]) / 1e6, (b[6] - a[6]) / 1e6, b[7] - a[7], m[k] } }' "$1" | sort -k3 -nr
}
thread_head() { printf '%-15s %8s %9s %9s %8s %7s\n' thread tid "cpu-ms" "rqwait-ms" slices moves; }
sample_threads >"$OUT/threads.log" 2>/dev/null &
SAMPLER=$!
read -r TOTAL0 STEAL0 <<<"$(cpu_ticks)"
IRQ0=$(gpu_irqs)
# shellcheck disable=SC2086 # VGPU_BENCH_ARGS are words
run_step bench "$BENCH_T" "$OUT/bench.txt" "${BENCH_WRAP[@]}" "$BIN/vgpu-bench" --transport "shm:$RUN/vm-$VM1.sock" \
	--transport "$U1" --transport "spool:$SPOOL/$VM1" \
	--json "$OUT/bench.json" --deadline-s "$BENCH_DEADLINE" ${VGPU_BENCH_ARGS:-}
read -r TOTAL1 STEAL1 <<<"$(cpu_ticks)"
IRQ1=$(gpu_irqs)
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
STEAL_NOTE="steal during the bench: $((STEAL1 - STEAL0)) of $((TOTAL1 - TOTAL0)) ticks ($(awk "BEGIN{printf \"%.2f\", 100 * ($STEAL1 - $STEAL0) / ($TOTAL1 - $TOTAL0 + 1)}")%); GPU interrupts: $((IRQ1 - IRQ0))"
echo "=== $STEAL_NOTE" >>"$STEPS_LOG"

run_step stats 15 "$STEPS_LOG" "$BIN/vgpu-admin" --db "$DB" stats --run-dir "$RUN"

# ---- stop: SIGTERM finishes the work in flight; exit 0 expected ----
stop_mediator() {
	local t0 rc
	t0=$(ms)
	if [ -z "$MPID" ]; then
		record stop 1 0 "no mediator to stop"
		return 1
	fi
	kill -TERM "$MPID" 2>/dev/null
	while kill -0 "$MPID" 2>/dev/null && [ $(($(ms) - t0)) -lt $(((STOP_RESERVE_S - 5) * 1000)) ]; do
		sleep 0.1
	done
	if kill -0 "$MPID" 2>/dev/null; then
		kill -KILL "$MPID" 2>/dev/null
		wait "$MPID" 2>/dev/null
		MPID=
		record stop 1 $(($(ms) - t0)) "still running $((STOP_RESERVE_S - 5))s after SIGTERM: killed"
		return 1
	fi
	wait "$MPID"
	rc=$?
	MPID=
	record stop $rc $(($(ms) - t0)) "mediator exit status $rc"
	return $rc
}
stop_mediator
[ -e "$WORK/mediator.log" ] && tail -c 8000000 "$WORK/mediator.log" >"$OUT/mediator.log"

# ---- tables, last ----
{
	if [ -s "$OUT/bench.txt" ]; then
		echo
		cat "$OUT/bench.txt"
	fi
	echo
	printf '%-18s %-10s %8s  %s\n' STEP STATUS SECONDS NOTE
	failed=0
	for i in "${!S_NAME[@]}"; do
		st=ok
		if [ "${S_RC[$i]}" -ne 0 ]; then st="FAIL(${S_RC[$i]})"; failed=$((failed + 1)); fi
		printf '%-18s %-10s %8.1f  %s\n' "${S_NAME[$i]}" "$st" \
			"$(awk "BEGIN{print ${S_MS[$i]}/1000}")" "${S_NOTE[$i]}"
	done
	echo
	echo "${STEAL_NOTE:-steal: not measured}"
	[ -s "$OUT/threads.log" ] && { thread_head; thread_table "$OUT/threads.log"; }
	echo "RESULT: $([ $failed -eq 0 ] && echo PASS || echo FAIL) ($failed of ${#S_NAME[@]} steps failed, $(elapsed_s) s; files in $OUT)"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
grep -q '^RESULT: PASS' "$OUT/summary.txt"
