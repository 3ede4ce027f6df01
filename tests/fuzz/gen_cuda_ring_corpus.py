#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_cuda_ring (tests/fuzz/corpus/cuda_ring/).

Run once by hand; the files it writes are committed. Each seed: the
worker's head and the guest's tail (u64 each), then a ring of 4096 bytes
laid out as protocol/cuda_ring.h says, written here independently of the
C code: a launch with its parameters, a memset, a skip to the ring's
end, and broken ones (a length not a multiple of 16, a call that may not
come through the ring, an entry past the tail); and the launch and memset
with no checksum and the head's lowest bit set, which asks the harness to
sign them (fuzz_cuda_ring.c) so that mutations reach past the CRC.
usage: gen_cuda_ring_corpus.py [OUTDIR]
"""
import os
import struct
import sys

from gen_protocol_corpus import crc32c, header  # same directory

CUDA_MSG = 9
LAUNCH, MEMSET, MEM_ALLOC, GRAPH_LAUNCH, MEM_FREE_ASYNC = 12, 24, 3, 38, 41
RING = 4096


def entry(call, values, data=b"", req_id=1, length=None):
    """A ring entry: u64 length, 8 zero bytes, the call's header and
    48-byte block (its checksum over both), its data, padding to 16."""
    block = struct.pack("<6Q", *(list(values) + [0] * (6 - len(values))))
    h = bytearray(header(CUDA_MSG, req_id, call, 48 + len(data)))
    h[28:32] = struct.pack("<I", crc32c(bytes(h[:28]) + b"\0\0\0\0" + block))
    body = bytes(h) + block + data
    total = 16 + len(body)
    total += -total % 16
    return struct.pack("<QQ", length if length is not None else total, 0) + \
        body + b"\0" * (total - 16 - len(body))


def unsigned(e):
    """@e with its checksum zeroed."""
    return e[:16 + 28] + b"\0\0\0\0" + e[16 + 32:]


def seed(head, entries, tail=None, at=0):
    ring = bytearray(RING)
    pos = at
    for e in entries:
        ring[pos:pos + len(e)] = e
        pos += len(e)
    return struct.pack("<QQ", head, tail if tail is not None else head + pos - at) + bytes(ring)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "cuda_ring")
    os.makedirs(out, exist_ok=True)
    launch = entry(LAUNCH, [1, 1 | 1 << 32, 1 | 32 << 32, 1 | 1 << 32, 0], b"\1" * 24)
    memset = entry(MEMSET, [0x7f0000000000, 7, 256, 1, 0])
    seeds = {
        "cuda-ring-launch-memset": seed(0, [launch, memset]),
        # head near the end: a zero length skips to the end, the launch at 0
        "cuda-ring-skip": struct.pack("<QQ", RING - 64, RING + len(launch)) +
        bytes(launch + b"\0" * (RING - 64 - len(launch)) + b"\0" * 64),
        "cuda-ring-bad-length": seed(0, [entry(LAUNCH, [1, 1, 1, 1, 0], b"\1" * 24, length=100)]),
        "cuda-ring-not-ringable": seed(0, [entry(MEM_ALLOC, [4096])]),
        "cuda-ring-past-tail": seed(0, [launch], tail=32),
        "cuda-ring-graph-launch": seed(0, [entry(GRAPH_LAUNCH, [1, 3, 0, 0, 0]), launch]),
        "cuda-ring-free-async": seed(0, [entry(MEM_FREE_ASYNC, [0x7F0000000000, 3, 0, 0, 0]),
                                         launch]),
        "cuda-ring-unsigned": seed(1, [unsigned(launch), unsigned(memset)],
                                   tail=len(launch) + len(memset)),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


main()
