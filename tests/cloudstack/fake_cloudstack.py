#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake of Apache CloudStack 4.21's API, for tests of vgpu-cloudstack
only: the GPU commands (listGpuCards, createGpuCard, listVgpuProfiles,
createVgpuProfile, listGpuDevices, createGpuDevice) and listVirtualMachines,
with their parameter and response names as CloudStack 4.21's sources have
them (CreateGpuCardCmd.java and its siblings, GpuCardResponse.java and its
siblings: docs/cloudstack.md cites them). Requests must be signed as
ApiServer.verifyRequest checks (signatureversion 3, not expired). State in
a JSON file the test reads and seeds (virtual machines).

usage: fake_cloudstack.py PORT STATE_FILE API_KEY SECRET_KEY
Prints "ready" once it listens on 127.0.0.1:PORT. Every call is appended
to STATE_FILE's "calls".
"""
import base64
import datetime
import hashlib
import hmac
import json
import sys
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, STATE, KEY, SECRET = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def java_encode(v):
    return urllib.parse.quote(v, safe="*").replace("~", "%7E")


def load():
    with open(STATE) as f:
        return json.load(f)


def save(st):
    with open(STATE, "w") as f:
        json.dump(st, f, indent=1)


def error(cmd, code, text):
    return code, {cmd.lower() + "response": {"errorcode": code, "errortext": text}}


def handle(params):
    cmd = params.get("command", "")
    sig = params.pop("signature", None)
    if params.get("apikey") != KEY or not sig:
        return error(cmd, 401, "unable to verify user credentials and/or request signature")
    query = "&".join("%s=%s" % (k, java_encode(params[k])) for k in sorted(params))
    want = base64.b64encode(hmac.new(SECRET.encode(), query.lower().encode(),
                                     hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(want, sig):
        return error(cmd, 401, "unable to verify user credentials and/or request signature")
    if params.get("signatureversion") == "3":
        exp = datetime.datetime.strptime(params.get("expires", ""), "%Y-%m-%dT%H:%M:%S+0000")
        if exp < datetime.datetime.utcnow():
            return error(cmd, 401, "the request has expired")
    st = load()
    st["calls"].append(cmd)
    out = None
    if cmd == "listGpuCards":
        cards = [c for c in st["cards"] if all(c[k] == params[k] for k in ("vendorid", "deviceid")
                                               if k in params)]
        out = {"count": len(cards), "gpucard": cards} if cards else {}
    elif cmd == "createGpuCard":
        for k in ("deviceid", "devicename", "name", "vendorname", "vendorid"):
            if not params.get(k):
                return error(cmd, 431, "Unable to execute API command creategpucard due to "
                                       "missing parameter " + k)
        if not params["deviceid"].isalnum() or not params["vendorid"].isalnum():
            return error(cmd, 431, "deviceid and vendorid must be alphanumeric")
        card = {k: params[k] for k in ("deviceid", "devicename", "name", "vendorname", "vendorid")}
        card["id"] = str(uuid.uuid4())
        st["cards"].append(card)
        # CloudStack makes a "passthrough" profile with every card.
        st["profiles"].append({"id": str(uuid.uuid4()), "name": "passthrough",
                               "gpucardid": card["id"], "description": "",
                               "maxvgpuperphysicalgpu": 1})
        out = {"gpucard": card}
    elif cmd == "listVgpuProfiles":
        ps = [p for p in st["profiles"] if "gpucardid" not in params
              or p["gpucardid"] == params["gpucardid"]]
        out = {"count": len(ps), "vgpuprofile": ps} if ps else {}
    elif cmd == "createVgpuProfile":
        if not params.get("name") or not any(c["id"] == params.get("gpucardid") for c in st["cards"]):
            return error(cmd, 431, "name and an existing gpucardid are required")
        p = {"id": str(uuid.uuid4()), "name": params["name"], "gpucardid": params["gpucardid"],
             "description": params.get("description", ""),
             "maxvgpuperphysicalgpu": int(params.get("maxvgpuperphysicalgpu", 1))}
        st["profiles"].append(p)
        out = {"vgpuprofile": p}
    elif cmd == "listGpuDevices":
        ds = [d for d in st["devices"] if "hostid" not in params or d["hostid"] == params["hostid"]]
        out = {"count": len(ds), "gpudevice": ds} if ds else {}
    elif cmd == "createGpuDevice":
        for k in ("hostid", "gpucardid", "vgpuprofileid", "busaddress"):
            if not params.get(k):
                return error(cmd, 431, "missing parameter " + k)
        prof = [p for p in st["profiles"] if p["id"] == params["vgpuprofileid"]]
        if not prof or prof[0]["gpucardid"] != params["gpucardid"]:
            return error(cmd, 431, "the vGPU profile is not one of the card's")
        if any(d["hostid"] == params["hostid"] and d["busaddress"] == params["busaddress"]
               for d in st["devices"]):
            return error(cmd, 431, "a GPU device with this bus address exists on the host")
        if params.get("type", "PCI").lower() not in ("pci", "mdev", "vgpuonly"):
            return error(cmd, 431, "type must be PCI, MDEV or VGPUOnly")
        d = {"id": str(uuid.uuid4()), "hostid": params["hostid"], "gpucardid": params["gpucardid"],
             "vgpuprofileid": params["vgpuprofileid"], "busaddress": params["busaddress"],
             "gpudevicetype": params.get("type", "PCI"),
             "parentgpudeviceid": params.get("parentgpudeviceid"), "state": "Free",
             "managedstate": "Managed"}
        st["devices"].append(d)
        out = {"gpudevice": d}
    elif cmd == "listVirtualMachines":
        vms = [v for v in st["vms"] if v.get("hostid") == params.get("hostid")]
        out = {"count": len(vms), "virtualmachine": vms} if vms else {}
    else:
        return error(cmd, 432, "The given command does not exist or it is not available for user")
    save(st)
    return 200, {cmd.lower() + "response": out}


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/client/api":
            self.send_error(404)
            return
        code, doc = handle(dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True)))
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = HTTPServer(("127.0.0.1", PORT), H)
print("ready", flush=True)
srv.serve_forever()
