#!/bin/bash
# SPDX-License-Identifier: MIT
# device-samples.sh - on the GPU machine: four of NVIDIA's cuda-samples
# (third_party/cuda-samples: vectorAdd, matrixMul, simpleStreams,
# reduction) and cublas-sgemm (bench/cublas-sgemm.cu), each run natively,
# then through vgpu's libcuda.so.1 over a VM's socket to a CUDA mediator
# and its per-VM worker, with their default arguments (about a second
# each natively). Binaries from .devbin/samples (bench/build-samples.sh,
# run by `bash bench/pack-guest.sh build-dev build`). VGPU_CUDA_LOG=1 on
# the vgpu runs: the driver calls the guest library lacks are in
# $OUT/PROGRAM-vgpu.err ("... is not implemented yet"). A run passes when
# it exits 0 within 120 s and prints its success line (bench/samples.txt).
#
#   bash bench/device-samples.sh      (results in $OUT, a table last;
#                                      exit 1 when a vgpu run failed)
set -u
. "$(dirname "$0")/device-env.sh" samples
# cublas-sgemm's libcublas.so.13, after the carried binaries.
CUDALIB=$(dirname "${VGPU_CUBLAS:-/usr/local/cuda/lib64/libcublas.so}")
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0005 samples
failed=0

# run PATH PROGRAM OK: PROGRAM once, natively or through vgpu (PATH), its
# output in $OUT/PROGRAM-PATH.out and .err; "pass" or why not in $res,
# the seconds it took in $secs. OK: the success line, an extended regexp.
run() {
	local lib=$BIN:$CUDALIB vg=() rc=0 t0=$EPOCHREALTIME
	[ "$1" = vgpu ] && lib=$BIN/guest-cuda:$lib vg=(VGPU_CUDA_TRANSPORT="unix:$SOCK" VGPU_CUDA_LOG=1)
	env LD_LIBRARY_PATH="$lib" "${vg[@]}" timeout 120 "$BIN/samples/$2" \
		>"$OUT/$2-$1.out" 2>"$OUT/$2-$1.err" || rc=$?
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }')
	if [ $rc -eq 124 ]; then
		res="timed out"
	elif [ $rc -ne 0 ]; then
		res="failed (exit $rc)"
	elif ! grep -q -E "$3" "$OUT/$2-$1.out"; then
		res="failed (no success line)"
	else
		res=pass
	fi
}

rows=()
while read -r prog ok; do
	run native "$prog" "$ok"
	nres=$res nsecs=$secs
	run vgpu "$prog" "$ok"
	[ "$res" = pass ] || failed=1
	nimp=$(grep "not implemented yet" "$OUT/$prog-vgpu.err" | sort -u | wc -l)
	rows+=("| $prog | $nres | $res | $nsecs | $secs | $nimp |")
done < <(grep -v "^#" "$(dirname "$0")/samples.txt")
kill -TERM "$MPID"
wait "$MPID" || failed=1
rm -rf "$W"
echo "--- not implemented (vgpu runs; how many programs logged each):"
for f in "$OUT"/*-vgpu.err; do grep "not implemented yet" "$f" | sort -u; done | sort | uniq -c | sort -rn
echo "| program | native | vgpu | native time | vgpu time | not implemented (count) |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
exit $failed
