#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A CUDA program that keeps its VM's worker busy: over the guest
library's wire on a VM's socket, OPEN, a PTX module with k(u64) (which does
nothing: the scripted host runs it at once), then launches of k back to
back without synchronizing, until a line on stdin; then one SYNC.

Usage: cuda_spin.py SOCKET [--sync]
With --sync, a SYNC after each launch (a program that waits for each
kernel). Prints "ready" once the module is loaded, then, at the end,
"spun STATUS LAUNCHES SLOWEST_MS SYNC_STATUS": the first failed launch's
status (0: none), the launches made and the slowest one's time.
"""
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_client as rc  # noqa: E402

OPEN, SYNC, LIB_LOAD, GET_KERNEL, LAUNCH = 2, 8, 9, 11, 12
PTX = (b".version 8.0\n.target sm_90\n.address_size 64\n"
       b".visible .entry k(.param .u64 p)\n{\n\tret;\n}\n\0")


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    if rc.cuda_call(s, OPEN) != 0:
        print("spun open-failed 0 0 -1", flush=True)
        return
    st, (lib, *_), _ = rc.cuda_call(s, LIB_LOAD, (), PTX, full=True)
    st, (kern, *_), _ = rc.cuda_call(s, GET_KERNEL, (lib,), b"k\0", full=True)
    dims = (kern, 1 | 1 << 32, 1 | 1 << 32, 1 | 1 << 32, 0)
    print("ready", flush=True)
    sync = "--sync" in sys.argv[2:]
    n, failed, slowest = 0, 0, 0.0
    while not select.select([sys.stdin], [], [], 0)[0]:
        t0 = time.monotonic()
        st = rc.cuda_call(s, LAUNCH, dims, bytes(8))
        if st == 0 and sync:
            st = rc.cuda_call(s, SYNC)
        slowest = max(slowest, time.monotonic() - t0)
        if st != 0:
            failed = st if st is not None else -1
            break
        n += 1
    sys.stdin.readline()
    print("spun", failed, n, "%.0f" % (slowest * 1e3), rc.cuda_call(s, SYNC), flush=True)


main()
