#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A hostile and careless client for the budget tests (issue 9): it tries to
make the mediator hold memory, file descriptors and time. Every action
prints one line of results; the shell tests decide what they must be.

usage: hostile_client.py SOCKET ACTION [ARGS]
  unread COUNT N HOLD  sends up to COUNT vector_adds of N floats and never
                       reads while sending (a send blocked for 0.5 s ends the
                       sending: back-pressure); prints "sent K" at once, holds
                       HOLD seconds, then reads the K answers and prints
                       "status=count" pairs (each request answered once)
  head-first MIB       a request whose header and parameter block announce
                       MIB MiB but whose checksum is wrong: prints the status
                       and how long the answer took with none of the payload
                       sent; then sends the payload and a good request on the
                       same connection: "STATUS MS good=STATUS"
  stall COUNT MIB HOLD COUNT connections each send the head of a valid
                       vector_add of MIB MiB and 4 KiB of it, then stall;
                       prints "answered=A closed=C open=O" after HOLD seconds
                       (A: answered at once, C: closed by the mediator)
  head-close COUNT MIB COUNT connections each send the head of a valid
                       vector_add of MIB MiB and close at once (while the
                       mediator makes its buffers); prints "sent K"
  stall-header HOLD    10 bytes of a header, then nothing: "closed MS" or "open"
  conns COUNT HOLD     opens COUNT connections (stopping at one that the
                       mediator has not accepted within 1 s), holds them HOLD
                       seconds; prints "opened K"
  attach-storm SECONDS MIB [vary]
                       attaches windows of MIB MiB one after another for
                       SECONDS, writes every other one whole, and closes
                       each before the next; "vary": each attempt asks for
                       the next of 16 sizes in turn (MIB, MIB - 4, ...
                       MIB - 60), so that a kept window seldom fits; prints
                       "attached=A refused=R"
  touch-storm SECONDS MIB [vary]
                       the same memory work with no mediator (SOCKET is not
                       used): its own memfds of the same sizes (one kept
                       and mapped again without "vary"), every other one
                       written whole, for SECONDS; the control
                       that tells the kernel's share of a storm from the
                       mediator's; prints "made=N"
  buffer-churn SECONDS [MI...]
                       vector_adds of 16 to 56 Mi floats over the socket,
                       one at a time, eight sizes in turn (payloads of 128
                       to 448 MiB, answers half that: 3 GiB of distinct
                       buffer sizes, more than the CUDA backend's pinned
                       cache keeps), or of the sizes MI (Mi floats) given,
                       for SECONDS; prints "sent=N 0=A -9=B ..." (statuses)
  all SECONDS          every kind above at once (threads) for SECONDS; prints
                       how many rounds of each completed: "unread=N stall=N ..."
Exit status 0 when the exchange itself worked, 1 otherwise.
"""
import io
import mmap
import os
import socket
import struct
import sys
import threading
import time

from raw_client import connect, crc32c, header, read_answers, read_response, request
from shm_client import Window

VECTOR_ADD = 1


def vadd_head(req_id, n, corrupt=False):
    """Header and parameter block of a vector_add of n floats."""
    params = struct.pack("<IIIIff", 0, 0, n, 0, 0.0, 0.0)
    plen = 24 + 8 * n
    h = header(req_id, VECTOR_ADD, plen)
    csum = crc32c(params, crc32c(h)) ^ (1 if corrupt else 0)
    return header(req_id, VECTOR_ADD, plen, csum) + params


def unread(path, count, n, hold):
    s = connect(path)
    s.settimeout(0.5)
    sent = 0
    for i in range(count):
        msg = request(i + 1, n)
        try:
            s.sendall(msg)
        except socket.timeout:
            break  # back-pressure: the mediator stopped reading
        sent += 1
    print("sent %d" % sent, flush=True)
    time.sleep(hold)
    s.settimeout(300)
    return read_answers(s, sent)


def head_first(path, mib):
    n = (mib << 20) // 8
    s = connect(path)
    t0 = time.monotonic()
    s.sendall(vadd_head(5, n, corrupt=True))
    s.settimeout(10)
    try:
        r = read_response(s)
    except socket.timeout:
        r = None
    ms = (time.monotonic() - t0) * 1000
    if r is None:
        print("none %d good=none" % ms)
        return 0
    s.sendall(bytes(8 * n))  # the payload it announced: skipped by the mediator
    s.sendall(request(6, 16))
    g = read_response(s)
    print("%d %d good=%s" % (r[1], ms, "closed" if g is None else g[1]))
    return 0


def head_close(path, count, mib):
    for i in range(count):
        s = connect(path)
        s.sendall(vadd_head(i + 1, (mib << 20) // 8))
        s.close()
    print("sent %d" % count)
    return 0


def stall(path, count, mib, hold):
    n = (mib << 20) // 8
    conns, answered = [], 0
    for i in range(count):
        s = connect(path)
        s.sendall(vadd_head(i + 1, n) + bytes(4096))
        conns.append(s)
    time.sleep(1)
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK):
                answered += 1
        except BlockingIOError:
            pass
    deadline = time.monotonic() + hold
    closed = set()
    while time.monotonic() < deadline and len(closed) < count:
        for i, s in enumerate(conns):
            if i in closed:
                continue
            try:
                while True:  # drain an answer, look for the end of the stream
                    b = s.recv(65536)
                    if not b:
                        closed.add(i)
                        break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed.add(i)
        time.sleep(0.05)
    print("answered=%d closed=%d open=%d" % (answered, len(closed), count - len(closed)))
    return 0


def stall_header(path, hold):
    s = connect(path)
    s.sendall(vadd_head(1, 16)[:10])
    t0 = time.monotonic()
    s.settimeout(hold)
    try:
        gone = s.recv(1) == b""
    except socket.timeout:
        gone = False
    except ConnectionResetError:
        gone = True
    print("closed %d" % ((time.monotonic() - t0) * 1000) if gone else "open")
    return 0


def conns(path, count, hold):
    held = []
    for _ in range(count):
        s, give_up = None, time.monotonic() + 1
        while s is None and time.monotonic() < give_up:
            try:
                s = connect(path)
            except BlockingIOError:  # the listen backlog is full: wait for accept()
                time.sleep(0.01)
            except OSError:
                break
        if s is None:
            break
        held.append(s)
    print("opened %d" % len(held), flush=True)
    time.sleep(hold)
    return 0


def attach_storm(path, seconds, mib, vary=False):
    attached = refused = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        size = mib - 4 * ((attached + refused) % 16) if vary else mib
        w = Window(path, int(size * (1 << 20)))
        if w.status == 0:
            attached += 1
            # Every other window is used whole, as a guest would (freeing
            # its pages is then real work); the others are dropped at once,
            # which makes the mediator's share of the churn the largest.
            chunk = bytes(1 << 20)
            for off in range(0, w.size - len(chunk) + 1 if attached % 2 else 0, len(chunk)):
                w.m[off:off + len(chunk)] = chunk
            w.m.close()
        else:
            refused += 1
        for fd in w.fds:
            os.close(fd)
        w.s.close()
    print("attached=%d refused=%d" % (attached, refused))
    return 0


def touch_storm(seconds, mib, vary=False):
    made = 0
    end = time.monotonic() + seconds
    chunk = bytes(1 << 20)
    kept = -1  # one size: one memfd used again and again, as the mediator keeps its window
    while time.monotonic() < end:
        size = int((mib - 4 * (made % 16) if vary else mib) * (1 << 20))
        fd = kept if kept >= 0 else os.memfd_create("touch-storm", os.MFD_CLOEXEC)
        if fd != kept:
            os.ftruncate(fd, size)
        made += 1
        m = mmap.mmap(fd, size)
        for off in range(0, size - len(chunk) + 1 if made % 2 else 0, len(chunk)):
            m[off:off + len(chunk)] = chunk
        m.close()
        if vary:
            os.close(fd)
        else:
            kept = fd
    print("made=%d" % made)
    return 0


def buffer_churn(path, seconds, sizes):
    sizes = sizes or [16, 20, 24, 28, 32, 40, 48, 56]
    s = connect(path)
    end = time.monotonic() + seconds
    counts, sent = {}, 0
    while time.monotonic() < end:
        n = sizes[sent % len(sizes)] << 20
        params = struct.pack("<IIIIff", 0, 0, n, 0, 0.0, 0.0)
        payload_len = len(params) + 8 * n
        h = header(sent + 1, 1, payload_len)
        s.sendall(header(sent + 1, 1, payload_len, crc32c(params, crc32c(h))) + params)
        zeros = bytes(1 << 20)
        for _ in range(8 * n >> 20):
            s.sendall(zeros)
        sent += 1
        # The answer: a 32-byte header, then its body, read and dropped.
        got = bytearray()
        while len(got) < 32:
            chunk = s.recv(32 - len(got))
            if not chunk:
                raise SystemExit("closed")
            got += chunk
        left = struct.unpack_from("<I", got, 24)[0]
        status = None
        buf = bytearray(1 << 20)
        while left:
            k = s.recv_into(buf, min(left, len(buf)))
            if not k:
                raise SystemExit("closed")
            if status is None:
                status = struct.unpack_from("<i", buf, 0)[0]
            left -= k
        counts[status] = counts.get(status, 0) + 1
    print("sent=%d %s" % (sent, " ".join("%d=%d" % kv for kv in sorted(counts.items()))))
    return 0


def everything(path, seconds):
    """Each hostile behaviour in a loop, all at once, until the time is up;
    prints how many rounds of each ran ("unread=N stall=N ..."), a round
    the mediator cut short (refused, closed) included."""
    end = time.monotonic() + seconds
    rounds = {}

    def loop(fn, *args):
        while time.monotonic() < end:
            try:
                fn(path, *args)
            except (OSError, SystemExit):  # the mediator cut it short: that is fine
                time.sleep(0.05)
            rounds[fn.__name__] = rounds.get(fn.__name__, 0) + 1

    jobs = [(unread, 2000, 4096, 1), (stall, 4, 64, 2), (stall_header, 2),
            (conns, 12, 1), (attach_storm, 2, 64, True), (head_first, 32)]
    threads = [threading.Thread(target=loop, args=j) for j in jobs]
    real, sys.stdout = sys.stdout, io.StringIO()  # the rounds' own lines are not wanted
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.stdout = real
    print(" ".join("%s=%d" % (j[0].__name__, rounds.get(j[0].__name__, 0)) for j in jobs))
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, action, a = sys.argv[1], sys.argv[2], sys.argv[3:]
    if action == "unread":
        return unread(path, int(a[0]), int(a[1]), float(a[2]))
    if action == "head-first":
        return head_first(path, int(a[0]))
    if action == "stall":
        return stall(path, int(a[0]), int(a[1]), float(a[2]))
    if action == "head-close":
        return head_close(path, int(a[0]), int(a[1]))
    if action == "stall-header":
        return stall_header(path, float(a[0]))
    if action == "conns":
        return conns(path, int(a[0]), float(a[1]))
    if action == "attach-storm":
        return attach_storm(path, float(a[0]), float(a[1]), a[2:] == ["vary"])
    if action == "touch-storm":
        return touch_storm(float(a[0]), float(a[1]), a[2:] == ["vary"])
    if action == "buffer-churn":
        return buffer_churn(path, float(a[0]), [int(x) for x in a[1:]])
    if action == "all":
        return everything(path, float(a[0]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
