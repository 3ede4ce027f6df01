#!/bin/bash
# SPDX-License-Identifier: MIT
# build-sweep.sh - build the wider set of NVIDIA's cuda-samples that
# bench/device-sweep.sh runs natively and through vgpu, to find what
# users' programs need that the guest libcuda.so.1 lacks. The samples
# come from a checkout of github.com/NVIDIA/cuda-samples (SAMPLES=DIR,
# its root); bench/sweep.txt names them. Each is built as its
# CMakeLists.txt says, read for three things: separable compilation
# (-rdc=true), the CUDA libraries it links (CUDA::cublas -> -lcublas ...,
# OpenMP) and a kernel it builds as a .fatbin beside the program (the
# driver API samples load it at run time). nvcc's defaults otherwise,
# -arch=sm_90 (H100, H200). A sample that fails to build is listed at the
# end and left out; the build goes on.
#
# SWEEP_LIST=FILE builds the samples FILE names instead (as
# bench/device-sweep.sh runs them).
#
#   SAMPLES=DIR bash bench/build-sweep.sh [OUTDIR]   (default .devbin/sweep)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
O=${1:-$ROOT/.devbin/sweep}
S=${SAMPLES:?SAMPLES=the root of a cuda-samples checkout}
NVCC=${NVCC:-nvcc}
mkdir -p "$O"
failed=()
build() {
	local dir=$S/Samples/$1 name=${1##*/} cm flags=(-arch=sm_90 -I"$S/Common" -w)
	cm=$dir/CMakeLists.txt
	grep -q "CUDA_SEPARABLE_COMPILATION ON" "$cm" && flags+=(-rdc=true)
	for lib in $(grep -o "CUDA::[a-z_]*" "$cm" | sort -u); do
		case $lib in
		CUDA::cudart) ;;
		CUDA::cuda_driver) flags+=(-lcuda) ;;
		*) flags+=("-l${lib#CUDA::}") ;;
		esac
	done
	grep -q "OpenMP::" "$cm" && flags+=(-Xcompiler=-fopenmp)
	mkdir -p "$O/$name"
	# The kernel a driver API sample loads: CUDA_KERNEL_SOURCE into the
	# .fatbin file named in its CMakeLists.txt.
	local fb src
	fb=$(grep -o '[A-Za-z_0-9]*\.fatbin' "$cm" | head -n 1)
	src=$(sed -n 's/.*set(CUDA_KERNEL_SOURCE "\${CMAKE_CURRENT_SOURCE_DIR}\/\([^"]*\)").*/\1/p' "$cm" | head -n 1)
	if [ -n "$fb" ] && [ -n "$src" ]; then
		"$NVCC" -arch=sm_90 -I"$S/Common" -w -fatbin -o "$O/$name/$fb" "$dir/$src" || return 1
	fi
	local srcs=()
	for f in "$dir"/*.cu "$dir"/*.cpp "$dir"/src/*.cu "$dir"/src/*.cpp; do
		[ -e "$f" ] || continue
		[ -n "$src" ] && [ "${f##*/}" = "$src" ] && continue
		srcs+=("$f")
	done
	"$NVCC" "${flags[@]}" -I"$dir" -I"$dir/inc" -o "$O/$name/$name" "${srcs[@]}"
}
while read -r sample _; do
	echo "build-sweep: $sample"
	build "$sample" >"$O/build-${sample##*/}.log" 2>&1 || failed+=("$sample")
done < <(grep -v "^#" "${SWEEP_LIST:-$ROOT/bench/sweep.txt}")
echo "build-sweep: ${#failed[@]} did not build: ${failed[*]}"
