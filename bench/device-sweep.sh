#!/bin/bash
# SPDX-License-Identifier: MIT
# device-sweep.sh - on the GPU machine: every cuda-sample of
# bench/sweep.txt (built by bench/build-sweep.sh into .devbin/sweep), run
# natively, then through vgpu's libcuda.so.1 over a VM's socket to a CUDA
# mediator and its per-VM worker, each in its own directory (the driver
# API samples load their .fatbin from there), with the arguments
# sweep.txt gives, $SWEEP_TIMEOUT s at most each (default 60). A vgpu run passes when it exits
# as the native run did and prints the native run's success line (a line
# with PASS or passed), if it printed one. VGPU_CUDA_LOG=1: the driver
# calls the guest library lacks are counted from $OUT/NAME-vgpu.err.
#
# SWEEP_LIST=FILE runs the samples FILE names instead; SWEEP_LOG=2 logs
# every call the vgpu runs make (VGPU_CUDA_LOG=2).
#
#   bash bench/device-sweep.sh      (results in $OUT, a table last;
#                                   .devbin/sweep, or sweep.tar.xz there)
set -u
. "$(dirname "$0")/device-env.sh" sweep
# The samples travel packed (bench/build-sweep.sh's output is large).
[ -d "$BIN/sweep" ] || tar -C "$BIN" -xJf "$BIN/sweep.tar.xz" || exit 2
LIBS=$BIN
for d in /usr/local/cuda/lib64 /usr/local/lib/python3*/dist-packages/nvidia/*/lib; do
	[ -d "$d" ] && LIBS=$LIBS:$d
done
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0006 sweep

# run PATH NAME ARGS...: the sample NAME natively or through vgpu.
run() {
	local path=$1 name=$2 lib=$LIBS vg=() rc=0 t0=$EPOCHREALTIME
	shift 2
	[ "$path" = vgpu ] && lib=$BIN/guest-cuda:$LIBS vg=(VGPU_CUDA_TRANSPORT="unix:$SOCK" VGPU_CUDA_LOG="${SWEEP_LOG:-1}")
	(cd "$BIN/sweep/$name" && env LD_LIBRARY_PATH="$lib" "${vg[@]}" timeout "${SWEEP_TIMEOUT:-60}" "./$name" "$@" \
		</dev/null >"$OUT/$name-$path.out" 2>"$OUT/$name-$path.err") || rc=$?
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	code=$rc
}

# lacking FILE: the entry points a vgpu run logged as not implemented.
lacking() {
	grep -oE "cu[A-Za-z0-9_]+( \([^)]*\))? is not implemented yet" "$1" | awk '{ print $1 }' | sort -u
}

rows=() npass=0 nfail=0 nskip=0
while read -r sample args; do
	name=${sample##*/}
	if [ ! -x "$BIN/sweep/$name/$name" ]; then
		rows+=("| $name | not built | | | | |")
		continue
	fi
	# shellcheck disable=SC2086
	run native "$name" $args
	ncode=$code nsecs=$secs
	ok=$(grep -m1 -E "PASS|[Pp]assed" "$OUT/$name-native.out")
	# shellcheck disable=SC2086
	run vgpu "$name" $args
	if [ "$ncode" -ne 0 ]; then
		res="native failed" nskip=$((nskip + 1))
	elif [ "$code" -eq "$ncode" ] && { [ -z "$ok" ] || grep -qF -- "$ok" "$OUT/$name-vgpu.out"; }; then
		res=pass npass=$((npass + 1))
	else
		res="**failed**" nfail=$((nfail + 1))
	fi
	missing=$(lacking "$OUT/$name-vgpu.err" | paste -sd, -)
	rows+=("| $name | $ncode | $code | $res | $nsecs / $secs s | ${missing:-} |")
	echo "sweep: ${rows[-1]}" >&2
done < <(grep -v "^#" "${SWEEP_LIST:-$(dirname "$0")/sweep.txt}")
kill -TERM "$MPID"
wait "$MPID"
rm -rf "$W"
echo "--- not implemented (vgpu runs; how many samples logged each):"
for f in "$OUT"/*-vgpu.err; do lacking "$f"; done |
	sort | uniq -c | sort -rn
echo "| sample | native exit | vgpu exit | vgpu | time native / vgpu | not implemented |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo "sweep: $npass passed, $nfail failed, $nskip failed natively too"
