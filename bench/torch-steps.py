# SPDX-License-Identifier: MIT
"""torch-steps.py - the PyTorch steps issue 12 asks for, each timed and
its result summed to a few numbers, so that the same run natively and
through vgpu's libcuda.so.1 can be compared (bench/device-torch.sh):
a matmul, a cuDNN convolution, training steps of a small model, and a
forward pass of a torchvision model when torchvision is there.

  [TORCH_STEPS=matmul,conv] python3 bench/torch-steps.py OUT.json

Each step is tried on its own: one that fails says so in the JSON
(with the exception) and the others still run. Seeds are fixed, and
the inputs are made on the CPU, so both runs see the same numbers."""
import json
import os
import sys
import time
import traceback

import torch

results = {"steps": {}}
# The steps to run (names, comma-separated; all when unset).
only = os.environ.get("TORCH_STEPS")


def step(name):
    def wrap(fn):
        if only and name not in only.split(","):
            return fn
        t0 = time.perf_counter()
        try:
            out = fn()
            torch.cuda.synchronize()
            results["steps"][name] = {"ok": True, "s": time.perf_counter() - t0, "sums": out}
        except Exception as e:  # noqa: BLE001 - the report is the point
            results["steps"][name] = {"ok": False, "error": repr(e)[:400],
                                      "trace": traceback.format_exc()[-1200:]}
        print(name, "ok" if results["steps"][name]["ok"] else "FAILED", flush=True)
        return fn
    return wrap


def sums(t):
    t = t.detach().float().cpu()
    return [float(t.sum()), float(t.abs().sum()), float(t.flatten()[0])]


results["available"] = torch.cuda.is_available()
results["device"] = torch.cuda.get_device_name(0) if results["available"] else None
dev = "cuda"


@step("tensor")
def _():
    x = torch.arange(1 << 20, dtype=torch.float32).to(dev)
    return sums(x * 2 + 1)


@step("matmul")
def _():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(1024, 1024, generator=g).to(dev)
    b = torch.randn(1024, 1024, generator=g).to(dev)
    return sums(a @ b)


@step("conv")
def _():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, 64, 64, generator=g).to(dev)
    w = torch.randn(16, 3, 3, 3, generator=g).to(dev)
    return sums(torch.nn.functional.conv2d(x, w, padding=1))


@step("train")
def _():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(256, 64, generator=g).to(dev)
    y = torch.randint(0, 10, (256,), generator=g).to(dev)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return [losses[0], losses[-1]]


@step("vision")
def _():
    import torchvision  # noqa: PLC0415 - optional
    torch.manual_seed(5)
    model = torchvision.models.resnet18(weights=None).to(dev).eval()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 3, 224, 224, generator=g).to(dev)
    with torch.no_grad():
        out = model(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            out = model(x)
        torch.cuda.synchronize()
    results["inference_step_ms"] = (time.perf_counter() - t0) / 20 * 1e3
    return sums(out)


with open(sys.argv[1], "w") as f:
    json.dump(results, f, indent=1)
