#!/bin/bash
# SPDX-License-Identifier: MIT
# device-nvml.sh - on the GPU machine: what a program asking NVML gets
# (tests/guest/nvml_check.c) from NVIDIA's libnvidia-ml.so.1, from
# vgpu's over NVIDIA's libcuda.so.1 (the same questions through the CUDA
# driver API: every answer but memory the same as NVIDIA's), and from
# vgpu's through vgpu's libcuda.so.1 to a CUDA mediator and the VM's
# worker (memory: the VM's quota, 4096 MiB here); then PyTorch counting devices through
# NVML (PYTORCH_NVML_BASED_CUDA_CHECK=1) through vgpu.
#
#   bash bench/device-nvml.sh      (results in $OUT)
set -u
. "$(dirname "$0")/device-env.sh" nvml
CHECK=$BIN/guest-cuda/nvml_check
NV=$(ldconfig -p | awk '/libnvidia-ml.so.1 / { print $NF; exit }')
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0007 nvml
"$BIN/vgpu-admin" --db "$W/db" set-sched --vm-uuid 6f1c2a10-0000-4000-8000-0000000d0007 \
	--mem-quota 4096 >/dev/null
echo "--- NVIDIA's NVML ($NV)"
LD_LIBRARY_PATH= "$CHECK" "$NV" | tee "$OUT/nvidia.txt"
echo "--- vgpu's NVML over NVIDIA's libcuda.so.1"
LD_LIBRARY_PATH= "$CHECK" "$BIN/guest-cuda/libnvidia-ml.so.1" | tee "$OUT/over-nvidia.txt"
echo "--- vgpu's NVML through vgpu's libcuda.so.1 (a VM)"
LD_LIBRARY_PATH="$BIN/guest-cuda:$BIN" VGPU_CUDA_TRANSPORT="unix:$SOCK" \
	"$CHECK" "$BIN/guest-cuda/libnvidia-ml.so.1" | tee "$OUT/vgpu.txt"
echo "--- the answers that differ, NVIDIA's NVML against vgpu's over NVIDIA's libcuda"
diff "$OUT/nvidia.txt" "$OUT/over-nvidia.txt"
echo "--- PyTorch, devices counted through NVML, through vgpu"
LD_LIBRARY_PATH="$BIN/guest-cuda:$BIN" VGPU_CUDA_TRANSPORT="unix:$SOCK" PYTORCH_NVML_BASED_CUDA_CHECK=1 \
	python3 -c "import torch; print('torch devices', torch.cuda.device_count(), torch.cuda.is_available())"
kill -TERM $MPID
wait $MPID
rm -rf "$W"
