#!/bin/bash
# SPDX-License-Identifier: MIT
# device-torch.sh - on the GPU machine: PyTorch (python3 there) through
# vgpu's libcuda.so.1 over a VM's socket to a CUDA mediator and its
# per-VM worker, against the same steps natively (bench/torch-steps.py).
# Binaries from .devbin (`bash bench/pack-guest.sh build-dev build`).
# VGPU_CUDA_LOG=1 on the shim's run: the driver calls it lacks are in
# $OUT/vgpu.err ("not implemented").
#
#   bash bench/device-torch.sh      (results in $OUT, a table last)
set -u
. "$(dirname "$0")/device-env.sh" torch
cuda_mediator 6f1c2a10-0000-4000-8000-0000000d0004 torch
failed=0
timeout 300 python3 "$(dirname "$0")/torch-steps.py" "$OUT/torch-native.json" \
	>"$OUT/native.out" 2>&1 || failed=1
LD_LIBRARY_PATH="$BIN/guest-cuda:$BIN" VGPU_CUDA_TRANSPORT="unix:$SOCK" \
	VGPU_CUDA_LOG=1 timeout 300 python3 "$(dirname "$0")/torch-steps.py" "$OUT/torch-vgpu.json" \
	>"$OUT/vgpu.out" 2>"$OUT/vgpu.err" || failed=1
kill -TERM $MPID
wait $MPID || failed=1
rm -rf "$W"
echo "--- not implemented (first 20):"
grep -i "not implemented\|not supported" "$OUT/vgpu.err" | sort | uniq -c | sort -rn | head -20
echo "| step | native | vgpu | same result (rel 1e-4) |"
echo "| --- | --- | --- | --- |"
python3 - "$OUT/torch-native.json" "$OUT/torch-vgpu.json" <<'PY' || failed=1
import json, sys
try:
    n = json.load(open(sys.argv[1]))
    v = json.load(open(sys.argv[2]))
except Exception as e:
    print("| no results |", e, "|"); sys.exit(1)
bad = 0
for name, a in n["steps"].items():
    b = v["steps"].get(name, {"ok": False, "error": "not run"})
    same = a.get("ok") and b.get("ok") and all(
        abs(x - y) <= 1e-4 * max(1.0, abs(x)) for x, y in zip(a["sums"], b["sums"]))
    bad += not same
    fmt = lambda r: "%.3f s" % r["s"] if r.get("ok") else "failed: " + r.get("error", "?")[:120]
    verdict = "yes" if same else "NO"
    if not same and a.get("ok") and b.get("ok"):
        verdict += " (native %s, vgpu %s)" % (a["sums"], b["sums"])
    print("| %s | %s | %s | %s |" % (name, fmt(a), fmt(b), verdict))
if "inference_step_ms" in n and "inference_step_ms" in v:
    print("| resnet18 step | %.2f ms | %.2f ms | ratio native/vgpu %.2f |" % (
        n["inference_step_ms"], v["inference_step_ms"], n["inference_step_ms"] / v["inference_step_ms"]))
sys.exit(1 if bad else 0)
PY
exit $failed
