# SPDX-License-Identifier: MIT
"""torch-infer.py - one program's share of bench/device-multi.sh: a
torchvision resnet18 (fixed seed, no weights downloaded) runs inference
on 8 fixed images for SECONDS, each pass timed; every pass's output must
equal the first's (relative 1e-4), and the first's sums are written for
comparison with the same program run natively.

  python3 bench/torch-infer.py OUT.json SECONDS [MARKER]

MARKER, when given, is created once the timed loop starts (so that a
script can kill this process mid-run). Exit status 0 when every pass
ran and agreed."""
import json
import sys
import time

import torch
import torchvision

out, seconds = sys.argv[1], float(sys.argv[2])
torch.manual_seed(5)
model = torchvision.models.resnet18(weights=None).to("cuda").eval()
g = torch.Generator().manual_seed(6)
x = torch.randn(8, 3, 224, 224, generator=g).to("cuda")
lat = []
agree = True
with torch.no_grad():
    ref = model(x)
    torch.cuda.synchronize()
    if len(sys.argv) > 3:
        open(sys.argv[3], "w").close()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        y = model(x)
        torch.cuda.synchronize()
        lat.append(time.perf_counter() - t0)
        agree = agree and bool(torch.allclose(y, ref, rtol=1e-4, atol=1e-5))
r = ref.float().cpu()
lat.sort()
res = {"sums": [float(r.sum()), float(r.abs().sum()), float(r.flatten()[0])],
       "passes": len(lat), "agree": agree,
       "p50_ms": lat[len(lat) // 2] * 1e3 if lat else None,
       "p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1e3 if lat else None}
with open(out, "w") as f:
    json.dump(res, f)
sys.exit(0 if agree and lat else 1)
