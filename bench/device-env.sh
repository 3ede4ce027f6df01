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

# cuda_mediator UUID NAME: VM UUID (pool A, high priority) in a registry
# under $W, and a CUDA mediator serving it with the carried per-VM
# worker: its pid in $MPID, its log $OUT/mediator.log, the VM's socket
# in $SOCK once it is there.
cuda_mediator() {
	"$BIN/vgpu-admin" --db "$W/db" register-vm --vm-uuid "$1" --vm-name "$2" --pool A \
		--priority high >/dev/null
	chmod 755 "$W"
	"$BIN/vgpu-mediator" --db "$W/db" --run-dir "$W/run" --spool-dir "$W/spool" --backend cuda \
		--set "cuda_worker=$BIN/vgpu-cuda-worker" --log stderr --log-level info \
		2>"$OUT/mediator.log" &
	MPID=$!
	SOCK=$W/run/vm-$1.sock
	for _ in $(seq 300); do [ -S "$SOCK" ] && break; sleep 0.1; done
}
