#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vgpu-cloudstack - tell Apache CloudStack (4.21 and later) about this
host's shared GPUs, and bring the VMs CloudStack put on them into the vgpu
registry (docs/cloudstack.md).

usage:
  vgpu-cloudstack [common options] register-gpus --host-id ID --profile NAME=POOL:PRIORITY:SLOTS...
  vgpu-cloudstack [common options] sync-vms --host-id ID [--prune]

common options:
  --cloudstack URL     the API endpoint (https://cs.example/client/api); else $CLOUDSTACK_URL
  --keys FILE          two lines: the API key, then the secret key (a file only its
                       owner can read); else $CLOUDSTACK_API_KEY and $CLOUDSTACK_SECRET_KEY
  --agent SOCKET       vgpu-agent's Unix socket (default /run/vgpu/agent.sock)
  --sysfs DIR          where the host's PCI devices are listed (default /sys)
  --card-name NAME     the GPU card's name in CloudStack (default "NVIDIA <device id>")

register-gpus: for each NVIDIA GPU of this host (PCI vendor 10de, display
class), makes sure CloudStack has its card (createGpuCard), one vGPU
profile per --profile (createVgpuProfile "vgpu-NAME", its description
"vgpu:pool=POOL,priority=PRIORITY", SLOTS VMs per GPU), the GPU itself as a
PCI device and SLOTS shares of it per profile as VGPUOnly devices under it
(createGpuDevice). What exists already is left as it is: it can run again.
The pools must exist in the vgpu registry (asked of the agent).

sync-vms: for each VM CloudStack runs on this host with a vgpu profile,
makes sure the registry has it, by its instance name (i-2-33-VM: the name
XCP-ng knows it by, which survives CloudStack's re-creation of the VM at
each start) and CloudStack's id as its UUID, in the pool and at the
priority its profile says (registered, or changed live). --prune also
removes registered VMs named like CloudStack's that it no longer runs here.

Exit status: 0 done, 1 CloudStack or the agent failed (with their message), 2 usage.
Signed requests as CloudStack's ApiServer.verifyRequest checks them
(signatureversion 3, an expiry 10 minutes ahead). Python 3.6 or later,
standard library only.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

NVIDIA = "10de"
PROFILE_PREFIX = "vgpu-"
DESC = re.compile(r"^vgpu:pool=([A-Z]),priority=(low|medium|high)$")
INSTANCE = re.compile(r"^i-[0-9]+-[0-9]+-VM$")
SHARE_NS = uuid.UUID("6d1b2c1e-5a7f-4c0e-9f35-0b1f6e2a9c41")


class Failed(Exception):
    """CloudStack or the agent said no: exit 1 with the message."""


def usage(msg):
    sys.stderr.write("vgpu-cloudstack: %s\nTry 'vgpu-cloudstack --help'.\n" % msg)
    sys.exit(2)


def java_encode(value):
    """Java's URLEncoder.encode(value, "UTF-8") with "+" as "%20", as
    CloudStack's ApiServer rebuilds the string it checks the signature of:
    everything but letters, digits and ".-*_" percent-encoded."""
    return urllib.parse.quote(value, safe="*").replace("~", "%7E")


class CloudStack:
    def __init__(self, url, key, secret):
        self.url, self.key, self.secret = url, key, secret

    def sign(self, params):
        """The signature of @params as ApiServer.verifyRequest computes it:
        names sorted, values URL-encoded (space as %20), all lowercased,
        HMAC-SHA1 with the secret key, base64."""
        query = "&".join("%s=%s" % (k, java_encode(str(params[k]))) for k in sorted(params))
        mac = hmac.new(self.secret.encode(), query.lower().encode(), hashlib.sha1)
        return base64.b64encode(mac.digest()).decode()

    def call(self, command, **args):
        expires = (datetime.datetime.utcnow() + datetime.timedelta(minutes=10)).strftime(
            "%Y-%m-%dT%H:%M:%S+0000")
        params = {k.lower(): v for k, v in args.items() if v is not None}
        params.update(command=command, apikey=self.key, response="json",
                      signatureversion="3", expires=expires)
        params["signature"] = self.sign(params)
        url = self.url + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
        except (urllib.error.URLError, OSError) as e:
            raise Failed("CloudStack at %s: %s" % (self.url, e))
        try:
            doc = json.loads(body.decode())
            out = doc[command.lower() + "response"]
        except (ValueError, KeyError, TypeError):
            raise Failed("CloudStack %s: not an API answer: %.200r" % (command, body))
        if "errorcode" in out:
            raise Failed("CloudStack %s: %s (%s)" % (command, out.get("errortext", "?"),
                                                     out["errorcode"]))
        return out

    def list(self, command, key, **args):
        return self.call(command, listall="true", **args).get(key, [])


class Agent:
    """vgpu-agent over its Unix socket."""

    def __init__(self, path):
        self.path = path

    def request(self, method, path, body=None):
        class Conn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.settimeout(10)
                conn.sock.connect(self.path)
        c = Conn("localhost")
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            text = r.read().decode()
        except OSError as e:
            raise Failed("vgpu-agent at %s: %s" % (self.path, e))
        finally:
            c.close()
        doc = json.loads(text) if text.strip() else None
        return r.status, doc


def nvidia_gpus(sysfs):
    """(bus address, device id) of each NVIDIA display-class PCI function."""
    root = os.path.join(sysfs, "bus", "pci", "devices")
    out = []
    for bus in sorted(os.listdir(root)):
        def read(name):
            with open(os.path.join(root, bus, name)) as f:
                return f.read().strip().lower()
        try:
            vendor, device, cls = read("vendor"), read("device"), read("class")
        except OSError:
            continue
        if vendor == "0x" + NVIDIA and cls.startswith("0x03"):
            out.append((bus, device[2:]))
    return out


def parse_profiles(specs):
    out = []
    for s in specs:
        m = re.match(r"^([A-Za-z0-9_.-]{1,40})=([A-Za-z]):(low|medium|high):([0-9]{1,3})$", s)
        if not m or not 1 <= int(m.group(4)) <= 256:
            usage("--profile %s: expected NAME=POOL:PRIORITY:SLOTS, e.g. gold=A:high:4 "
                  "(SLOTS 1..256)" % s)
        out.append((m.group(1), m.group(2).upper(), m.group(3), int(m.group(4))))
    if len({p[0] for p in out}) != len(out):
        usage("--profile: a name given twice")
    return out


def register_gpus(cs, agent, host_id, profiles, sysfs, card_name):
    for name, pool, prio, slots in profiles:
        status, _ = agent.request("GET", "/v1/pools/" + pool)
        if status != 200:
            raise Failed("profile %s: pool %s is not in the vgpu registry (vgpu-admin "
                         "create-pool)" % (name, pool))
    gpus = nvidia_gpus(sysfs)
    if not gpus:
        raise Failed("no NVIDIA GPU in %s/bus/pci/devices" % sysfs)
    made = 0
    for dev_id in sorted({d for _, d in gpus}):
        cards = cs.list("listGpuCards", "gpucard", vendorid=NVIDIA, deviceid=dev_id)
        if cards:
            card = cards[0]
        else:
            card = cs.call("createGpuCard", deviceid=dev_id, vendorid=NVIDIA,
                           devicename=card_name or "NVIDIA %s" % dev_id,
                           vendorname="NVIDIA Corporation",
                           name=card_name or "NVIDIA %s" % dev_id)["gpucard"]
            made += 1
        have = {p["name"]: p for p in cs.list("listVgpuProfiles", "vgpuprofile",
                                               gpucardid=card["id"])}
        ids = {}
        for name, pool, prio, slots in profiles:
            pname = PROFILE_PREFIX + name
            if pname not in have:
                have[pname] = cs.call("createVgpuProfile", name=pname, gpucardid=card["id"],
                                      description="vgpu:pool=%s,priority=%s" % (pool, prio),
                                      maxvgpuperphysicalgpu=slots)["vgpuprofile"]
                made += 1
            ids[name] = have[pname]["id"]
        whole = have.get("passthrough")
        if not whole:
            raise Failed("CloudStack made no passthrough profile for card %s" % card["id"])
        devices = {d["busaddress"]: d for d in cs.list("listGpuDevices", "gpudevice",
                                                       hostid=host_id)}
        for bus, dev in gpus:
            if dev != dev_id:
                continue
            parent = devices.get(bus)
            if not parent:
                parent = cs.call("createGpuDevice", hostid=host_id, gpucardid=card["id"],
                                 vgpuprofileid=whole["id"], busaddress=bus,
                                 type="PCI")["gpudevice"]
                made += 1
            for name, pool, prio, slots in profiles:
                for k in range(slots):
                    share = str(uuid.uuid5(SHARE_NS, "%s/%s/%s/%d" % (host_id, bus, name, k)))
                    if share in devices:
                        continue
                    cs.call("createGpuDevice", hostid=host_id, gpucardid=card["id"],
                            vgpuprofileid=ids[name], busaddress=share, type="VGPUOnly",
                            parentgpudeviceid=parent["id"])
                    made += 1
    print("vgpu-cloudstack: %d GPU(s) here; %d object(s) made in CloudStack" % (len(gpus), made))


def sync_vms(cs, agent, host_id, prune):
    profiles = {}
    for p in cs.list("listVgpuProfiles", "vgpuprofile"):
        m = DESC.match(p.get("description") or "")
        if p.get("name", "").startswith(PROFILE_PREFIX) and m:
            profiles[p["id"]] = (m.group(1), m.group(2))
    status, registered = agent.request("GET", "/v1/vms")
    if status != 200:
        raise Failed("vgpu-agent: GET /v1/vms: %s" % status)
    by_name = {v["vm_name"]: v for v in registered}
    wanted = set()
    done = 0
    for vm in cs.list("listVirtualMachines", "virtualmachine", hostid=host_id,
                      gpuenabled="true"):
        want = profiles.get(vm.get("vgpuprofileid"))
        name = vm.get("instancename")
        if not want or not name or not INSTANCE.match(name):
            continue
        wanted.add(name)
        pool, prio = want
        cur = by_name.get(name)
        if cur is None:
            status, doc = agent.request("POST", "/v1/vms", {"vm_uuid": vm["id"], "vm_name": name,
                                                            "pool_id": pool, "priority": prio})
        elif cur["pool_id"] != pool or cur["priority_name"] != prio:
            status, doc = agent.request("PATCH", "/v1/vms/" + cur["vm_uuid"],
                                        {"pool_id": pool, "priority": prio})
        else:
            continue
        if status not in (200, 201):
            raise Failed("vgpu-agent: %s: %s" % (name, (doc or {}).get("error", status)))
        done += 1
    pruned = 0
    for name, cur in by_name.items():
        if prune and INSTANCE.match(name or "") and name not in wanted:
            status, doc = agent.request("DELETE", "/v1/vms/" + cur["vm_uuid"])
            if status != 204:
                raise Failed("vgpu-agent: remove %s: %s" % (name, (doc or {}).get("error", status)))
            pruned += 1
    print("vgpu-cloudstack: %d VM(s) registered or changed, %d removed" % (done, pruned))


def read_keys(path):
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
        raise Failed("%s: the keys file must be a regular file only its owner can read" % path)
    with open(path) as f:
        lines = [l.strip() for l in f.read().splitlines() if l.strip()]
    if len(lines) != 2:
        raise Failed("%s: two lines expected, the API key then the secret key" % path)
    return lines


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="vgpu-cloudstack", add_help=True,
                                 description="Tell CloudStack about this host's shared GPUs "
                                             "and register its GPU VMs with vgpu.")
    ap.add_argument("--cloudstack", default=os.environ.get("CLOUDSTACK_URL"))
    ap.add_argument("--keys")
    ap.add_argument("--agent", default="/run/vgpu/agent.sock")
    ap.add_argument("--sysfs", default="/sys")
    ap.add_argument("--card-name")
    sub = ap.add_subparsers(dest="action")
    r = sub.add_parser("register-gpus")
    r.add_argument("--host-id", required=True)
    r.add_argument("--profile", action="append", required=True)
    s = sub.add_parser("sync-vms")
    s.add_argument("--host-id", required=True)
    s.add_argument("--prune", action="store_true")
    a = ap.parse_args(argv)
    if not a.action:
        usage("register-gpus or sync-vms?")
    if not a.cloudstack or not re.match(r"^https?://", a.cloudstack):
        usage("--cloudstack URL (http or https) is needed")
    if not re.match(r"^[0-9a-fA-F-]{36}$", a.host_id):
        usage("--host-id: CloudStack's id of this host, a UUID")
    try:
        if a.keys:
            key, secret = read_keys(a.keys)
        else:
            key = os.environ.get("CLOUDSTACK_API_KEY")
            secret = os.environ.get("CLOUDSTACK_SECRET_KEY")
            if not key or not secret:
                usage("--keys FILE, or CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY")
        cs = CloudStack(a.cloudstack, key, secret)
        agent = Agent(a.agent)
        if a.action == "register-gpus":
            register_gpus(cs, agent, a.host_id, parse_profiles(a.profile), a.sysfs, a.card_name)
        else:
            sync_vms(cs, agent, a.host_id, a.prune)
    except Failed as e:
        sys.stderr.write("vgpu-cloudstack: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
