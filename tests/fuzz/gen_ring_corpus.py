#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_ring (tests/fuzz/corpus/ring/).

Run once by hand; the files it writes are committed. Each seed is 4 bytes
choosing the window's data size, then 64 bytes read as a descriptor (and as
a completion, and as an attach message), laid out from docs/protocol.md
independently of protocol/ring.c.
usage: gen_ring_corpus.py [OUTDIR]
"""
import os
import struct
import sys

from gen_protocol_corpus import crc32c  # same directory

PAGE, ENTRIES = 4096, 1024
DATA = PAGE + ENTRIES * 64 + ENTRIES * 32
MAGIC, VERSION, ATTACH, ATTACHED = 0x55504756, 1, 3, 4


def desc(rid, op, n, ins, out, m=0, k=0, alpha=0.0, beta=0.0, flags=0, tail=bytes(12)):
    ins = (list(ins) + [0, 0, 0])[:3]
    return (struct.pack("<QHH", rid, op, flags) + struct.pack("<IIIIff", 0, m, n, k, alpha, beta)
            + struct.pack("<IIII", ins[0], ins[1], ins[2], out) + tail)


def small(mtype, block):
    h = struct.pack("<IHHQHHIII", MAGIC, VERSION, mtype, 0, 0, 0, 0, 24, 0)
    return h[:28] + struct.pack("<I", crc32c(block, crc32c(h))) + block


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "ring")
    os.makedirs(out, exist_ok=True)
    mib = struct.pack("<I", 1 << 20)
    seeds = {
        "vadd": mib + desc(1, 1, 1024, [DATA, DATA + 4096], DATA + 8192),
        "saxpy-in-place": mib + desc(2, 2, 256, [DATA, DATA + 1024], DATA + 1024, alpha=2.0),
        "sgemm": mib + desc(3, 3, 8, [DATA, DATA + 256, DATA + 512], DATA + 512, m=8, k=8,
                            alpha=1.0, beta=0.5),
        "reduce": mib + desc(4, 4, 100, [DATA], DATA + 4096),
        "overlap": mib + desc(5, 1, 1024, [DATA, DATA + 4096], DATA + 2048),
        "past-end": mib + desc(6, 1, 1024, [DATA, DATA + 4096], DATA + (1 << 20) - 4),
        "top-offset": struct.pack("<I", 0xFFFF0000) + desc(7, 1, 16, [0xFFFFFFC0, DATA], DATA + 64),
        "reserved": mib + desc(8, 1, 4, [DATA, DATA + 64], DATA + 128, tail=b"\x01" + bytes(11)),
        "cqe": mib + struct.pack("<QiIQQ", 9, -3, 0, 1000, 2000) + bytes(32),
        "attach": mib + small(ATTACH, struct.pack("<QQQ", 1 << 20, 0, 0)) + bytes(8),
        "attached": mib + small(ATTACHED, struct.pack("<iIQQ", 0, ENTRIES, DATA + (1 << 20), 0)) + bytes(8),
        "attached-error": mib + small(ATTACHED, struct.pack("<iIQQ", -13, 0, 0, 0)) + bytes(8),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
