#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The scripted host peer of the guest libcuda.so.1 tests (no GPU here):
it listens on a Unix socket where the VM's mediator socket would be and
answers the shim's DESCRIBE call (docs/specs/cuda-remoting.md) with a
description given on the command line, byte by byte from the wire format
(independently of the C encoder), or misbehaves on purpose.

usage: cuda_peer.py SOCKET MODE [--count N]
  MODE  good       one device: the test device below (or --count N of them);
                   the calls after OPEN (cuda_call.h) against an emulation
                   of device memory (QUOTA bytes, allocations at opaque
                   addresses, copies checked against them): the protocol,
                   not a GPU
        refuse-open  good, but OPEN answered CUDA_ERROR_NOT_SUPPORTED
        die-after-3  good, but the call connection closes after 3 calls
        none       zero devices (a host with no GPU for this VM)
        error      status VGPU_DENIED instead of a description
        bad-crc    the right reply with a wrong checksum
        short      a description one byte shorter than its counts say
        huge       a header announcing a payload over the limit
        hang       accepts, reads the call, never answers
It serves each connection on a thread of its own until killed, and
prints "ready" once listening.
"""
import mmap
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import raw_client  # noqa: E402  (the protocol's helpers: crc32c, header, sign_all)

MAGIC, CUDA, CUDA_REPLY, DESCRIBE = 0x55504756, 9, 10, 1
OPEN, MEM_ALLOC, MEM_FREE, MEM_INFO, HTOD, DTOH, SYNC = range(2, 9)
LIB_LOAD, LIB_UNLOAD, GET_KERNEL, LAUNCH = range(9, 13)
(STREAM_CREATE, STREAM_DESTROY, STREAM_SYNC, STREAM_QUERY, STREAM_WAIT, EVENT_CREATE,
 EVENT_DESTROY, EVENT_RECORD, EVENT_SYNC, EVENT_QUERY, EVENT_ELAPSED, MEMSET, DTOD,
 PRIORITY_RANGE, FUNC_ATTR, OCCUPANCY, GLOBAL, CTX_INFO, WINDOW, HTOD_WIN,
 DTOH_WIN, KICK, CAPTURE_BEGIN, CAPTURE_END, GRAPH_INSTANTIATE, GRAPH_LAUNCH,
 GRAPH_DESTROY, MEM_ALLOC_ASYNC, MEM_FREE_ASYNC, POOL, VMM, ARRAY, ARRAY_COPY,
 TEX) = range(13, 47)
# CUDA arrays: bytes a channel of each format served (CUarray_format), and
# texture objects' values (from TEX_BASE, as a driver's are small numbers).
FORMAT_BYTES = {0x01: 1, 0x08: 1, 0x02: 2, 0x09: 2, 0x10: 2, 0x03: 4, 0x0a: 4, 0x20: 4}
TEX_BASE = 0x5000
RES_ARRAY, RES_MIPMAPPED, RES_LINEAR, RES_PITCH2D = range(4)
POOL_CREATE, POOL_DESTROY, POOL_SET, POOL_GET, POOL_TRIM = range(5)
(VMM_CREATE, VMM_RELEASE, VMM_RESERVE, VMM_FREE, VMM_MAP, VMM_UNMAP, VMM_ACCESS, VMM_RETAIN,
 VMM_PROPS, VMM_GRANULARITY) = range(10)
VMM_GRAIN = 2 << 20  # the granularity of physical allocations, as an H100's
# Memory pools: reserved in chunks (as NVIDIA's driver reserves 2 MiB and
# more at a time), kept after frees up to the release threshold (attribute
# 4) until a synchronize, all given back by a trim to 0. Attributes 1..3
# reuse flags (1 by default), 5..8 reserved/used current and high.
POOL_CHUNK = 2 << 20
CAPTURE_UNSUPPORTED, ILLEGAL_STATE, UNSUPPORTED_LIMIT = 900, 401, 215
OCC_BLOCKS, OCC_SMEM, OCC_CLUSTERS = 0, 1, 2
# A kernel's attributes as the emulation reports them (CUfunction_attribute:
# max threads per block, ..., registers, PTX and binary versions); of those
# a program may set, the two the driver lets it.
FUNC_ATTRS = {0: 1024, 1: 0, 2: 0, 3: 0, 4: 16, 5: 75, 6: 90, 7: 0, 8: 0, 9: -1, 10: 0,
              11: 0, 12: 0, 13: 0, 14: 0, 15: 0}
SETTABLE_ATTRS = (8, 9)
# Launch attributes a launch may carry (cuda.h's CUlaunchAttributeID with
# plain values: cooperative, cluster dimension, its scheduling, stream
# serialization, priority, sync domain map and domain, preferred cluster
# dimension, carveout).
LAUNCH_ATTRS = (2, 4, 5, 6, 8, 9, 10, 11, 14)
SM_SHARED = 233472  # an H100's shared memory per multiprocessor
# cuCtxGetApiVersion's answer and the limits cuCtxGetLimit reports
# (stack, printf FIFO, malloc heap).
API_VERSION = 3020
LIMITS = {0: 1024, 1: 1 << 20, 2: 8 << 20}
# cuda_probe.cu's global variable and its bytes.
GLOBALS = {b"probe_table": 16, b"g": 16}
ELEMENT = {1: "<B", 2: "<H", 4: "<I"}
ELAPSED_MS = 0.25  # what EVENT_ELAPSED answers between two recorded events
SUCCESS, INVALID_VALUE, OUT_OF_MEMORY, NOT_SUPPORTED = 0, 1, 2, 801
INVALID_IMAGE, INVALID_HANDLE, NOT_FOUND = 200, 400, 500
FATBIN_MAGIC = 0xBA55ED50
# The one kernel the emulation knows: cuda_probe.cu's scale_add(float *y,
# const float *x, char tag, Scale s) with struct Scale { float a; int n; },
# its parameters as nvcc lays them out (offset, size): y[i] = s.a * x[i] +
# y[i] + tag for i < s.n within the grid.
SCALE_ADD = b"_Z9scale_addPfPKfc5Scale"
SCALE_ADD_LAYOUT = ((0, 8), (8, 8), (16, 1), (20, 8))
# And its tex_read(float *out, cudaTextureObject_t t, int w, int h):
# out[i] = the float element (i % w, i / w) of the array t is a texture of.
TEX_READ = b"_Z8tex_readPfyii"
TEX_READ_LAYOUT = ((0, 8), (8, 8), (16, 4), (20, 4))
# And test-cuda.sh's PTX kernels: k(u64), which does nothing, and
# fault_k(u64), which stores through its parameter (an address nobody
# allocated there: CUDA_ERROR_ILLEGAL_ADDRESS).
NOOP = b"k"
FAULT = b"fault_k"
ILLEGAL_ADDRESS = 700
QUOTA = 256 << 20
BASE = 0x7F0000000000
VGPU_DENIED = -6

# The test device: what tests/guest/test-cuda-shim.sh expects cudart to
# report. Attribute numbers are CUdevice_attribute's (cuda.h).
NAME = b"vgpu test device (H200-like)"
UUID = bytes(range(0xA0, 0xB0))
TOTAL_MEM = 143771 << 20
ATTRS = {
    1: 1024, 2: 1024, 3: 1024, 4: 64, 5: 2147483647, 6: 65535, 7: 65535,
    8: 49152, 9: 65536, 10: 32, 11: 2147483647, 12: 65536, 13: 1980000,
    14: 512, 15: 1, 16: 132, 17: 0, 18: 0, 19: 1, 20: 0, 31: 1, 32: 1,
    33: 0x19, 34: 0, 35: 0, 36: 2619000, 37: 5120, 38: 52428800, 39: 2048,
    40: 1, 41: 1, 50: 0, 75: 9, 76: 0, 78: 1, 79: 1, 80: 2048, 81: 233472,
    82: 65536, 83: 1, 84: 1, 85: 0, 86: 1, 87: 1, 88: 1, 89: 1, 90: 1,
    91: 1, 95: 1, 96: 1, 97: 232448, 98: 1, 99: 1, 100: 1, 101: 1, 102: 1,
    106: 32, 111: 1024, 112: 1, 115: 1, 116: 1, 120: 1,
}
N_ATTRS = 147


def header(req_id, payload_len, checksum=0):
    return raw_client.header(req_id, DESCRIBE, payload_len, checksum, mtype=CUDA_REPLY)


def device(i):
    attrs = [ATTRS.get(a, 0) for a in range(1, N_ATTRS + 1)]
    attrs[33 - 1] = 0x19 + i  # each device on its own bus
    name = NAME.ljust(256, b"\0")
    bus = b"0000:%02x:00.0" % (0x19 + i)
    return (name + bytes([UUID[0] + i]) + UUID[1:] + struct.pack("<Q", TOTAL_MEM) +
            bus.ljust(16, b"\0") + struct.pack("<I", N_ATTRS) +
            struct.pack("<%di" % N_ATTRS, *attrs))


def reply(req_id, mode, count):
    if mode == "error":
        payload = struct.pack("<i", VGPU_DENIED)
    else:
        n = 0 if mode == "none" else count
        desc = struct.pack("<III", 1, 13000, n) + b"".join(device(i) for i in range(n))
        if mode == "short":
            desc = desc[:-1]
        payload = struct.pack("<i", 0) + desc
    if mode == "huge":
        return header(req_id, 1 << 30)
    msg = raw_client.sign_all(header(req_id, len(payload)) + payload)
    if mode == "bad-crc":
        msg = msg[:28] + bytes([msg[28] ^ 1]) + msg[29:]
    return msg


def result(req_id, call, status, values=(), data=b""):
    """A reply: header, result block (i32 status, u32 0, five u64), data."""
    block = struct.pack("<iI5Q", status, 0, *(list(values) + [0] * (5 - len(values))))
    h = raw_client.header(req_id, call, 48 + len(data), mtype=CUDA_REPLY)
    csum = raw_client.crc32c(block, raw_client.crc32c(h[:28] + b"\0\0\0\0"))
    return h[:28] + struct.pack("<I", csum) + block + data


def serve_calls(conn, req_id, mode):
    """The calls after OPEN, one reply each, until the guest leaves."""
    if mode == "refuse-open":
        conn.sendall(result(req_id, OPEN, NOT_SUPPORTED))
        return
    conn.sendall(result(req_id, OPEN, SUCCESS))
    mem, used, nxt, calls = {}, 0, BASE, 0
    libs, kernels = set(), {}
    attrs, globs = {}, {}
    streams, events, recorded = set(), set(), set()
    limits = dict(LIMITS)
    # Stream capture: the launches a capturing stream gets are kept, not
    # run (the only work captured here); a graph's launch runs them.
    capturing, graphs, execs, ids = {}, {}, {}, [0]
    # handle (("d", device) for defaults, ("gone", handle) destroyed) -> pool;
    # pointer -> its pool's handle
    pools, pool_of, pool_ids = {}, {}, [0]

    def new_pool():
        return {"attrs": {1: 1, 2: 1, 3: 1, 4: 0, 6: 0, 8: 0}, "used": 0, "reserved": 0}

    def pool_named(handle, dev):
        if handle == 0:
            return pools.setdefault(("d", dev), new_pool())
        return pools.get(handle)

    def pool_settle(p, keep):
        """Give back what @p keeps beyond @keep bytes (and its allocations)."""
        need = (p["used"] + POOL_CHUNK - 1) // POOL_CHUNK * POOL_CHUNK
        p["reserved"] = min(p["reserved"], max(need, keep))

    # Virtual memory management: physical allocations (handle -> [bytes,
    # device, refs, maps]), reserved ranges in mem as Spans, mappings
    # (address -> (bytes, handle)) as views of the allocation's bytes in
    # their range's Span (so two mappings of one allocation share them).
    phys, maps = {}, {}
    # CUDA arrays: handle -> [bytes, width, height, depth, element bytes];
    # texture and surface objects: value -> (surface, resource descriptor)
    arrays, texs = {}, {}

    def array_call(a):
        nonlocal used
        if a[0] == 1:
            if a[1] not in arrays or any(a[2:5]):
                return INVALID_HANDLE if a[1] not in arrays else INVALID_VALUE, ()
            used -= len(arrays.pop(a[1])[0])
            return SUCCESS, ()
        fmt, ch, flags = a[4] & 0xFFFF, a[4] >> 16 & 0xFFFF, a[4] >> 32
        if a[0] != 0 or fmt not in FORMAT_BYTES or ch not in (1, 2, 4) or flags & ~0xF or \
                a[1] == 0:
            return INVALID_VALUE, ()
        w, h, d, elem = a[1], max(a[2], 1), max(a[3], 1), FORMAT_BYTES[fmt] * ch
        n = w * h * d * elem
        if used + sum(q["reserved"] for q in pools.values()) + n > QUOTA:
            return OUT_OF_MEMORY, ()
        handle = max(arrays.keys() | {0}) + 1
        arrays[handle] = [bytearray(n), w, h, d, elem]
        used += n
        return SUCCESS, (handle, n)

    def array_copy(a, data):
        (arr, arr2, dptr, pitch, rows, x, y, z, x2, y2, z2, width, height,
         depth) = struct.unpack("<14Q", data)
        if a[0] not in streams | {0}:
            return INVALID_HANDLE
        src = arrays.get(arr)
        if src is None or (a[1] == 2 and arr2 not in arrays):
            return INVALID_HANDLE

        def box_in(v, bx, by, bz):
            return bx + width <= v[1] * v[4] and by + height <= v[2] and bz + depth <= v[3]

        if a[1] > 2 or not box_in(src, x, y, z) or \
                (a[1] == 2 and not box_in(arrays[arr2], x2, y2, z2)):
            return INVALID_VALUE
        for k in range(depth):
            for j in range(height):
                at = ((z + k) * src[2] + y + j) * src[1] * src[4] + x
                if a[1] == 2:
                    dst = arrays[arr2]
                    to = ((z2 + k) * dst[2] + y2 + j) * dst[1] * dst[4] + x2
                    dst[0][to:to + width] = src[0][at:at + width]
                    continue
                buf, off = find(dptr + (k * rows + j) * pitch, width)
                if buf is None:
                    return INVALID_VALUE
                if a[1] == 0:
                    src[0][at:at + width] = buf[off:off + width]
                else:
                    buf[off:off + width] = src[0][at:at + width]
        return SUCCESS

    def tex(a, data):
        if a[0] in (1, 3):
            if texs.get(a[1], (None,))[0] != (a[0] == 3):
                return INVALID_VALUE, ()
            texs.pop(a[1])
            return SUCCESS, ()
        res_type, = struct.unpack_from("<I", data, 0)
        ref, = struct.unpack_from("<Q", data, 8)
        if res_type == RES_ARRAY and ref not in arrays:
            return INVALID_HANDLE, ()
        if res_type not in (RES_ARRAY, RES_LINEAR, RES_PITCH2D) or \
                (a[0] == 2 and res_type != RES_ARRAY):
            return INVALID_VALUE, ()
        value = TEX_BASE + len(texs) + 1
        while value in texs:
            value += 1
        texs[value] = (a[0] == 2, res_type, ref)
        return SUCCESS, (value,)

    def texel(t, i, w):
        """tex_read's element @i of texture @t (array-backed, floats)."""
        kind = texs.get(t)
        if kind is None or kind[1] != RES_ARRAY or kind[2] not in arrays:
            return None
        v = arrays[kind[2]]
        at = ((i // w) * v[1] + i % w) * v[4]
        return bytes(v[0][at:at + 4])

    def span_of(ptr, n):
        sp = [(b, v) for b, v in mem.items() if isinstance(v, Span) and b <= ptr and
              ptr + n <= b + len(v)]
        return sp[0] if sp else (None, None)

    def vmm(a):
        nonlocal used, nxt
        what = a[0]
        if what == VMM_CREATE:
            if a[1] == 0 or a[1] % VMM_GRAIN or a[2] > 1:
                return INVALID_VALUE, ()
            if used + sum(q["reserved"] for q in pools.values()) + a[1] > QUOTA:
                return OUT_OF_MEMORY, ()
            handle = max(phys.keys() | {0}) + 1
            phys[handle] = [bytearray(a[1]), a[5], 1, 0, a[2]]
            used += a[1]
            return SUCCESS, (handle,)
        if what in (VMM_RELEASE, VMM_PROPS):
            p = phys.get(a[1])
            if p is None or p[2] == 0:
                return INVALID_HANDLE, ()
            if what == VMM_PROPS:  # compression granted as asked
                return SUCCESS, (p[1], len(p[0]), p[4])
            p[2] -= 1
        elif what == VMM_RESERVE:
            align = max(a[2], VMM_GRAIN)
            nxt = (nxt + align - 1) // align * align
            base, mem[nxt] = nxt, Span(a[1])
            nxt += (a[1] + VMM_GRAIN - 1) // VMM_GRAIN * VMM_GRAIN
            return SUCCESS, (base,)
        elif what == VMM_FREE:
            sp = mem.get(a[1])
            if not isinstance(sp, Span) or len(sp) != a[2] or sp.parts:
                return INVALID_VALUE, ()
            mem.pop(a[1])
        elif what == VMM_MAP:
            p = phys.get(a[4])
            if p is None or p[2] == 0:
                return INVALID_HANDLE, ()
            base, sp = span_of(a[1], a[2])
            if sp is None or a[3] + a[2] > len(p[0]) or a[2] % VMM_GRAIN or \
                    any(m < a[1] + a[2] and a[1] < m + n for m, (n, _) in maps.items()):
                return INVALID_VALUE, ()
            maps[a[1]] = (a[2], a[4])
            p[3] += 1
            sp.parts[a[1] - base] = memoryview(p[0])[a[3]:a[3] + a[2]]
        elif what == VMM_UNMAP:
            base, sp = span_of(a[1], a[2])
            gone = [m for m in maps if a[1] <= m < a[1] + a[2]]
            if sp is None or not gone:
                return INVALID_VALUE, ()
            for m in gone:
                phys[maps.pop(m)[1]][3] -= 1
                sp.parts.pop(m - base)
        elif what == VMM_ACCESS:
            if a[3] not in (0, 1, 3) or span_of(a[1], a[2])[1] is None:
                return INVALID_VALUE, ()
        elif what == VMM_RETAIN:
            hit = [h for m, (n, h) in maps.items() if m <= a[1] < m + n]
            if not hit:
                return INVALID_VALUE, ()
            phys[hit[0]][2] += 1
            return SUCCESS, (hit[0],)
        elif what == VMM_GRANULARITY:
            return SUCCESS, (VMM_GRAIN,)
        else:
            return INVALID_VALUE, ()
        for h in [h for h, p in phys.items() if p[2] == 0 and p[3] == 0]:
            used -= len(phys.pop(h)[0])
        return SUCCESS, ()

    def pools_sync():
        for p in pools.values():
            pool_settle(p, p["attrs"][4])

    def find(ptr, n):
        for base, buf in mem.items():
            if base <= ptr and ptr + n <= base + len(buf):
                return buf, ptr - base
        return None, 0

    def handle(call, a, data, fds):
        """One call: (status, values, data), or None to close the connection."""
        nonlocal used, nxt, window, ring
        status, values, out = SUCCESS, (), b""
        if call in (HTOD, DTOH) and (a[1] if call == HTOD else a[2]) not in streams | {0}:
            status = INVALID_HANDLE
        elif call == MEM_ALLOC:
            if used + sum(q["reserved"] for q in pools.values()) + a[0] > QUOTA:
                status = OUT_OF_MEMORY
            else:
                if a[1]:  # managed memory: 1 KiB aligned, pages shared, as NVIDIA's driver
                    nxt = (nxt + 1023) // 1024 * 1024
                mem[nxt] = bytearray(a[0])
                values, used, nxt = (nxt,), used + a[0], nxt + ((a[0] + 511) // 512) * 512
        elif call == MEM_FREE or call == MEM_FREE_ASYNC:
            if a[0] not in mem or (call == MEM_FREE_ASYNC and a[1] not in streams | {0}):
                status = INVALID_VALUE
            elif a[0] in pool_of:
                p = pools[pool_of.pop(a[0])]
                p["used"] -= len(mem.pop(a[0]))
            else:
                used -= len(mem.pop(a[0]))
        elif call == MEM_ALLOC_ASYNC:
            p = pool_named(a[2], a[5])
            if p is None:
                status = INVALID_VALUE
            elif a[1] not in streams | {0}:
                status = INVALID_HANDLE
            elif a[1] in capturing:
                status = CAPTURE_UNSUPPORTED
            else:
                grow = max(0, p["used"] + a[0] - p["reserved"])
                grow = (grow + POOL_CHUNK - 1) // POOL_CHUNK * POOL_CHUNK
                if used + sum(q["reserved"] for q in pools.values()) + grow > QUOTA:
                    status = OUT_OF_MEMORY
                else:
                    p["reserved"] += grow
                    p["used"] += a[0]
                    p["attrs"][6] = max(p["attrs"][6], p["reserved"])
                    p["attrs"][8] = max(p["attrs"][8], p["used"])
                    mem[nxt] = bytearray(a[0])
                    pool_of[nxt] = next(k for k, v in pools.items() if v is p)
                    values, nxt = (nxt,), nxt + ((a[0] + 511) // 512) * 512
        elif call == ARRAY:
            status, values = array_call(a)
        elif call == ARRAY_COPY:
            status = array_copy(a, data)
        elif call == TEX:
            status, values = tex(a, data)
        elif call == VMM:
            status, values = vmm(a)
        elif call == POOL:
            p = pool_named(a[1], a[5]) if a[0] != POOL_CREATE else None
            if a[0] == POOL_CREATE:
                pool_ids[0] += 1
                handle = pool_ids[0]
                pools[handle] = new_pool()
                values = (handle,)
            elif p is None:
                status = INVALID_VALUE
            elif a[0] == POOL_DESTROY:
                if a[1] == 0:
                    status = INVALID_VALUE
                else:  # its live allocations stay until freed, as CUDA's do
                    pools[("gone", a[1])] = pools.pop(a[1])
                    for ptr in [q for q, h in pool_of.items() if h == a[1]]:
                        pool_of[ptr] = ("gone", a[1])
            elif a[0] == POOL_GET:
                values = ({5: p["reserved"], 7: p["used"]}.get(a[2], p["attrs"].get(a[2], 0)),)
            elif a[0] == POOL_SET:
                p["attrs"][a[2]] = a[3]
            elif a[0] == POOL_TRIM:
                pool_settle(p, a[2])
        elif call == MEM_INFO:
            values = (QUOTA - used - sum(q["reserved"] for q in pools.values()), QUOTA)
        elif call == HTOD:
            buf, off = find(a[0], len(data))
            if buf is None:
                status = INVALID_VALUE
            else:
                buf[off:off + len(data)] = data
        elif call == DTOH:
            buf, off = find(a[0], a[1])
            if buf is None:
                status = INVALID_VALUE
            else:
                out = bytes(buf[off:off + a[1]])
        elif call == LIB_LOAD:
            if len(data) < 16 or (struct.unpack("<I", data[:4])[0] != FATBIN_MAGIC and
                                  not data.startswith(b".version")):
                status = INVALID_IMAGE
            else:
                handle = len(libs) + 1
                libs.add(handle)
                values = (handle,)
        elif call == LIB_UNLOAD:
            if a[0] in libs:
                libs.discard(a[0])
            else:
                status = INVALID_HANDLE
        elif call == GET_KERNEL:
            if a[0] not in libs:
                status = INVALID_HANDLE
            elif data in (NOOP + b"\0", FAULT + b"\0"):
                kernels[len(kernels) + 1] = (a[0], data[:-1])
                values = (len(kernels), 1, 8)
                out = struct.pack("<II", 0, 8)
            elif data == TEX_READ + b"\0":
                kernels[len(kernels) + 1] = (a[0], TEX_READ)
                values = (len(kernels), len(TEX_READ_LAYOUT), 24)
                out = b"".join(struct.pack("<II", o, n) for o, n in TEX_READ_LAYOUT)
            elif data != SCALE_ADD + b"\0":
                status = NOT_FOUND
            else:
                kernels[len(kernels) + 1] = (a[0], SCALE_ADD)
                values = (len(kernels), len(SCALE_ADD_LAYOUT), 28)
                out = b"".join(struct.pack("<II", o, n) for o, n in SCALE_ADD_LAYOUT)
        elif call == LAUNCH and a[4] >> 32 in capturing:
            capturing[a[4] >> 32].append((a, data))
        elif call == LAUNCH:
            status = INVALID_HANDLE if a[4] >> 32 not in streams | {0} else \
                launch(a, data, kernels, libs, find, texel)
        elif call == CAPTURE_BEGIN:
            if a[0] not in streams or a[0] in capturing:
                status = CAPTURE_UNSUPPORTED if a[0] == 0 else ILLEGAL_STATE
            else:
                capturing[a[0]] = []
                ids[0] += 1
                values = (ids[0],)
        elif call == CAPTURE_END:
            if a[0] not in capturing:
                status = ILLEGAL_STATE
            else:
                handle = max(graphs.keys() | {0}) + 1
                graphs[handle] = capturing.pop(a[0])
                values = (handle,)
        elif call == GRAPH_INSTANTIATE:
            if a[0] not in graphs:
                status = INVALID_HANDLE
            else:
                handle = max(execs.keys() | {0}) + 1
                execs[handle] = list(graphs[a[0]])
                values = (handle,)
        elif call == GRAPH_LAUNCH:
            if a[0] not in execs or a[1] not in streams | {0}:
                status = INVALID_HANDLE
            for la, ld in execs.get(a[0], []) if status == SUCCESS and not a[2] else []:
                status = status or launch(la, ld, kernels, libs, find, texel)
        elif call == GRAPH_DESTROY:
            made = execs if a[1] else graphs
            status = SUCCESS if made.pop(a[0], None) is not None else INVALID_HANDLE
        elif call == FUNC_ATTR:
            k = kernels.get(a[0])
            kattrs = attrs.setdefault(a[0], dict(FUNC_ATTRS))
            if k is None or k[0] not in libs:
                status = INVALID_HANDLE
            elif a[2] == 1 and a[1] in SETTABLE_ATTRS:
                kattrs[a[1]] = struct.unpack("<i", struct.pack("<I", a[3]))[0]
            elif a[2] == 0 and a[1] in kattrs:
                values = (kattrs[a[1]] & 0xFFFFFFFF,)
            else:
                status = INVALID_VALUE
        elif call == OCCUPANCY:
            status, values = occupancy(a, data, kernels, libs)
        elif call == GLOBAL:
            name = data.rstrip(b"\0")
            if a[0] not in libs:
                status = INVALID_HANDLE
            elif name not in GLOBALS:
                status = NOT_FOUND
            else:
                if (a[0], name) not in globs:
                    mem[nxt] = bytearray(GLOBALS[name])
                    globs[(a[0], name)] = nxt
                    nxt += 512
                values = (globs[(a[0], name)], GLOBALS[name])
        elif call == WINDOW:
            # The guest's memfd, mapped as the worker maps it.
            if window is not None or len(fds) != 1 or os.fstat(fds[0]).st_size != a[0]:
                status = INVALID_VALUE
            else:
                window = mmap.mmap(fds[0], a[0])
                values = (0,)  # no device address: not mapped for kernels
                # A ring: this peer never waits for it awake ("sleeping"
                # for good): the guest sends KICK with each entry.
                ring = a[1]
                struct.pack_into("<I", window, 128, 1)
        elif call in (HTOD_WIN, DTOH_WIN):
            buf, off = find(a[0], a[2])
            if window is None or buf is None or a[1] + a[2] > len(window) or \
                    a[3] not in streams | {0} or a[4] > 1:
                status = INVALID_VALUE
            elif call == HTOD_WIN:
                buf[off:off + a[2]] = window[a[1]:a[1] + a[2]]
            else:
                window[a[1]:a[1] + a[2]] = bytes(buf[off:off + a[2]])
        elif call == CTX_INFO:
            if a[0] == 0 and a[1] == 0:
                values = (API_VERSION,)
            elif a[0] == 1 and a[1] in limits and not a[2]:
                values = (limits[a[1]],)
            elif a[0] == 2 and a[1] in (0, 1, 2, 5):
                limits[a[1]] = a[2]
            elif a[0] == 2 and a[1] in (3, 4, 6):
                status = UNSUPPORTED_LIMIT  # as the worker refuses them
            else:
                status = INVALID_VALUE
        elif call in (STREAM_CREATE, EVENT_CREATE):
            # Work runs at once here: streams and events only keep order.
            made = streams if call == STREAM_CREATE else events
            handle = max(made | {0}) + 1
            made.add(handle)
            values = (handle,)
        elif call in (STREAM_DESTROY, EVENT_DESTROY):
            made = streams if call == STREAM_DESTROY else events
            status = SUCCESS if a[0] in made else INVALID_HANDLE
            made.discard(a[0])
            recorded.discard(a[0] if call == EVENT_DESTROY else None)
        elif call in (STREAM_SYNC, STREAM_QUERY):
            status = SUCCESS if a[0] in streams | {0} else INVALID_HANDLE
            if call == STREAM_SYNC:
                pools_sync()
        elif call in (STREAM_WAIT, EVENT_RECORD):
            stream, event = (a[0], a[1]) if call == STREAM_WAIT else (a[1], a[0])
            status = SUCCESS if stream in streams | {0} and event in events else INVALID_HANDLE
            if status == SUCCESS and call == EVENT_RECORD:
                recorded.add(event)
        elif call in (EVENT_SYNC, EVENT_QUERY):
            status = SUCCESS if a[0] in events else INVALID_HANDLE
        elif call == EVENT_ELAPSED:
            if a[0] not in events or a[1] not in events:
                status = INVALID_HANDLE
            elif a[0] not in recorded or a[1] not in recorded:
                status = INVALID_HANDLE  # as CUDA: either event never recorded
            else:
                values = (struct.unpack("<I", struct.pack("<f", ELAPSED_MS))[0],)
        elif call == PRIORITY_RANGE:
            values = (0, 0xFFFFFFFB)  # least 0, greatest -5, as an H100's
        elif call == MEMSET:
            size, n = a[3], a[2]
            buf, off = find(a[0], n * size) if size in ELEMENT and n else (None, 0)
            if buf is None or a[1] >> (8 * size) or a[4] not in streams | {0}:
                status = INVALID_VALUE if a[4] in streams | {0} else INVALID_HANDLE
            else:
                buf[off:off + n * size] = struct.pack(ELEMENT[size], a[1]) * n
        elif call == DTOD:
            dbuf, doff = find(a[0], a[2]) if a[2] else (None, 0)
            sbuf, soff = find(a[1], a[2]) if a[2] else (None, 0)
            if dbuf is None or sbuf is None or a[3] not in streams | {0}:
                status = INVALID_VALUE if a[3] in streams | {0} else INVALID_HANDLE
            else:
                dbuf[doff:doff + a[2]] = bytes(sbuf[soff:soff + a[2]])
        elif call == SYNC:
            pools_sync()
        else:
            return None
        return status, values, out

    def drain_ring():
        """The calls in the ring, in order; False to close the connection."""
        nonlocal rhead
        if not ring:
            return True
        tail, = struct.unpack_from("<Q", window, 0)
        while rhead != tail:
            pos = rhead % ring
            ln, = struct.unpack_from("<Q", window, 4096 + pos)
            if ln == 0:
                rhead += ring - pos
                continue
            h = window[4096 + pos + 16:4096 + pos + 96]
            _, _, _, _, rcall, _, _, rplen, _ = struct.unpack("<IHHQHHIII", h[:32])
            try:
                got = handle(rcall, struct.unpack("<6Q", h[32:]),
                             window[4096 + pos + 96:4096 + pos + 96 + rplen - 48], [])
            except IndexError:  # memory reserved but not mapped
                got = ILLEGAL_ADDRESS, (), b""
            if got is None:
                return False
            if got[0] != SUCCESS and struct.unpack_from("<I", window, 132)[0] == 0:
                struct.pack_into("<I", window, 132, got[0])
            rhead += ln
            struct.pack_into("<Q", window, 64, rhead)
        return True

    window, ring, rhead = None, 0, 0  # the guest's window and call ring (cuda_ring.h)
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(conn, 80, 1)
        except OSError:
            return
        if not head:
            return
        if len(head) < 80:
            rest = raw_client.recv_exact(conn, 80 - len(head))
            if rest is None:
                return
            head += rest
        _, _, mtype, rid, call, _, _, plen, _ = struct.unpack("<IHHQHHIII", head[:32])
        a = struct.unpack("<6Q", head[32:])
        data = raw_client.recv_exact(conn, plen - 48) if plen > 48 else b""
        calls += 1
        if mode == "die-after-3" and calls > 3:
            return
        if not drain_ring():
            return
        if call == KICK:
            continue
        try:
            got = handle(call, a, data, fds)
        except IndexError:  # memory reserved but not mapped: the kernel's fault
            got = ILLEGAL_ADDRESS, (), b""
        for fd in fds:
            os.close(fd)
        if got is None:
            return
        conn.sendall(result(rid, call, *got))


class Span:
    """A reserved address range: the views of what is mapped in it (offset
    -> memoryview), read and written through; IndexError where nothing is."""

    def __init__(self, size):
        self.size, self.parts = size, {}

    def __len__(self):
        return self.size

    def _walk(self, sl):
        start, stop, _ = sl.indices(self.size)
        pos = start
        while pos < stop:
            hit = [(o, v) for o, v in self.parts.items() if o <= pos < o + len(v)]
            if not hit:
                raise IndexError("nothing mapped there")
            o, v = hit[0]
            end = min(stop, o + len(v))
            yield v, pos - o, end - o, pos - start
            pos = end

    def __getitem__(self, sl):
        return b"".join(bytes(v[a:b]) for v, a, b, _ in self._walk(sl))

    def __setitem__(self, sl, data):
        data = bytes(data)
        for v, a, b, at in self._walk(sl):
            v[a:b] = data[at:at + b - a]


def launch_attrs(data):
    """The launch attributes in @data (16 bytes each): a status."""
    if len(data) % 16 or len(data) > 16 * 16:
        return INVALID_VALUE
    for i in range(0, len(data), 16):
        if struct.unpack_from("<I", data, i)[0] not in LAUNCH_ATTRS:
            return NOT_SUPPORTED
    return SUCCESS


def occupancy(a, data, kernels, libs):
    """OCCUPANCY's answer: (status, values), from the block size and the
    shared memory asked for, as an H100 would limit them."""
    k = kernels.get(a[0])
    if k is None or k[0] not in libs:
        return INVALID_HANDLE, ()
    if a[1] == OCC_BLOCKS and a[2]:
        by_smem = SM_SHARED // a[3] if a[3] else 32
        return SUCCESS, (max(0, min(32, 2048 // a[2], by_smem)),)
    if a[1] == OCC_SMEM and a[2] and a[3]:
        return SUCCESS, (SM_SHARED // a[2],)
    if a[1] == OCC_CLUSTERS and len(data) >= 32:
        status = launch_attrs(data[32:])
        cluster = 1
        for i in range(32, len(data), 16):
            aid, x, y, z = struct.unpack_from("<4I", data, i)
            if aid == 4:
                cluster = x * y * z
        return status, ((132 // max(1, cluster),) if status == SUCCESS else ())
    return INVALID_VALUE, ()


def launch(a, data, kernels, libs, find, texel=None):
    """SCALE_ADD (TEX_READ, NOOP) over the grid of a LAUNCH call, in
    float32; its launch attributes after the parameters."""
    lib, name = kernels.get(a[0], (None, None))
    if lib not in libs:
        return INVALID_HANDLE
    if name == TEX_READ:
        if len(data) < 24 or launch_attrs(data[24:]) != SUCCESS or texel is None:
            return INVALID_VALUE
        out_ptr, t, w, h = struct.unpack_from("<QQii", data)
        n = min(w * h, (a[1] & 0xFFFFFFFF) * (a[2] >> 32))
        buf, off = find(out_ptr, 4 * n)
        if buf is None:
            return 719  # CUDA_ERROR_LAUNCH_FAILED: the kernel faulted
        for i in range(n):
            v = texel(t, i, w)
            if v is None:
                return 719
            buf[off + 4 * i:off + 4 * i + 4] = v
        return SUCCESS
    size = 8 if name in (NOOP, FAULT) else 28
    if len(data) < size or launch_attrs(data[size:]) != SUCCESS:
        return INVALID_VALUE if len(data) < size else launch_attrs(data[size:])
    data = data[:size]
    if name == NOOP:
        return SUCCESS
    if name == FAULT:
        return ILLEGAL_ADDRESS
    y_ptr, x_ptr, tag, scale, n = struct.unpack("<QQb3xfi", data)
    threads = (a[1] & 0xFFFFFFFF) * (a[2] >> 32)
    count = max(0, min(n, threads))
    ybuf, yoff = find(y_ptr, 4 * count)
    xbuf, xoff = find(x_ptr, 4 * count)
    if count and (ybuf is None or xbuf is None):
        return 719  # CUDA_ERROR_LAUNCH_FAILED: the kernel faulted
    xs = struct.unpack("<%df" % count, bytes(xbuf[xoff:xoff + 4 * count]))
    ys = struct.unpack("<%df" % count, bytes(ybuf[yoff:yoff + 4 * count]))
    out = []
    for x, y in zip(xs, ys):
        ax, = struct.unpack("<f", struct.pack("<f", scale * x))
        axy, = struct.unpack("<f", struct.pack("<f", ax + y))
        out.append(axy + tag)
    ybuf[yoff:yoff + 4 * count] = struct.pack("<%df" % count, *out)
    return SUCCESS


def main():
    path, mode = sys.argv[1], sys.argv[2]
    count = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--count" else 1
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode, count), daemon=True).start()


def serve(conn, mode, count):
    """One connection: a DESCRIBE, or an OPEN and its calls."""
    head = raw_client.recv_exact(conn, 32)
    if head is None:
        conn.close()
        return
    magic, _, mtype, req_id, op, _, _, plen, _ = struct.unpack("<IHHQHHIII", head)
    if magic == MAGIC and mtype == CUDA and op == OPEN and plen == 48:
        raw_client.recv_exact(conn, 48)
        serve_calls(conn, req_id, mode)
    elif magic == MAGIC and mtype == CUDA and op == DESCRIBE and plen == 0:
        if mode == "hang":
            time.sleep(3600)  # kept open, never answered
        conn.sendall(reply(req_id, mode, count))
    conn.close()


main()
