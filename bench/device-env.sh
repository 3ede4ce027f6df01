# SPDX-License-Identifier: MIT
# device-env.sh NAME - sourced by the scripts that run on the GPU machine:
# the carried binaries ($VGPU_DEVBIN, default ./.devbin) on the library
# path as $BIN, $OUT made (default ./.devout), cuBLAS found for the CUDA
# backend, and a scratch directory $W (/tmp/vgpu-NAME.XXXXXX).
BIN=$(cd "${VGPU_DEVBIN:-./.devbin}" && pwd) || exit 2
OUT=${OUT:-$PWD/.devout}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$BIN
VGPU_CUBLAS=${VGPU_CUBLAS:-$(ls /usr/local/cuda/lib64/libcublas.so* 2>/dev/null | head -n 1)}
export VGPU_CUBLAS
W=$(mktemp -d "/tmp/vgpu-$1.XXXXXX")
