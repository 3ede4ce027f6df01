#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Spool-level actions for the end-to-end tests: publish request files into
a VM's spool directory the way a guest does (temporary name, then rename),
publish broken ones on purpose, and collect responses.

usage: spool_client.py VMDIR ACTION [ARGS]
  put ID N              publish a vector_add of N floats as req/<ID>.req
  put-sgemm ID D        publish an sgemm D x D x D (zeros)
  put-sgemm-many FIRST COUNT D   COUNT sgemms with ids FIRST, FIRST+1, ...:
                        all written first, then published together
  put-vm-id ID VMID     a vector_add naming vm_id VMID
  put-symlink ID        req/<ID>.req as a symlink to /etc/passwd
  put-garbage ID        64 random bytes
  put-oversize ID [OP]  a sparse file larger than any limit (with a header
                        naming OP, default 2 = saxpy)
  put-badname NAME      a file with an unexpected name
  put-dir ID            req/<ID>.req as a directory holding a file
  wait ID TIMEOUT       wait for resp/<ID>.resp, print its status, remove it
  wait-op ID TIMEOUT    the same, printing "status op"
  collect IDS TIMEOUT   wait for every id (comma-separated hex), print
                        "status=count" pairs; exit 1 if any is missing
IDs are 16 lowercase hex digits.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_client as rc  # noqa: E402


def publish(vmdir, name, data):
    tmp = os.path.join(vmdir, "req", ".tmp-%d" % os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(vmdir, "req", name))


def wait_response(vmdir, ident, timeout, with_op=False):
    path = os.path.join(vmdir, "resp", ident + ".resp")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            time.sleep(0.005)
            continue
        os.unlink(path)
        h = data[:32]
        magic, ver, mtype, req_id, op, _, flags, plen, csum = rc.struct.unpack("<IHHQHHIII", h)
        if req_id != int(ident, 16) or len(data) != 32 + plen:
            raise SystemExit("malformed response for " + ident)
        status = rc.struct.unpack("<i", data[32:36])[0]
        return (status, op) if with_op else status
    return None


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    vmdir, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ident = args[0]
    name = ident + ".req"
    if action == "put":
        publish(vmdir, name, rc.request(int(ident, 16), int(args[1])))
    elif action == "put-sgemm-many":
        first, count, d = int(ident, 16), int(args[1]), int(args[2])
        tmps = []
        for i in range(count):
            tmp = os.path.join(vmdir, "req", ".tmp-%d-%d" % (os.getpid(), i))
            with open(tmp, "wb") as f:
                f.write(rc.sgemm_request(first + i, d))
            tmps.append((tmp, os.path.join(vmdir, "req", "%016x.req" % (first + i))))
        for tmp, final in tmps:
            os.rename(tmp, final)
    elif action == "put-sgemm":
        publish(vmdir, name, rc.sgemm_request(int(ident, 16), int(args[1])))
    elif action == "put-vm-id":
        publish(vmdir, name, rc.request(int(ident, 16), 4, vm_id=int(args[1])))
    elif action == "put-symlink":
        os.symlink("/etc/passwd", os.path.join(vmdir, "req", name))
    elif action == "put-garbage":
        publish(vmdir, name, os.urandom(64))
    elif action == "put-oversize":
        tmp = os.path.join(vmdir, "req", ".tmp-big")
        with open(tmp, "wb") as f:
            op = int(args[1]) if len(args) > 1 else 2
            f.write(rc.header(int(ident, 16), op, (2 << 30) - 32))
            f.truncate(2 << 30)
        os.rename(tmp, os.path.join(vmdir, "req", name))
    elif action == "put-dir":
        tmp = os.path.join(vmdir, "req", ".tmp-dir-%d" % os.getpid())
        os.mkdir(tmp)
        open(os.path.join(tmp, "inside"), "w").close()
        os.rename(tmp, os.path.join(vmdir, "req", name))
    elif action == "put-badname":
        publish(vmdir, ident, b"x")
    elif action == "wait":
        status = wait_response(vmdir, ident, float(args[1]))
        print("none" if status is None else status)
    elif action == "wait-op":
        r = wait_response(vmdir, ident, float(args[1]), with_op=True)
        print("none" if r is None else "%d %d" % r)
    elif action == "collect":
        counts, missing = {}, 0
        deadline = float(args[1])
        for i in ident.split(","):
            status = wait_response(vmdir, i, deadline)
            if status is None:
                missing += 1
                continue
            counts[status] = counts.get(status, 0) + 1
        print(" ".join("%d=%d" % kv for kv in sorted(counts.items())) + (" missing=%d" % missing if missing else ""))
        return 1 if missing else 0
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
