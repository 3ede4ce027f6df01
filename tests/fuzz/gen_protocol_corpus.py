#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_protocol (tests/fuzz/corpus/protocol/).

Run once by hand; the files it writes are committed. The encoding here is
written from docs/protocol.md independently of protocol/protocol.c, so the
valid seeds double as a cross-check of the C encoder.
usage: gen_protocol_corpus.py [OUTDIR]
"""
import os
import struct
import sys

MAGIC, VERSION, REQUEST, RESPONSE = 0x55504756, 1, 1, 2
VECTOR_ADD, SAXPY, SGEMM, REDUCE_SUM = 1, 2, 3, 4


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def header(mtype, req_id, op, payload_len, checksum=0, version=VERSION, magic=MAGIC,
           reserved=0, flags=0):
    return struct.pack("<IHHQHHIII", magic, version, mtype, req_id, op, reserved, flags,
                       payload_len, checksum)


def sign(msg):
    """Set the checksum: CRC32C of the header (checksum zeroed) and the fixed block."""
    msg = bytearray(msg)
    msg[28:32] = b"\0\0\0\0"
    msg[28:32] = struct.pack("<I", crc32c(bytes(msg[:56])))
    return bytes(msg)


def floats(count, start=0.0):
    return struct.pack("<%df" % count, *[start + 0.5 * i for i in range(count)])


def request(req_id, op, vm_id=0, m=0, n=0, k=0, alpha=0.0, beta=0.0, counts=(), extra=0,
            **hdr):
    params = struct.pack("<IIIIff", vm_id, m, n, k, alpha, beta)
    data = b"".join(floats(c, i) for i, c in enumerate(counts))
    payload = params + data
    plen = len(payload) + extra
    return sign(header(REQUEST, req_id, op, plen, **hdr) + payload + b"\0" * max(extra, 0))


def response(req_id, op, status, queue_ns, exec_ns, out_count=0, **hdr):
    block = struct.pack("<iIQQ", status, 0, queue_ns, exec_ns)
    data = floats(out_count) if status == 0 else b""
    return sign(header(RESPONSE, req_id, op, len(block) + len(data), **hdr) + block + data)


def sign_all(msg):
    """The device's messages: CRC32C of the header (checksum zeroed) and the whole payload."""
    msg = bytearray(msg)
    msg[28:32] = b"\0\0\0\0"
    msg[28:32] = struct.pack("<I", crc32c(bytes(msg)))
    return bytes(msg)


def device(version=0x00010003, memory=1, domid=0, regions=(), seq=1):
    table = b"".join(struct.pack("<QQQ", *r) for r in regions)
    block = struct.pack("<IIIIQ", version, memory, domid, len(regions), 0)
    return sign_all(header(5, seq, 0, 24 + len(table)) + block + table)


def window(action=1, extents=(), seq=1, total=None):
    table = b"".join(struct.pack("<QQ", *e) for e in extents)
    total = sum(e[1] for e in extents) if total is None else total
    block = struct.pack("<IIQQ", action, len(extents), total, 0)
    return sign_all(header(6, seq, 0, 24 + len(table)) + block + table)


def identity(pool=ord("B"), priority=2, seq=1, reserved=(0, 0)):
    """The mediator's IDENTITY (type 8): u32 pool letter, u32 priority, u64 0, u64 0."""
    block = struct.pack("<IIQQ", pool, priority, *reserved)
    return sign_all(header(8, seq, 0, 24) + block)


def cuda_device(i=0, n_attrs=147, name=b"GPU"):
    """One device of a CUDA description (protocol/cuda_desc.h)."""
    return (name.ljust(256, b"\0") + bytes([i] * 16) + struct.pack("<Q", 80 << 30)
            + (b"0000:%02x:00.0" % i).ljust(16, b"\0") + struct.pack("<I", n_attrs)
            + struct.pack("<%di" % n_attrs, *range(n_attrs)))


def described(devices, status=0, seq=1, cut=0):
    """The mediator's reply to DESCRIBE (type 10, call 1): i32 status, then
    the description: u32 format, u32 driver version, u32 count, devices."""
    desc = b"" if status else struct.pack("<III", 1, 13000, len(devices)) + b"".join(devices)
    payload = struct.pack("<i", status) + desc
    if cut:
        payload = payload[:-cut]
    return sign_all(header(10, seq, 1, len(payload)) + payload)


def cuda_call(call, args=(), data=b"", reply=False, status=0, seq=1):
    """A call after OPEN (type 9) or its reply (10): a 48-byte block (six
    u64 arguments, or i32 status, u32 0, five u64 results), then data;
    the checksum covers the header and the block."""
    if reply:
        block = struct.pack("<iI5Q", status, 0, *(list(args) + [0] * (5 - len(args))))
    else:
        block = struct.pack("<6Q", *(list(args) + [0] * (6 - len(args))))
    return sign(header(10 if reply else 9, seq, call, 48 + len(data)) + block + data)


def elf_image():
    """A minimal ELF64 image: header, one 16-byte section, its table."""
    shoff = 64 + 16
    eh = (b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 190, 1, 0, 0, shoff,
                                                            0, 64, 0, 0, 64, 2, 0))
    sh_null = bytes(64)
    sh_text = struct.pack("<IIQQQQIIQQ", 0, 1, 0, 0, 64, 16, 0, 0, 1, 0)
    return eh + bytes(16) + sh_null + sh_text


def elf_image_phdrs_last():
    """As cuBLAS Lt's cubins: the program header table after the section
    headers (one segment over the section), so the section headers do
    not end the image."""
    shoff = 64 + 16
    phoff = shoff + 2 * 64
    eh = (b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 190, 1, 0, phoff,
                                                            shoff, 0, 64, 56, 1, 64, 2, 0))
    sh_null = bytes(64)
    sh_text = struct.pack("<IIQQQQIIQQ", 0, 1, 0, 0, 64, 16, 0, 0, 1, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, 64, 0, 0, 16, 16, 8)
    return eh + bytes(16) + sh_null + sh_text + ph


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "protocol")
    os.makedirs(out, exist_ok=True)
    # Names starting with req- or resp- are valid messages (test_protocol checks).
    seeds = {
        # Valid requests of each op.
        "req-vector-add": request(1, VECTOR_ADD, n=4, counts=(4, 4)),
        "req-vector-add-1": request(2, VECTOR_ADD, vm_id=3, n=1, counts=(1, 1)),
        "req-saxpy": request(3, SAXPY, n=3, alpha=2.5, counts=(3, 3)),
        "req-sgemm": request(4, SGEMM, m=2, n=3, k=4, alpha=1.0, beta=0.5, counts=(8, 12, 6)),
        "req-sgemm-1": request(5, SGEMM, m=1, n=1, k=1, counts=(1, 1, 1)),
        "req-reduce-sum": request(6, REDUCE_SUM, n=7, counts=(7,)),
        # Valid responses.
        "resp-vector-add": response(1, VECTOR_ADD, 0, 1000, 2000, 4),
        "resp-sgemm": response(4, SGEMM, 0, 5, 6, 6),
        "resp-reduce-sum": response(6, REDUCE_SUM, 0, 0, 0, 1),
        "resp-busy": response(7, SAXPY, -9, 0, 0),
        "resp-denied": response(8, VECTOR_ADD, -10, 0, 0),
        # The ring's attach messages: type 3 and 4, op 0 (fuzz_ring parses them).
        "attach": sign(header(3, 0, 0, 24) + struct.pack("<QQQ", 1 << 20, 0, 0)),
        "attached": sign(header(4, 0, 0, 24) + struct.pack("<iIQQ", 0, 1024, 102400 + (1 << 20), 0)),
        # Broken ones.
        "bad-magic": request(1, VECTOR_ADD, n=1, counts=(1, 1), magic=0x55504757),
        "bad-version": request(1, VECTOR_ADD, n=1, counts=(1, 1), version=2),
        "bad-type": sign(header(3, 1, VECTOR_ADD, 24) + bytes(24)),
        "bad-op-0": request(1, 0, n=1, counts=(1, 1)),
        "bad-op-5": request(1, 5, n=1, counts=(1, 1)),
        "bad-reserved": request(1, VECTOR_ADD, n=1, counts=(1, 1), reserved=1),
        "bad-flags": request(1, VECTOR_ADD, n=1, counts=(1, 1), flags=1),
        "bad-checksum": request(1, VECTOR_ADD, n=1, counts=(1, 1))[:28] + b"\1\2\3\4"
        + request(1, VECTOR_ADD, n=1, counts=(1, 1))[32:],
        "float-short": request(1, VECTOR_ADD, n=4, counts=(4, 3)),
        "float-long": request(1, VECTOR_ADD, n=4, counts=(4, 4), extra=4),
        "unused-alpha": request(1, VECTOR_ADD, n=2, alpha=1.0, counts=(2, 2)),
        "zero-n": request(1, REDUCE_SUM, n=0),
        "sgemm-wrap": request(1, SGEMM, m=65536, n=65536, k=65536),
        "vector-wrap": request(1, VECTOR_ADD, n=1 << 30),
        "payload-huge": sign(header(REQUEST, 1, VECTOR_ADD, 0xFFFFFFFF) + bytes(24)),
        "payload-tiny": sign(header(REQUEST, 1, VECTOR_ADD, 8) + bytes(24)),
        "truncated": request(1, VECTOR_ADD, n=64, counts=(64, 64))[:100],
        "bad-resp-error-with-data": sign(header(RESPONSE, 1, VECTOR_ADD, 32)
                                     + struct.pack("<iIQQ", -9, 0, 0, 0) + bytes(8)),
        "bad-resp-positive-status": response(1, VECTOR_ADD, 3, 0, 0),
        "bad-resp-odd-length": sign(header(RESPONSE, 1, VECTOR_ADD, 27)
                                + struct.pack("<iIQQ", 0, 0, 0, 0) + bytes(3)),
        "header-only": header(REQUEST, 1, VECTOR_ADD, 0),
        # A head whose data has not arrived (the mediator admits the head
        # first): a valid vector_add of 1024 floats, its parameter block only.
        "head-without-data": request(1, VECTOR_ADD, n=1024, counts=(1024, 1024))[:56],
        "head-bad-checksum-without-data": request(1, VECTOR_ADD, n=1024, counts=(1024, 1024))[:28]
        + b"\1\2\3\4" + request(1, VECTOR_ADD, n=1024, counts=(1024, 1024))[32:56],
        "short": header(REQUEST, 1, VECTOR_ADD, 0)[:20],
        # The vgpu-stub device's messages (protocol/vgpu_device.h): types 5 to 8.
        "device-kvm": device(regions=((0, 3 << 30, 0), (4 << 30, 1 << 30, 3 << 30))),
        "device-xen": device(memory=2, domid=7),
        "device-overlap": device(regions=((0, 1 << 30, 0), (1 << 29, 1 << 30, 1 << 30))),
        # A device of the messages before the completion socket (1.1's first).
        "device-old-version": device(version=0x00010001, regions=((0, 1 << 30, 0),)),
        # One of the messages before IDENTITY: it would not understand it.
        "device-version-2": device(version=0x00010002, regions=((0, 1 << 30, 0),)),
        "window-two": window(extents=((1 << 30, 1 << 20), (3 << 30, 102400 + (1 << 20) - (1 << 20)))),
        "window-one": window(extents=((1 << 30, 102400 + (1 << 20)),)),
        "window-bad-sum": window(extents=((1 << 30, 102400 + (1 << 20)),), total=4096),
        "window-unregister": window(action=2),
        "window-overlap": window(extents=((1 << 30, 1 << 20), ((1 << 30) + 4096, 102400))),
        "device-reply": sign_all(header(7, 3, 0, 24) + struct.pack("<iIQQ", 0, 6, 102400 + (1 << 20), 0)),
        # The mediator's IDENTITY (type 8): the VM's pool and priority now.
        "identity": identity(),
        "identity-z-low": identity(pool=ord("Z"), priority=0, seq=9),
        "identity-lower-case": identity(pool=ord("b")),
        "identity-bad-priority": identity(priority=3),
        "identity-reserved": identity(reserved=(0, 1)),
        # A guest's libcuda.so.1 and the mediator (types 9 and 10).
        "cuda-describe": sign_all(header(9, 1, 1, 0)),
        "cuda-described-none": described([]),
        "cuda-described-two": described([cuda_device(0), cuda_device(1)]),
        "cuda-described-denied": described([], status=-6),
        "cuda-described-short": described([cuda_device(0)], cut=1),
        "cuda-described-unterminated": described([cuda_device(0, name=b"x" * 256)]),
        "cuda-described-attrs-over": described([cuda_device(0, n_attrs=193)]),
        "cuda-bad-call": sign_all(header(9, 1, 2, 0)),
        "cuda-open": cuda_call(2),
        "cuda-alloc": cuda_call(3, (1 << 20,)),
        "cuda-htod": cuda_call(6, (0x7F0000000000,), bytes(range(64))),
        "cuda-dtoh": cuda_call(7, (0x7F0000000000, 64)),
        "cuda-dtoh-reply": cuda_call(7, (), bytes(64), reply=True),
        "cuda-info-reply": cuda_call(5, (1 << 30, 2 << 30), reply=True),
        "cuda-error-reply-with-data": cuda_call(7, (), bytes(8), reply=True, status=1),
        "cuda-sync-device-1": cuda_call(8, (0, 0, 0, 0, 0, 1)),
        "cuda-unused-arg": cuda_call(8, (0, 0, 0, 0, 1)),
        "cuda-htod-empty": cuda_call(6, (0x7F0000000000,)),
        # Modules and launches (calls 9 to 12).
        "cuda-lib-load-ptx": cuda_call(9, (), b".version 8.0\n.target sm_90\n"
                                       b".address_size 64\n.visible .entry k(.param .u64 p)\n"
                                       b"{\n\tret;\n}\n\0"),
        "cuda-lib-load-fatbin": cuda_call(9, (), struct.pack("<IHHQ", 0xBA55ED50, 1, 16, 72)
                                          + struct.pack("<HHII", 1, 0x0101, 64, 8) + bytes(52 + 8)),
        "cuda-lib-load-fatbin-long": cuda_call(9, (), struct.pack("<IHHQ", 0xBA55ED50, 1, 16, 1 << 20)
                                               + bytes(64)),
        "cuda-lib-load-elf": cuda_call(9, (), elf_image()),
        "cuda-lib-load-elf-phdrs-last": cuda_call(9, (), elf_image_phdrs_last()),
        "cuda-lib-reply": cuda_call(9, (1,), reply=True),
        "cuda-lib-unload": cuda_call(10, (1,)),
        "cuda-get-kernel": cuda_call(11, (1,), b"_Z9scale_addPfPKfc5Scale\0"),
        "cuda-kernel-reply": cuda_call(11, (1, 4, 28), struct.pack("<8I", 0, 8, 8, 8, 16, 1, 20, 8),
                                       reply=True),
        "cuda-kernel-reply-short": cuda_call(11, (1, 4, 28), bytes(24), reply=True),
        "cuda-launch": cuda_call(12, (1, 4 | 1 << 32, 1 | 256 << 32, 1 | 1 << 32, 0), bytes(28)),
        "cuda-launch-no-params": cuda_call(12, (1, 1 | 1 << 32, 1 | 1 << 32, 1 | 1 << 32)),
        "cuda-launch-on-stream": cuda_call(12, (1, 1 | 1 << 32, 1 | 1 << 32, 1 | 1 << 32, 3 << 32)),
        "cuda-htod-on-stream": cuda_call(6, (0x7F0000000000, 3), bytes(16)),
        "cuda-dtoh-on-stream": cuda_call(7, (0x7F0000000000, 16, 3)),
        "cuda-stream-create": cuda_call(13, (1, 0xFFFFFFFE)),
        "cuda-stream-reply": cuda_call(13, (3,), reply=True),
        "cuda-stream-wait": cuda_call(17, (3, 4)),
        "cuda-event-record": cuda_call(20, (4, 3)),
        "cuda-event-elapsed-reply": cuda_call(23, (0x3E800000,), reply=True),
        "cuda-stream-query-not-ready": cuda_call(16, (), reply=True, status=600),
        "cuda-memset": cuda_call(24, (0x7F0000000000, 0xFF, 64, 1, 3)),
        "cuda-dtod": cuda_call(25, (0x7F0000001000, 0x7F0000000000, 64, 3)),
        "cuda-priority-range-reply": cuda_call(26, (0, 0xFFFFFFFB), reply=True),
        # Managed memory, a limit set, graphs by capture (calls 35 to 39).
        "cuda-alloc-managed": cuda_call(3, (4096, 1)),
        "cuda-ctx-set-limit": cuda_call(30, (2, 2, 16 << 20)),
        "cuda-capture-begin": cuda_call(35, (3, 0)),
        "cuda-capture-end": cuda_call(36, (3,)),
        "cuda-capture-end-reply": cuda_call(36, (1,), reply=True),
        "cuda-graph-instantiate": cuda_call(37, (1, 2)),
        "cuda-graph-launch": cuda_call(38, (1, 3, 0)),
        "cuda-graph-upload": cuda_call(38, (1, 3, 1)),
        "cuda-graph-destroy": cuda_call(39, (1, 1)),
        # Stream-ordered allocation and pools, virtual memory (40 to 43).
        "cuda-alloc-async": cuda_call(40, (4096, 3, 2)),
        "cuda-alloc-async-reply": cuda_call(40, (0x7F0000000000,), reply=True),
        "cuda-free-async": cuda_call(41, (0x7F0000000000, 3)),
        "cuda-pool-set": cuda_call(42, (2, 1, 4, 1 << 20)),
        "cuda-pool-get-reply": cuda_call(42, (1 << 21,), reply=True),
        "cuda-vmm-map": cuda_call(43, (4, 0x7F0000000000, 2 << 20, 0, 1)),
        "cuda-vmm-props-reply": cuda_call(43, (0, 2 << 20), reply=True),
        # CUDA arrays, their copies, texture and surface objects (44 to 46).
        "cuda-array-create": cuda_call(44, (0, 64, 16, 0, 0x20 | 1 << 16)),
        "cuda-array-reply": cuda_call(44, (1, 4096), reply=True),
        "cuda-array-copy": cuda_call(45, (3, 1), struct.pack(
            "<14Q", 1, 0, 0x7F0000000000, 256, 16, 0, 0, 0, 0, 0, 0, 256, 16, 1)),
        "cuda-tex-create": cuda_call(46, (0, 0), struct.pack("<IIQ", 0, 0, 1) + bytes(128) +
                                     bytes(104)),
        "cuda-surf-create": cuda_call(46, (2, 0), struct.pack("<IIQ", 0, 0, 1) + bytes(128)),
        "cuda-tex-reply": cuda_call(46, (0x5001,), reply=True),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
