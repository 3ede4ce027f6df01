#!/bin/bash
# SPDX-License-Identifier: MIT
# build-samples.sh - build the programs bench/device-samples.sh runs on the
# GPU machine: four of NVIDIA's cuda-samples, unmodified
# (third_party/cuda-samples: vectorAdd, matrixMul, simpleStreams,
# reduction), and bench/cublas-sgemm.cu. nvcc's defaults, as users'
# programs are built (static cudart, host code unoptimized); -arch=sm_90
# puts sm_90 code and compute_90 PTX in each (H100, H200). cublas-sgemm
# links libcublas.so.13 dynamically and is built warning-free (-Werror).
#
#   bash bench/build-samples.sh [OUTDIR]      (default .devbin/samples; NVCC=nvcc)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
O=${1:-$ROOT/.devbin/samples}
NVCC=${NVCC:-nvcc}
S=$ROOT/third_party/cuda-samples
mkdir -p "$O"
cc() { "$NVCC" -arch=sm_90 -I"$S/Common" "$@"; }
cc -o "$O/vectorAdd" "$S/Samples/0_Introduction/vectorAdd/vectorAdd.cu"
cc -o "$O/matrixMul" "$S/Samples/0_Introduction/matrixMul/matrixMul.cu"
cc -o "$O/simpleStreams" "$S/Samples/0_Introduction/simpleStreams/simpleStreams.cu"
R=$S/Samples/2_Concepts_and_Techniques/reduction
cc -o "$O/reduction" "$R/reduction.cpp" "$R/reduction_kernel.cu"
cc -Xcompiler=-Wall,-Wextra -Werror all-warnings -o "$O/cublas-sgemm" \
	"$ROOT/bench/cublas-sgemm.cu" -lcublas
