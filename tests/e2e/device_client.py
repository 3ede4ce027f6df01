#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A vgpu-stub device and its guest, played by one process, for the
end-to-end tests of the mediator's device transport: "guest RAM" is a
memfd in two regions (low RAM at guest-physical 0, high RAM at 4 GiB, as
QEMU lays them out), sent to the mediator with the doorbell and completion
eventfds in a DEVICE message; the "guest driver" places a ring window in
that RAM in scattered extents and registers it with a WINDOW message; the
"guest program" then speaks the ring in that memory. Everything is encoded
here from docs/specs/vgpu-stub-1.1.md and docs/protocol.md, independently
of the C code under test, and can break the rules on purpose. (This is
the mediator's peer, not a fake of QEMU: QEMU and real guests are
tests/vm's.)

usage: device_client.py SOCKET ACTION [ARGS]
  ok N            one vector_add of N floats through the window; prints its status
  descs           shm_client.py's bad descriptors, through the device window
  extents         registrations each wrong in one way, then a good one and an
                  unregistration; prints "name=status" for each
  hello-unsealed  guest RAM whose memfd can shrink; prints the reply's status
                  and "closed" when the mediator hangs up
  hello-fds       a DEVICE message without its memfd; the same
  hello-twice     a second DEVICE message on the connection; "closed"
  tail-jump       a submission tail far past the ring: prints the status of
                  the unasked reply (window lost; it carries the registration's
                  sequence), then of a new registration
  reregister K    K rounds of: requests in flight, unregister, register again;
                  prints "taken=some answered=all-taken twice=0 wrong=0" when
                  every descriptor taken was answered once, right
  storm N         N doorbell writes around a few requests; prints the requests'
                  statuses as "status=count"
  streams         byte streams (VGPU_RING_OP_STREAM) through the window: bad
                  descriptors, each wrong in one way, then: a first message
                  not CUDA's, a TX tail past the ring, a DESCRIBE answered
                  by the VM's CUDA worker, then an RX head past the ring,
                  a closed stream reopened, eight at once, and a
                  vector_add in the same window; prints "name=result"
  stall           a stream whose RX the worker's replies fill (OPEN and 100
                  MEM_INFO, 8080 bytes for 4 KiB): prints "stalled" once they
                  are sent, reads nothing until a line comes on stdin, then
                  every reply: prints "N-replies-then-closed" when the stream
                  ends (the test kills the worker meanwhile)
  window MIB      registers a window of MIB MiB of data; prints the status
  hold            registers a window and keeps it until stdin closes; prints
                  "registered" first
  dialed          listens on SOCKET.dev as a device does, for the mediator to
                  dial: says nothing on the first connection (prints
                  "silent=closed" when the mediator cuts it within 5 s), then
                  is the device on the second and runs one vector_add
                  (prints "device=STATUS")
  identity        prints the IDENTITY that follows the DEVICE reply ("POOL
                  PRIORITY"), then each later one as it comes, with the
                  milliseconds since the last, "POOL PRIORITY MS"; stops when
                  stdin closes
Exit status 0 when the exchange itself worked, 1 otherwise.
"""
import ctypes
import fcntl
import mmap
import os
import socket
import struct
import sys
import threading
import time

from raw_client import closed, connect, crc32c, recv_exact
from shm_client import CQ_HEAD, DATA_OFF, SQ_OFF, SQ_TAIL, SQ_HEAD, RING_MAGIC, ENTRIES, Window, \
    bad_descs, vadd

MAGIC, VERSION = 0x55504756, 1
DEVICE, WINDOW, REPLY, IDENTITY = 5, 6, 7, 8
DEV_VERSION, MEMFD = 0x00010003, 1
REGISTER, UNREGISTER = 1, 2
MIB, GIB = 1 << 20, 1 << 30
LOW, HIGH = 16 * MIB, 8 * MIB  # guest RAM: low at 0, high at 4 GiB (fd offset LOW)

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]


def message(mtype, seq, payload):
    h = struct.pack("<IHHQHHIII", MAGIC, VERSION, mtype, seq, 0, 0, 0, len(payload), 0)
    return h[:28] + struct.pack("<I", crc32c(payload, crc32c(h))) + payload


def fd_offset(gpa):
    return gpa if gpa < LOW else gpa - 4 * GIB + LOW


class Device:
    """The device's connection and the guest's RAM."""

    def __init__(self, path, seals=True, send_memfd=True, sock=None):
        self.s = sock if sock is not None else connect(path)
        self.ram = os.memfd_create("guest-ram", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(self.ram, LOW + HIGH)
        if seals:
            fcntl.fcntl(self.ram, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        self.doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # Completions: a datagram socket pair; the mediator gets one end.
        self.notify, self.notify_mediator = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.setblocking(False)
        self.seq = 1
        self.registration = 0  # the registration's sequence while a window is registered
        self.identities = []  # (pool letter, priority, time.monotonic()) of each IDENTITY
        regions = [(0, LOW, 0), (4 * GIB, HIGH, LOW)]
        block = struct.pack("<IIIIQ", DEV_VERSION, MEMFD, 0, len(regions), 0)
        table = b"".join(struct.pack("<QQQ", *r) for r in regions)
        fds = ([self.ram, self.ram] if send_memfd else []) + [self.doorbell,
                                                              self.notify_mediator.fileno()]
        socket.send_fds(self.s, [message(DEVICE, self.seq, block + table)], fds)
        self.hello = self.reply()
        if self.hello is not None and self.hello[2] == 0 and self.next_identity() is None:
            raise SystemExit("no IDENTITY after the DEVICE reply")

    def message(self):
        """The mediator's next message (56 bytes, checksum checked): (type,
        seq, block), or None when closed."""
        try:
            msg = recv_exact(self.s, 56)
        except (ConnectionResetError, socket.timeout):
            return None
        if msg is None:
            return None
        magic, version, mtype, seq, op, rsv, flags, plen, csum = struct.unpack_from(
            "<IHHQHHIII", msg, 0)
        if (magic, version, op, rsv, flags, plen) != (MAGIC, VERSION, 0, 0, 0, 24) or \
                csum != crc32c(msg[32:], crc32c(msg[:28] + b"\0\0\0\0")):
            raise SystemExit("a malformed message from the mediator")
        return mtype, seq, msg[32:]

    def identity(self, block):
        pool, priority, rsv1, rsv2 = struct.unpack("<IIQQ", block)
        if not ord("A") <= pool <= ord("Z") or priority > 2 or rsv1 or rsv2:
            raise SystemExit("a bad IDENTITY: %r" % (block,))
        self.identities.append((chr(pool), priority, time.monotonic()))

    def next_identity(self):
        """Wait for the next IDENTITY: (pool, priority, time), or None when closed."""
        while True:
            m = self.message()
            if m is None:
                return None
            if m[0] != IDENTITY:
                raise SystemExit("a message of type %d, not IDENTITY" % m[0])
            self.identity(m[2])
            return self.identities[-1]

    def reply(self):
        """(seq, type answered, status, window bytes), or None when closed;
        IDENTITY messages on the way are kept in self.identities."""
        while True:
            m = self.message()
            if m is None:
                return None
            mtype, seq, block = m
            if mtype == IDENTITY:
                self.identity(block)
                continue
            status, answered, window, rsv = struct.unpack("<iIQQ", block)
            if mtype != REPLY or rsv:
                raise SystemExit("not a device reply")
            return seq, answered, status, window

    def window_msg(self, action, extents, total=None):
        self.seq += 1
        total = sum(e[1] for e in extents) if total is None else total
        block = struct.pack("<IIQQ", action, len(extents), total, 0)
        self.s.sendall(message(WINDOW, self.seq, block + b"".join(
            struct.pack("<QQ", *e) for e in extents)))
        r = self.reply()
        if r is not None and self.registration and r[0] == self.registration and r[2] != 0:
            r = self.reply()  # an unasked one first: that window was lost
        if r is None:
            return None
        if r[0] != self.seq or r[1] != WINDOW:
            raise SystemExit("reply out of order: %r" % (r,))
        self.registration = self.seq if action == REGISTER and r[2] == 0 else 0
        return r[2]


def scattered(data_bytes):
    """A window's extents, out of order and in both regions."""
    total = DATA_OFF + data_bytes
    return [(4 * GIB + MIB, 64 * 1024), (2 * MIB, 512 * 1024), (6 * MIB, total - 576 * 1024)]


class DeviceWindow(Window):
    """The ring as the guest sees it: its RAM's extents, one after another,
    at one address of ours (so that Window's methods work unchanged)."""

    def __init__(self, dev, extents):
        self.s, self.doorbell, self.notify = dev.s, dev.doorbell, dev.notify.fileno()
        self.size = sum(e[1] for e in extents)
        base = libc.mmap(None, self.size, 0,  # PROT_NONE
                         mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        off = 0
        for gpa, length in extents:
            p = libc.mmap(base + off, length, mmap.PROT_READ | mmap.PROT_WRITE,
                          mmap.MAP_SHARED | 0x10, dev.ram, fd_offset(gpa))  # MAP_FIXED
            if p != base + off:
                raise SystemExit("cannot map the guest's RAM")
            off += length
        self.m = (ctypes.c_char * self.size).from_address(base)
        self.reset()

    def reset(self):
        """A registration starts the rings anew (the mediator wrote the control page)."""
        if struct.unpack_from("<III", self.m, 0) != (RING_MAGIC, 1, ENTRIES):
            raise SystemExit("bad control page")
        self.sq_tail = self.u32(SQ_TAIL)
        self.cq_head = self.u32(CQ_HEAD)
        self.next_free = DATA_OFF


def one_vadd(w, n):
    """One vector_add of n floats in the window: (its status or "none",
    whether it was served and its sums right)."""
    c = vadd(w, 7, n)
    got = w.collect(1)
    good = got == [(7, 0)] and w.floats(c, n) == tuple(3.0 * i for i in range(n))
    return (got[0][1] if got else "none"), good


STREAM, S_OPEN, S_CLOSE = 0x100, 1, 2
S_TX_TAIL, S_TX_HEAD, S_RX_TAIL, S_RX_HEAD, S_STALLED, S_CLOSED = 0, 64, 128, 192, 320, 384
S_CTL, S_RING = 4096, 4096
CUDA, CUDA_REPLY, DESCRIBE = 9, 10, 1


def stream_desc(w, rid, flags, index, ctl=0, ring=0, vm_id=0, k=0):
    """A stream descriptor: params.m the index, params.n each ring's bytes,
    in_off[0] the control page."""
    w.submit(0, 0, 0, [], 0, raw=struct.pack("<QHH", rid, STREAM, flags)
             + struct.pack("<IIIIff", vm_id, index, ring, k, 0.0, 0.0)
             + struct.pack("<IIII", ctl, 0, 0, 0) + bytes(12))


class Stream:
    """One stream of 4 KiB rings at the window's data area + index * 16 KiB."""

    def __init__(self, w, index):
        self.w, self.index = w, index
        self.ctl = DATA_OFF + index * 4 * S_CTL

    def u64(self, off):
        return struct.unpack_from("<Q", self.w.m, self.ctl + off)[0]

    def set_u64(self, off, value):
        struct.pack_into("<Q", self.w.m, self.ctl + off, value & (2 ** 64 - 1))

    def op(self, rid, flags):
        stream_desc(self.w, rid, flags, self.index, self.ctl if flags == S_OPEN else 0,
                    S_RING if flags == S_OPEN else 0)
        got = self.w.collect(1)
        return got[0][1] if got else "none"

    def send(self, data):
        """Into TX as room comes (the mediator moves the bytes on)."""
        while data:
            tail = self.u64(S_TX_TAIL)
            if not self.until(lambda: self.u64(S_TX_HEAD) + S_RING > tail):
                raise SystemExit("TX never drained")
            n = min(len(data), self.u64(S_TX_HEAD) + S_RING - tail)
            for i, byte in enumerate(data[:n]):
                self.w.m[self.ctl + S_CTL + (tail + i) % S_RING] = byte
            self.set_u64(S_TX_TAIL, tail + n)
            os.write(self.w.doorbell, struct.pack("<Q", 1))
            data = data[n:]

    def replies(self, size):
        """Read RX in replies of @size bytes until the stream closes (10 s
        at most): how many there were, each a CUDA reply."""
        head, got, end = 0, 0, time.monotonic() + 10
        while time.monotonic() < end:
            tail = self.u64(S_RX_TAIL)
            while tail - head >= size:
                mtype = struct.unpack("<H", b"".join(
                    self.w.m[self.ctl + S_CTL + S_RING + (head + 6 + i) % S_RING] for i in range(2)))[0]
                got += 1 if mtype == CUDA_REPLY else 1000
                head += size
            self.set_u64(S_RX_HEAD, head)
            if struct.unpack_from("<I", self.w.m, self.ctl + S_STALLED)[0]:
                os.write(self.w.doorbell, struct.pack("<Q", 1))
            if self.closed_now() and self.u64(S_RX_TAIL) == head:
                return got
            time.sleep(0.01)
        return got

    def closed_now(self):
        return struct.unpack_from("<I", self.w.m, self.ctl + S_CLOSED)[0] == 1

    def until(self, what, seconds=10):
        end = time.monotonic() + seconds
        while not what():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def closed(self):
        return self.until(self.closed_now)


def cuda_call(n):
    """CUDA call @n with an argument block of zeros (cuda_call.h)."""
    block = bytes(48)
    h = struct.pack("<IHHQHHIII", MAGIC, VERSION, CUDA, n, n, 0, 0, len(block), 0)
    return h[:28] + struct.pack("<I", crc32c(block, crc32c(h))) + block


def cuda_describe():
    h = struct.pack("<IHHQHHIII", MAGIC, VERSION, CUDA, 1, DESCRIBE, 0, 0, 0, 0)
    return h[:28] + struct.pack("<I", crc32c(b"", crc32c(h)))


def streams(w):
    """The streams action: "name=result" for each case, and whether every
    one came out as the stream rules say."""
    ctl0, out = DATA_OFF, []
    cases = [
        ("index-8", S_OPEN, 8, ctl0, S_RING, {}),
        ("ring-not-power-of-two", S_OPEN, 0, ctl0, 3 * S_RING, {}),
        ("ring-small", S_OPEN, 0, ctl0, S_RING // 2, {}),
        ("ring-huge", S_OPEN, 0, ctl0, 32 * MIB, {}),
        ("ctl-misaligned", S_OPEN, 0, ctl0 + 64, S_RING, {}),
        ("ctl-in-rings", S_OPEN, 0, SQ_OFF, S_RING, {}),
        ("past-window", S_OPEN, 0, w.size - 2 * S_RING, S_RING, {}),
        ("both-flags", S_OPEN | S_CLOSE, 0, ctl0, S_RING, {}),
        ("reserved-param", S_OPEN, 0, ctl0, S_RING, {"k": 1}),
        ("close-with-ring", S_CLOSE, 0, 0, S_RING, {}),
        ("other-vm", S_OPEN, 0, ctl0, S_RING, {"vm_id": 99}),
        ("close-unopened", S_CLOSE, 5, 0, 0, {}),
        ("open", S_OPEN, 0, ctl0, S_RING, {}),
        ("open-twice", S_OPEN, 0, ctl0 + 4 * S_CTL, S_RING, {}),
        ("close", S_CLOSE, 0, 0, 0, {}),
    ]
    for i, (_, flags, index, ctl, ring, kw) in enumerate(cases):
        stream_desc(w, 300 + i, flags, index, ctl, ring, **kw)
    got = dict(w.collect(len(cases)))
    out += ["%s=%s" % (c[0], got.get(300 + i, "none")) for i, c in enumerate(cases)]
    # A first message that is not CUDA's DESCRIBE or OPEN.
    s1 = Stream(w, 1)
    st = s1.op(400, S_OPEN)
    s1.send(struct.pack("<IHHQHHIII", MAGIC, VERSION, 1, 1, 1, 0, 0, 0, 0))
    out.append("not-cuda=%s" % ("closed" if st == 0 and s1.closed() else "open"))
    # TX's tail more than a ring ahead of what the mediator took.
    s2 = Stream(w, 2)
    st = s2.op(401, S_OPEN)
    s2.set_u64(S_TX_TAIL, S_RING + 100)
    os.write(w.doorbell, struct.pack("<Q", 1))
    out.append("tail-jump=%s" % ("closed" if st == 0 and s2.closed() else "open"))
    # DESCRIBE: the worker's answer comes back through RX.
    s3 = Stream(w, 3)
    st = s3.op(402, S_OPEN)
    s3.send(cuda_describe())
    answered = "none"
    if st == 0 and s3.until(lambda: s3.u64(S_RX_TAIL) >= 36):
        mtype, op, status = struct.unpack_from("<H8xH", w.m, s3.ctl + S_CTL + S_RING + 6) + \
            struct.unpack_from("<i", w.m, s3.ctl + S_CTL + S_RING + 32)
        answered = "answered" if (mtype, op, status) == (CUDA_REPLY, DESCRIBE, 0) else \
            "wrong:%d,%d,%d" % (mtype, op, status)
    out.append("describe=%s" % answered)
    # Then RX's head past what the mediator wrote, and more to answer.
    s3.set_u64(S_RX_HEAD, s3.u64(S_RX_TAIL) + 3 * S_RING)
    s3.send(cuda_describe())
    out.append("rx-head-jump=%s" % ("closed" if s3.closed() else "open"))
    # Closed streams are closed by the guest too, and their index reused.
    sts = [s.op(410 + s.index, S_CLOSE) for s in (s1, s2, s3)]
    out.append("reopen=%s" % (s1.op(420, S_OPEN) if sts == [0, 0, 0] else sts))
    eight = [Stream(w, i).op(430 + i, S_OPEN) for i in (0, 2, 3, 4, 5, 6, 7)]
    out.append("eight=%s" % (0 if eight == [0] * 7 else eight))
    w.next_free = DATA_OFF + 8 * 4 * S_CTL
    status, good = one_vadd(w, 1000)
    out.append("vadd=%s" % (status if good else "wrong"))
    want = ("index-8=-3 ring-not-power-of-two=-3 ring-small=-3 ring-huge=-3 ctl-misaligned=-3 "
            "ctl-in-rings=-3 past-window=-3 both-flags=-14 reserved-param=-14 "
            "close-with-ring=-14 other-vm=-10 close-unopened=-2 open=0 open-twice=-9 close=0 "
            "not-cuda=closed tail-jump=closed describe=answered rx-head-jump=closed reopen=0 "
            "eight=0 vadd=0")
    return " ".join(out), " ".join(out) == want


def registered(path, data_bytes=MIB, sock=None):
    dev = Device(path, sock=sock)
    if dev.hello is None or dev.hello[2] != 0:
        raise SystemExit("device refused: %r" % (dev.hello,))
    ext = scattered(data_bytes)
    st = dev.window_msg(REGISTER, ext)
    if st != 0:
        raise SystemExit("window refused: %r" % st)
    return dev, DeviceWindow(dev, ext), ext


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if action in ("hello-unsealed", "hello-fds"):
        dev = Device(path, seals=action != "hello-unsealed", send_memfd=action != "hello-fds")
        print(dev.hello[2] if dev.hello else "none", "closed" if closed(dev.s) else "open")
        return 0
    if action == "hello-twice":
        dev = Device(path)
        regions = struct.pack("<IIIIQ", DEV_VERSION, MEMFD, 0, 1, 0) + struct.pack("<QQQ", 0, LOW, 0)
        socket.send_fds(dev.s, [message(DEVICE, 2, regions)],
                        [dev.ram, dev.doorbell, dev.notify_mediator.fileno()])
        print("closed" if closed(dev.s) else "open")
        return 0
    if action == "extents":
        dev = Device(path)
        total = DATA_OFF + MIB
        cases = [
            ("outside-ram", [(1 * GIB, total)]),
            ("in-the-hole", [(3 * GIB + 512 * MIB, total)]),
            ("across-region-end", [(LOW - 64 * 1024, total)]),
            ("overlapping", [(2 * MIB, 512 * 1024), (2 * MIB + 4096, total - 512 * 1024)]),
            ("too-small", [(2 * MIB, DATA_OFF + MIB - 4096)]),
            ("unaligned", [(2 * MIB + 100, total)]),
            ("good", scattered(MIB)),
        ]
        out = ["%s=%s" % (name, dev.window_msg(REGISTER, ext)) for name, ext in cases]
        out.append("unregister=%s" % dev.window_msg(UNREGISTER, []))
        print(" ".join(out))
        return 0
    if action == "dialed":
        lpath = path + ".dev"
        if os.path.exists(lpath):
            os.unlink(lpath)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(lpath)
        ls.listen(4)
        ls.settimeout(30)
        c, _ = ls.accept()
        c.settimeout(10)
        t0 = time.monotonic()
        try:
            silent = "closed" if c.recv(1) == b"" and time.monotonic() - t0 < 5 else "open"
        except (ConnectionResetError, socket.timeout):
            silent = "open"
        c, _ = ls.accept()
        c.settimeout(300)
        dev, w, _ = registered(path, sock=c)
        status, good = one_vadd(w, 1000)
        print("silent=%s device=%s" % (silent, status if good else "wrong"))
        os.unlink(lpath)
        return 0 if good else 1
    if action == "identity":
        dev = Device(path)
        if dev.hello is None or dev.hello[2] != 0:
            raise SystemExit("device refused: %r" % (dev.hello,))
        pool, prio, last = dev.identities[0]
        print(pool, prio, flush=True)
        # Until stdin closes: each IDENTITY as it comes.
        dev.s.settimeout(None)
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        while True:
            got = dev.next_identity()
            if got is None:
                print("closed", flush=True)
                return 1
            print(got[0], got[1], int((got[2] - last) * 1000), flush=True)
            last = got[2]
    if action == "window":
        dev = Device(path)
        print(dev.window_msg(REGISTER, scattered(int(float(args[0]) * MIB))))
        return 0
    dev, w, ext = registered(path)
    if action == "hold":
        print("registered", flush=True)
        sys.stdin.read()
        return 0
    if action == "ok":
        status, good = one_vadd(w, int(args[0]))
        print(status)
        return 0 if good else 1
    if action == "descs":
        line, good = bad_descs(w)
        print(line)
        return 0 if good else 1
    if action == "streams":
        line, good = streams(w)
        print(line)
        return 0 if good else 1
    if action == "stall":
        s = Stream(w, 0)
        if s.op(1, S_OPEN) != 0:
            raise SystemExit("stream refused")
        s.send(cuda_call(2) + b"".join(cuda_call(5) for _ in range(100)))
        print("stalled", flush=True)
        sys.stdin.readline()
        print("%d-replies-then-closed" % s.replies(80), flush=True)
        return 0
    if action == "tail-jump":
        w.set_u32(SQ_TAIL, (w.u32(SQ_HEAD) + 5000) & 0xFFFFFFFF)
        os.write(w.doorbell, struct.pack("<Q", 1))
        # The unasked reply names the lost window's registration.
        lost = dev.reply()
        print(lost[2] if lost and lost[0] == dev.registration else "none",
              dev.window_msg(REGISTER, ext))
        return 0
    if action == "reregister":
        # Descriptors the mediator had not taken when the window went are
        # never served (the guest's own doing, as a device reset); every
        # one it took is answered, once, before the unregistration is.
        taken, answered, twice, wrong, rid = 0, 0, 0, 0, 0
        for _ in range(int(args[0])):
            seen, outs = set(), {}
            for _ in range(32):
                rid += 1
                outs[rid] = vadd(w, rid, 1024)
            st = dev.window_msg(UNREGISTER, [])
            taken += w.u32(SQ_HEAD)
            for r, status in w.completions():
                twice += r in seen
                seen.add(r)
                wrong += status != 0 or w.floats(outs[r], 1024) != tuple(3.0 * i for i in range(1024))
            answered += len(seen)
            if st != 0 or dev.window_msg(REGISTER, ext) != 0:
                raise SystemExit("re-registration refused")
            w.reset()
        print("taken=%s answered=%s twice=%d wrong=%d" % (
            "some" if taken else "none", "all-taken" if answered == taken else answered,
            twice, wrong))
        return 0 if answered == taken and not twice and not wrong else 1
    if action == "storm":
        counts = {}
        for k in range(int(args[0])):
            os.write(w.doorbell, struct.pack("<Q", 1))
            if k % 5000 == 0:
                c = vadd(w, k + 1, 256)
                for _, status in w.collect(1):
                    ok = status == 0 and w.floats(c, 256) == tuple(3.0 * i for i in range(256))
                    counts[status if ok else "wrong"] = counts.get(status if ok else "wrong", 0) + 1
                w.next_free = DATA_OFF
        print(" ".join("%s=%d" % kv for kv in sorted(counts.items(), key=str)))
        return 0
    sys.exit("unknown action: " + action)


if __name__ == "__main__":
    sys.exit(main())
