#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A raw vgpu protocol client for the end-to-end tests: it speaks the wire
format of docs/protocol.md byte by byte (independently of the C code under
test) and can also break it on purpose.

usage: raw_client.py SOCKET ACTION [ARGS]
  ok N                 one vector_add of N floats; prints the status, checks the sums
  vm-id ID             one vector_add naming vm_id ID; prints the status
  bad-checksum         a request whose checksum is wrong; prints the status
  bad-size             payload one float short of what n says; prints the status
  bad-checksum-many N  N bad-checksum requests on one connection; prints the
                       statuses as "status=count"
  garbage              32 random bytes; prints "closed" if the mediator hangs up
  oversize             a header announcing a payload over any limit; "closed"
  cuda-open            a guest libcuda's OPEN; prints the reply's CUresult
  cuda-before-open     a call (MEM_ALLOC) without OPEN; "closed"
  cuda-after-request, cuda-payload, cuda-unknown-call
                       a guest libcuda's DESCRIBE call after a request, with a
                       payload, or a call number that does not exist; "closed"
  pipeline COUNT N     COUNT vector_adds of N floats back to back, then reads all
                       answers; prints "status=count" pairs
  pipeline-sgemm COUNT D  the same with COUNT sgemms of D x D x D (zeros)
  paced COUNT INTERVAL_US N
                       COUNT vector_adds of N floats, one sent every
                       INTERVAL_US whether or not the last was answered (an
                       open loop: a stall of the mediator delays every request
                       due meanwhile); prints the latency from each request's
                       due time to its answer, "p50 p99 max" in microseconds
Exit status 0 when the exchange itself worked, 1 otherwise.
"""
import os
import random
import socket
import struct
import sys
import threading
import time

MAGIC, VERSION, REQUEST, RESPONSE, VECTOR_ADD = 0x55504756, 1, 1, 2, 1


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def header(req_id, op, payload_len, checksum=0, mtype=REQUEST):
    return struct.pack("<IHHQHHIII", MAGIC, VERSION, mtype, req_id, op, 0, 0, payload_len, checksum)


def request(req_id, n, vm_id=0, short=0, corrupt=False):
    params = struct.pack("<IIIIff", vm_id, 0, n, 0, 0.0, 0.0)
    a = [float(i) for i in range(n)]
    b = [float(2 * i) for i in range(n)]
    data = struct.pack("<%df" % n, *a) + struct.pack("<%df" % (n - short), *b[: n - short])
    payload = params + data
    h = header(req_id, VECTOR_ADD, len(payload))
    csum = crc32c(params, crc32c(h))
    if corrupt:
        csum ^= 1
    return header(req_id, VECTOR_ADD, len(payload), csum) + payload


def sgemm_request(req_id, d):
    params = struct.pack("<IIIIff", 0, d, d, d, 1.0, 0.0)
    payload = params + bytes(3 * d * d * 4)
    h = header(req_id, 3, len(payload))
    return header(req_id, 3, len(payload), crc32c(params, crc32c(h))) + payload


def sign_all(msg):
    """The checksum of a message that covers its whole payload (the
    device's and libcuda's): CRC32C of the header, checksum zeroed, and
    the payload."""
    return msg[:28] + struct.pack("<I", crc32c(msg[32:], crc32c(msg[:28] + b"\0\0\0\0"))) + msg[32:]


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_response(s):
    h = recv_exact(s, 32)
    if h is None:
        return None
    magic, ver, mtype, req_id, op, _, flags, plen, csum = struct.unpack("<IHHQHHIII", h)
    body = recv_exact(s, plen)
    if magic != MAGIC or ver != VERSION or mtype != RESPONSE or body is None:
        raise SystemExit("malformed response")
    if crc32c(body[:24], crc32c(h[:28] + b"\0\0\0\0")) != csum:
        raise SystemExit("bad response checksum")
    status = struct.unpack("<i", body[:4])[0]
    out = body[24:]
    return req_id, status, struct.unpack("<%df" % (len(out) // 4), out)


def read_answers(s, count):
    """Read the answers to requests 1..count; print "status=count" pairs;
    0 when each was answered exactly once."""
    seen, counts = set(), {}
    for _ in range(count):
        r = read_response(s)
        if r is None:
            raise SystemExit("connection closed before %d answers" % count)
        if r[0] in seen:
            raise SystemExit("request %d answered twice" % r[0])
        seen.add(r[0])
        counts[r[1]] = counts.get(r[1], 0) + 1
    print(" ".join("%d=%d" % kv for kv in sorted(counts.items())))
    return 0 if seen == set(range(1, count + 1)) else 1


def cuda_call(s, n, args=(), data=b"", full=False):
    """CUDA call @n (the guest library's wire, type 9) on connected socket
    @s with up to 6 arguments and @data: its status, or with @full
    (status, its 5 results, its data); None when the connection is gone."""
    block = struct.pack("<6Q", *(list(args) + [0] * (6 - len(args))))
    h = header(n, n, 48 + len(data), mtype=9)
    try:
        s.sendall(h[:28] + struct.pack("<I", crc32c(block, crc32c(h))) + block + data)
        r = recv_exact(s, 80)
        more = struct.unpack("<I", r[24:28])[0] - 48 if r else 0
        extra = recv_exact(s, more) if more else b""
    except OSError:
        return None
    if r is None:
        return None
    status, = struct.unpack("<i", r[32:36])
    return (status, struct.unpack("<5Q", r[40:80]), extra) if full else status


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(300)  # sanitizer builds are slow
    s.connect(path)
    return s


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    s, action, args = connect(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if action == "ok":
        n = int(args[0])
        s.sendall(request(7, n))
        req_id, status, out = read_response(s)
        good = req_id == 7 and status == 0 and all(out[i] == 3.0 * i for i in range(n))
        print(status)
        return 0 if good else 1
    if action in ("vm-id", "bad-checksum", "bad-size"):
        msg = {"vm-id": lambda: request(9, 4, vm_id=int(args[0])),
               "bad-checksum": lambda: request(9, 4, corrupt=True),
               "bad-size": lambda: request(9, 4, short=1)}[action]()
        s.sendall(msg)
        r = read_response(s)
        print("closed" if r is None else r[1])
        return 0
    if action == "bad-checksum-many":
        count = int(args[0])
        s.sendall(b"".join(request(i + 1, 4, corrupt=True) for i in range(count)))
        counts = {}
        for _ in range(count):
            r = read_response(s)
            if r is None:
                raise SystemExit("connection closed early")
            counts[r[1]] = counts.get(r[1], 0) + 1
        print(" ".join("%d=%d" % kv for kv in sorted(counts.items())))
        return 0
    if action == "garbage":
        s.sendall(os.urandom(32))
        print("closed" if closed(s) else "open")
        return 0
    if action in ("cuda-after-request", "cuda-payload", "cuda-unknown-call"):
        # A guest libcuda's DESCRIBE (type 9, call 1) out of place,
        # malformed, or a call that does not exist.
        if action == "cuda-after-request":
            s.sendall(request(5, 2))
            read_response(s)
            msg = header(1, 1, 0, mtype=9)
        else:
            msg = header(1, 1, 8, mtype=9) + bytes(8) if action == "cuda-payload" \
                else header(1, 77, 0, mtype=9)
        s.sendall(sign_all(msg))
        print("closed" if closed(s) else "open")
        return 0
    if action in ("cuda-open", "cuda-before-open"):
        # A guest libcuda's OPEN (call 2, a 48-byte block): prints the
        # reply's CUresult; or a call (MEM_ALLOC) without OPEN: "closed".
        call = 2 if action == "cuda-open" else 3
        block = struct.pack("<6Q", 0 if call == 2 else 4096, 0, 0, 0, 0, 0)
        h = header(3, call, 48, mtype=9)
        s.sendall(h[:28] + struct.pack("<I", crc32c(block, crc32c(h))) + block)
        if call == 3:
            print("closed" if closed(s) else "open")
            return 0
        r = recv_exact(s, 80)
        if r is None:
            print("closed")
            return 1
        mtype, rid, op = struct.unpack("<HQH", r[6:18])
        status = struct.unpack("<i", r[32:36])[0]
        print(status if (mtype, rid, op) == (10, 3, 2) else "malformed")
        return 0
    if action == "oversize":
        s.sendall(header(1, VECTOR_ADD, 0xFFFFFFF0))
        print("closed" if closed(s) else "open")
        return 0
    if action in ("pipeline", "pipeline-sgemm"):
        count, n = int(args[0]), int(args[1])
        make = request if action == "pipeline" else sgemm_request
        s.sendall(b"".join(make(i + 1, n) for i in range(count)))
        return read_answers(s, count)
    if action == "paced":
        count, interval, n = int(args[0]), int(args[1]) / 1e6, int(args[2])
        msgs = [request(i + 1, n) for i in range(count)]
        due, lat, bad = [0.0] * count, [], []

        def reader():
            # Every answer is read, failed ones too: a reader that stopped
            # would leave the sender blocked by the mediator's back-pressure.
            for _ in range(count):
                r = read_response(s)
                if r is None:
                    bad.append("connection closed")
                    return
                if r[1] != 0:
                    bad.append(r[1])
                    continue
                lat.append(time.monotonic() - due[r[0] - 1])

        t = threading.Thread(target=reader)
        t.start()
        start = time.monotonic()
        for i in range(count):
            due[i] = start + i * interval
            wait = due[i] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            s.sendall(msgs[i])
        t.join()
        if bad or len(lat) != count:
            raise SystemExit("paced: %d of %d requests failed: %r" % (len(bad), count, bad[:3]))
        lat.sort()
        pick = lambda q: lat[min(count - 1, (count * q + 99) // 100 - 1)] * 1e6
        print("%.0f %.0f %.0f" % (pick(50), pick(99), lat[-1] * 1e6))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
