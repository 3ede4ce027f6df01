#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A raw shared-memory ring client for the end-to-end tests: it attaches a
window and speaks the ring of docs/protocol.md byte by byte (independently
of the C code under test), and can also break its rules on purpose.

usage: shm_client.py SOCKET ACTION [ARGS]
  ok N               one vector_add of N floats in the window; prints the
                     status and checks the sums
  descs              descriptors that are each wrong in one way (offsets in
                     the rings, past the window, misaligned, output over an
                     input, reserved bytes, another VM's id, an unknown op),
                     then a good one; prints "name=status" for each
  tail-jump          publishes a submission tail far past the ring; prints
                     "closed" when the mediator hangs up
  backlog COUNT      COUNT vector_adds (COUNT > 1024 allowed) without taking
                     completions until the rings stall, then takes them
                     all; prints "status=count" pairs
  attach MIB         asks for a window of MIB MiB (fractions allowed) and
                     prints the status; "hold" as a third word keeps it
                     attached until stdin closes
  attach-bytes B     asks for B bytes of data area; prints the status
  bad-attach         an attach message with a bad checksum; "closed"
  after-attach       sends a byte after attaching; "closed"
  attach-late        a stream request, then an attach message; "closed"
  seal               tries to shrink and to grow the window's memfd; prints
                     "sealed" when both fail
  abandon N          submits N vector_adds and closes at once; prints "gone"
  reuse MIB          attaches a window of MIB MiB, leaves a random token
                     at the end of its data area and a submission index
                     behind, closes; attaches one of MIB MiB again and
                     prints "same" or "new" (whether the token is there)
                     and the status of a vector_add in it
  thief COUNT        turns O_NONBLOCK off on its doorbell and completion
                     descriptors, as a client that wants the mediator to
                     block on them would; rings the doorbell COUNT times
                     with a request each, never reads a completion signal,
                     waits for the COUNT completions, then reads its own
                     doorbell: prints "rang=COUNT doorbell=D served=S
                     notify=socket|other" (D = COUNT: the mediator never
                     read the doorbell, so never could block on it)
Exit status 0 when the exchange itself worked, 1 otherwise.
"""
import ctypes
import mmap
import os
import select
import socket
import stat
import struct
import sys
import time

from raw_client import closed, connect, crc32c  # same directory: one CRC, one connect

MAGIC, VERSION, ATTACH, ATTACHED = 0x55504756, 1, 3, 4
RING_MAGIC, ENTRIES, DESC, CQE, PAGE = 0x4E524756, 1024, 64, 32, 4096
SQ_OFF = PAGE
CQ_OFF = SQ_OFF + ENTRIES * DESC
DATA_OFF = CQ_OFF + ENTRIES * CQE
SQ_TAIL, SQ_HEAD, CQ_TAIL, CQ_HEAD = 64, 128, 192, 256
VECTOR_ADD, SAXPY = 1, 2


def small_msg(mtype, block, corrupt=False):
    h = struct.pack("<IHHQHHIII", MAGIC, VERSION, mtype, 0, 0, 0, 0, 24, 0)
    csum = crc32c(block, crc32c(h)) ^ (1 if corrupt else 0)
    return h[:28] + struct.pack("<I", csum) + block


class Window:
    def __init__(self, path, data_bytes):
        self.s = connect(path)
        self.s.sendall(small_msg(ATTACH, struct.pack("<QQQ", data_bytes, 0, 0)))
        msg, fds, _, _ = socket.recv_fds(self.s, 56, 3)
        if len(msg) != 56:
            raise SystemExit("short attach answer")
        self.status, entries, self.size = struct.unpack("<iIQ", msg[32:48])
        self.fds = fds
        if self.status != 0:
            return
        if len(fds) != 3 or entries != ENTRIES:
            raise SystemExit("attach answer without 3 descriptors")
        self.memfd, self.doorbell, self.notify = fds
        self.m = mmap.mmap(self.memfd, self.size)
        if struct.unpack_from("<III", self.m, 0) != (RING_MAGIC, 1, ENTRIES):
            raise SystemExit("bad control page")
        self.sq_tail = self.u32(SQ_TAIL)
        self.cq_head = self.u32(CQ_HEAD)
        self.next_free = DATA_OFF

    # The indexes are read and written with one 4-byte access each (ctypes):
    # struct would move them a byte at a time, and the mediator rightly
    # treats a torn index as a broken client.
    def u32(self, off):
        return ctypes.c_uint32.from_buffer(self.m, off).value

    def set_u32(self, off, value):
        ctypes.c_uint32.from_buffer(self.m, off).value = value

    def put_floats(self, values):
        off = self.next_free
        struct.pack_into("<%df" % len(values), self.m, off, *values)
        self.next_free += (len(values) * 4 + 63) // 64 * 64
        return off

    def alloc(self, floats):
        off = self.next_free
        self.next_free += (floats * 4 + 63) // 64 * 64
        return off

    def floats(self, off, n):
        return struct.unpack_from("<%df" % n, self.m, off)

    def submit(self, req_id, op, n, ins, out, vm_id=0, raw=None):
        d = raw if raw is not None else (
            struct.pack("<QHH", req_id, op, 0) + struct.pack("<IIIIff", vm_id, 0, n, 0, 0.0, 0.0)
            + struct.pack("<IIII", ins[0], ins[1], ins[2] if len(ins) > 2 else 0, out) + bytes(12))
        struct.pack_into("64s", self.m, SQ_OFF + (self.sq_tail % ENTRIES) * DESC, d)
        self.sq_tail = (self.sq_tail + 1) & 0xFFFFFFFF
        self.set_u32(SQ_TAIL, self.sq_tail)
        os.write(self.doorbell, struct.pack("<Q", 1))

    def completions(self):
        out = []
        tail = self.u32(CQ_TAIL)
        while self.cq_head != tail:
            rid, status, rsv, q, e = struct.unpack_from(
                "<QiIQQ", self.m, CQ_OFF + (self.cq_head % ENTRIES) * CQE)
            if rsv:
                raise SystemExit("completion with reserved bytes set")
            out.append((rid, status))
            self.cq_head = (self.cq_head + 1) & 0xFFFFFFFF
        self.set_u32(CQ_HEAD, self.cq_head)
        return out

    def wait(self, timeout=300):
        r, _, _ = select.select([self.notify, self.s], [], [], timeout)
        if self.s in r:
            return False
        # One datagram per completion signal: take them all, or stale ones
        # would wake the next waits at once.
        while self.notify in r:
            os.read(self.notify, 8)
            r, _, _ = select.select([self.notify], [], [], 0)
        return True

    def collect(self, count):
        got = []
        while len(got) < count:
            got += self.completions()
            if len(got) < count and not self.wait():
                break
        return got


def vadd(w, req_id, n):
    a = w.put_floats([float(i) for i in range(n)])
    b = w.put_floats([float(2 * i) for i in range(n)])
    c = w.alloc(n)
    w.submit(req_id, VECTOR_ADD, n, [a, b], c)
    return c


def bad_descs(w):
    """Descriptors each wrong in one way, then good ones: "name=status"
    for each, and whether every one was answered and the good one right."""
    a = w.put_floats([1.0] * 16)
    b = w.put_floats([2.0] * 16)
    c = w.alloc(16)
    end = w.size
    cases = [
        ("in-rings", [SQ_OFF, b], c, {}),
        ("in-control-page", [a, 0x40], c, {}),
        ("past-window", [a, end - 60], c, {}),
        ("huge-offset", [a, 0xFFFFFFC0], c, {}),
        ("misaligned", [a + 2, b], c, {}),
        ("out-over-input", [a, b], b, {}),
        ("out-past-window", [a, b], end - 4, {}),
        ("unused-offset", [a, b, a], c, {}),
        ("other-vm", [a, b], c, {"vm_id": 99}),
    ]
    for i, (name, ins, out, kw) in enumerate(cases):
        w.submit(100 + i, VECTOR_ADD, 16, ins, out, **kw)
    good = struct.pack("<QHH", 200, VECTOR_ADD, 0) + struct.pack("<IIIIff", 0, 0, 16, 0, 0.0, 0.0)
    w.submit(0, 0, 0, [], 0, raw=good + struct.pack("<IIII", a, b, 0, c) + b"\x01" + bytes(11))
    cases.append(("reserved-bytes", None, None, None))
    w.submit(0, 0, 0, [], 0, raw=struct.pack("<QHH", 201, 9, 0) + bytes(24) + bytes(28))
    cases.append(("unknown-op", None, None, None))
    # Requests in flight together get outputs of their own: two writing
    # one array at once would race on it (the client's own loss).
    c2 = w.alloc(16)
    w.submit(202, SAXPY, 16, [a, c2], c2)  # saxpy's y in place: allowed
    cases.append(("saxpy-in-place", None, None, None))
    w.submit(203, VECTOR_ADD, 16, [a, b], c)
    cases.append(("good", None, None, None))
    got = dict(w.collect(len(cases)))
    ids = list(range(100, 100 + len(cases) - 4)) + [200, 201, 202, 203]
    line = " ".join("%s=%s" % (cases[i][0], got.get(rid, "none")) for i, rid in enumerate(ids))
    return line, len(got) == len(cases) and w.floats(c, 16) == tuple([3.0] * 16)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if action in ("attach", "attach-bytes"):
        size = int(float(args[0]) * (1 << 20)) if action == "attach" else int(args[0])
        w = Window(path, size)
        print(w.status, flush=True)
        if len(args) > 1 and args[1] == "hold":
            sys.stdin.read()
        return 0
    if action == "reuse":
        size = int(float(args[0]) * (1 << 20))
        token = os.urandom(8)
        w = Window(path, size)
        if w.status != 0:
            raise SystemExit("attach refused: %d" % w.status)
        w.m[w.size - 8:] = token
        w.set_u32(SQ_TAIL, 17)  # left behind: the next window's control page starts anew
        w.m.close()
        for fd in w.fds:
            os.close(fd)
        w.s.close()
        w = Window(path, size)
        if w.status != 0:
            raise SystemExit("second attach refused: %d" % w.status)
        c = vadd(w, 9, 256)
        got = w.collect(1)
        good = got == [(9, 0)] and w.floats(c, 256) == tuple(3.0 * i for i in range(256))
        print("same" if w.m[w.size - 8:] == token else "new", got[0][1] if got else "none")
        return 0 if good else 1
    if action == "bad-attach":
        s = connect(path)
        s.sendall(small_msg(ATTACH, struct.pack("<QQQ", 1 << 20, 0, 0), corrupt=True))
        print("closed" if closed(s) else "open")
        return 0
    if action == "attach-late":
        s = connect(path)
        params = struct.pack("<IIIIff", 0, 0, 1, 0, 0.0, 0.0)
        payload = params + struct.pack("<ff", 1.0, 2.0)
        h = struct.pack("<IHHQHHIII", MAGIC, VERSION, 1, 5, VECTOR_ADD, 0, 0, len(payload), 0)
        s.sendall(h[:28] + struct.pack("<I", crc32c(params, crc32c(h))) + payload)
        s.sendall(small_msg(ATTACH, struct.pack("<QQQ", 1 << 20, 0, 0)))
        while True:  # the answer to the request may come first
            try:
                if s.recv(4096) == b"":
                    print("closed")
                    return 0
            except (ConnectionResetError, socket.timeout):
                print("closed")
                return 0
    w = Window(path, 1 << 20)
    if w.status != 0:
        raise SystemExit("attach refused: %d" % w.status)
    if action == "ok":
        n = int(args[0])
        c = vadd(w, 7, n)
        got = w.collect(1)
        out = w.floats(c, n)
        good = got == [(7, 0)] and all(out[i] == 3.0 * i for i in range(n))
        print(got[0][1] if got else "none")
        return 0 if good else 1
    if action == "descs":
        line, good = bad_descs(w)
        print(line)
        return 0 if good else 1
    if action == "tail-jump":
        w.set_u32(SQ_TAIL, (w.u32(SQ_HEAD) + 5000) & 0xFFFFFFFF)
        os.write(w.doorbell, struct.pack("<Q", 1))
        print("closed" if closed(w.s) else "open")
        return 0
    if action == "backlog":
        count, n = int(args[0]), 4
        a = w.put_floats([1.0] * n)
        b = w.put_floats([2.0] * n)
        outs = w.alloc(16 * 4 * ENTRIES)  # an output per request in flight (at most 3 x 1024)
        sent, got = 0, []

        def out_of(rid):
            return outs + (rid % (4 * ENTRIES)) * 64

        def room():
            return (w.sq_tail - w.u32(SQ_HEAD)) & 0xFFFFFFFF < ENTRIES

        # Phase 1: never take a completion. The mediator may only take as
        # many descriptors as it can answer: ENTRIES in the completion ring
        # and ENTRIES held back, so the submission ring stalls at 3 x ENTRIES.
        while sent < count:
            if not room():
                head, since = w.u32(SQ_HEAD), time.monotonic()
                while w.u32(SQ_HEAD) == head and time.monotonic() - since < 1.5:
                    w.wait(0.2)
                if w.u32(SQ_HEAD) == head:
                    break  # no descriptor taken for 1.5 s: stalled
                continue
            w.submit(sent + 1, VECTOR_ADD, n, [a, b], out_of(sent + 1))
            sent += 1
        stalled = sent
        # Phase 2: take completions, ring to say so, submit the rest.
        idle = 0
        while len(got) < count and idle < 10:
            new = w.completions()
            got += new
            os.write(w.doorbell, struct.pack("<Q", 1))
            while sent < count and room():
                w.submit(sent + 1, VECTOR_ADD, n, [a, b], out_of(sent + 1))
                sent += 1
            idle = 0 if new else idle + 1
            if len(got) < count and not new and not w.wait(2):
                break  # the mediator hung up
        ids = [rid for rid, _ in got]
        counts = {}
        for _, st in got:
            counts[st] = counts.get(st, 0) + 1
        print("stalled=%d" % stalled, " ".join("%d=%d" % kv for kv in sorted(counts.items())))
        return 0 if sorted(ids) == list(range(1, count + 1)) and stalled <= 3 * ENTRIES else 1
    if action == "after-attach":
        w.s.sendall(b"x")
        print("closed" if closed(w.s) else "open")
        return 0
    if action == "seal":
        shrink = grow = False
        try:
            os.ftruncate(w.memfd, PAGE)
            shrink = True
        except OSError:
            pass
        try:
            os.ftruncate(w.memfd, w.size * 2)
            grow = True
        except OSError:
            pass
        print("sealed" if not shrink and not grow else "not sealed")
        return 0
    if action == "thief":
        for fd in (w.doorbell, w.notify):
            os.set_blocking(fd, False)
            os.set_blocking(fd, True)  # O_NONBLOCK off, on the shared description
        a = w.put_floats([1.0] * 16)
        count = min(int(args[0]), ENTRIES)
        outs = w.alloc(16 * (count + 1))
        for rid in range(1, count + 1):
            w.submit(rid, VECTOR_ADD, 16, [a, a], outs + rid * 64)  # rings the doorbell
        end = time.monotonic() + 30
        while w.u32(CQ_TAIL) != count and time.monotonic() < end:
            time.sleep(0.01)
        os.set_blocking(w.doorbell, False)
        try:
            left = struct.unpack("<Q", os.read(w.doorbell, 8))[0]
        except BlockingIOError:
            left = 0
        kind = "socket" if stat.S_ISSOCK(os.fstat(w.notify).st_mode) else "other"
        print("rang=%d doorbell=%d served=%d notify=%s" % (count, left, w.u32(CQ_TAIL), kind))
        return 0
    if action == "abandon":
        a = w.put_floats([1.0] * 1024)
        outs = w.alloc(1024 * int(args[0]))
        for i in range(int(args[0])):
            w.submit(i + 1, VECTOR_ADD, 1024, [a, a], outs + i * 4096)
        print("gone")
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
