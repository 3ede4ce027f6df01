#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-cloudstack against a fake CloudStack 4.21 endpoint
# (tests/cloudstack/fake_cloudstack.py, which checks every request's
# signature as CloudStack's ApiServer does) and the real vgpu-agent and
# registry: the host's two NVIDIA GPUs (a fake sysfs) registered as a card,
# its profiles and devices, again without making anything twice; the VMs
# CloudStack runs here with a vgpu profile registered in their pool and at
# their priority, a changed profile applied, --prune; a wrong secret, an
# unknown pool and bad options refused.
. "$(dirname "$0")/lib.sh"
: "${VGPU_AGENT_BIN:?}"
CS_BIN=$VGPU_SRC/cloudstack/vgpu-cloudstack.py
FAKE=$VGPU_TESTS/cloudstack/fake_cloudstack.py
HOST=8a1f0e52-1c2d-4e5f-9a0b-1c2d3e4f5a6b
vm 1 A low
admin create-pool --pool C --weight 300 >/dev/null

# The agent (no mediator: the registry is what this needs).
"$VGPU_AGENT_BIN" --db "$DB" --run-dir "$RUN" --socket "$T/agent.sock" 2>"$T/agent.log" & APID=$!
trap 'kill "$APID" 2>/dev/null; [ -n "${CPID:-}" ] && kill "$CPID" 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -S "$T/agent.sock" ] && break; sleep 0.05; done

# The fake CloudStack, with three VMs on this host (two with vgpu profiles
# once they exist, one without a GPU) and one on another host.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo '{"calls": [], "cards": [], "profiles": [], "devices": [], "vms": []}' >"$T/cs.json"
python3 "$FAKE" "$PORT" "$T/cs.json" key-0123 secret-4567 >"$T/cs.log" 2>&1 & CPID=$!
for _ in $(seq 100); do grep -q ready "$T/cs.log" && break; sleep 0.05; done
printf 'key-0123\nsecret-4567\n' >"$T/keys"; chmod 600 "$T/keys"

# This host's PCI devices: two NVIDIA GPUs (3D controllers) and a NIC.
pci() { mkdir -p "$T/sys/bus/pci/devices/$1"; printf '%s\n' "$2" >"$T/sys/bus/pci/devices/$1/vendor"
	printf '%s\n' "$3" >"$T/sys/bus/pci/devices/$1/device"; printf '%s\n' "$4" >"$T/sys/bus/pci/devices/$1/class"; }
pci 0000:41:00.0 0x10de 0x2335 0x030200
pci 0000:c1:00.0 0x10de 0x2335 0x030200
pci 0000:01:00.0 0x8086 0x1572 0x020000

csv() { python3 "$CS_BIN" --cloudstack "http://127.0.0.1:$PORT/client/api" --keys "$T/keys" \
	--agent "$T/agent.sock" --sysfs "$T/sys" "$@"; }
q() { python3 -c "import json, sys; st = json.load(open('$T/cs.json')); print($1)"; }

rc=0; csv register-gpus --host-id "$HOST" --profile gold=A:high:4 --profile batch=C:low:8 >"$T/out" 2>&1 || rc=$?
expect_eq "$rc" 0 "register-gpus"
expect_eq "$(q 'len(st["cards"])')" 1 "one GPU card (both GPUs are the same model)"
expect_eq "$(q '[c["vendorid"] + ":" + c["deviceid"] for c in st["cards"]][0]')" "10de:2335" "vendor 10de, device 2335"
expect_eq "$(q 'sorted(p["name"] for p in st["profiles"])')" "['passthrough', 'vgpu-batch', 'vgpu-gold']" \
	"profiles: CloudStack's passthrough, vgpu-gold and vgpu-batch"
expect_eq "$(q '[p["description"] + "/" + str(p["maxvgpuperphysicalgpu"]) for p in st["profiles"] if p["name"] == "vgpu-gold"][0]')" \
	"vgpu:pool=A,priority=high/4" "vgpu-gold: pool A, high, 4 VMs per GPU"
expect_eq "$(q 'sorted(d["busaddress"] for d in st["devices"] if d["gpudevicetype"] == "PCI")')" \
	"['0000:41:00.0', '0000:c1:00.0']" "the two GPUs as PCI devices (not the NIC)"
expect_eq "$(q 'len([d for d in st["devices"] if d["gpudevicetype"] == "VGPUOnly"])')" 24 \
	"2 GPUs x (4 + 8) shares as VGPUOnly devices"
expect_eq "$(q 'len({d["parentgpudeviceid"] for d in st["devices"] if d["gpudevicetype"] == "VGPUOnly"})')" 2 \
	"each share under its GPU"
calls=$(q 'len(st["calls"])')
rc=0; csv register-gpus --host-id "$HOST" --profile gold=A:high:4 --profile batch=C:low:8 >"$T/out" 2>&1 || rc=$?
expect_eq "$rc" 0 "register-gpus again"
expect_eq "$(q "len([c for c in st['calls'][$calls:] if c.startswith('create')])")" 0 "makes nothing twice"
grep -q "0 object(s) made" "$T/out" && pass "and says so" || fail "$(cat "$T/out")"

# CloudStack's VMs on this host.
python3 - "$T/cs.json" "$HOST" <<'EOF'
import json, sys
st = json.load(open(sys.argv[1]))
prof = {p["name"]: p["id"] for p in st["profiles"]}
st["vms"] = [
    {"id": "11111111-2222-4333-8444-555555555501", "instancename": "i-2-33-VM", "hostid": sys.argv[2], "vgpuprofileid": prof["vgpu-gold"]},
    {"id": "11111111-2222-4333-8444-555555555502", "instancename": "i-2-34-VM", "hostid": sys.argv[2], "vgpuprofileid": prof["vgpu-batch"]},
    {"id": "11111111-2222-4333-8444-555555555503", "instancename": "i-2-35-VM", "hostid": sys.argv[2]},
    {"id": "11111111-2222-4333-8444-555555555504", "instancename": "i-2-36-VM", "hostid": "elsewhere", "vgpuprofileid": prof["vgpu-gold"]},
]
json.dump(st, open(sys.argv[1], "w"))
EOF
rc=0; csv sync-vms --host-id "$HOST" >"$T/out" 2>&1 || rc=$?
expect_eq "$rc" 0 "sync-vms"
show() { admin show-vm --vm-name "$1" --json 2>/dev/null | jq -r '[.vm_uuid, .pool_id, .priority_name] | join(" ")'; }
expect_eq "$(show i-2-33-VM)" "11111111-2222-4333-8444-555555555501 A high" "i-2-33-VM (vgpu-gold): pool A, high, CloudStack's id as its UUID"
expect_eq "$(show i-2-34-VM)" "11111111-2222-4333-8444-555555555502 C low" "i-2-34-VM (vgpu-batch): pool C, low"
expect_eq "$(show i-2-35-VM)" "" "i-2-35-VM (no GPU) not registered"
expect_eq "$(show i-2-36-VM)" "" "i-2-36-VM (another host) not registered"
# The operator moves i-2-34-VM to the gold offering: the next sync applies it.
python3 - "$T/cs.json" <<'EOF'
import json, sys
st = json.load(open(sys.argv[1]))
gold = [p["id"] for p in st["profiles"] if p["name"] == "vgpu-gold"][0]
st["vms"][1]["vgpuprofileid"] = gold
st["vms"] = st["vms"][1:]   # and i-2-33-VM is gone from this host
json.dump(st, open(sys.argv[1], "w"))
EOF
csv sync-vms --host-id "$HOST" >/dev/null 2>&1
expect_eq "$(show i-2-34-VM)" "11111111-2222-4333-8444-555555555502 A high" "a changed profile: pool A, high"
expect_eq "$(show i-2-33-VM | cut -d' ' -f2-)" "A high" "without --prune a VM gone stays registered"
csv sync-vms --host-id "$HOST" --prune >/dev/null 2>&1
expect_eq "$(show i-2-33-VM)" "" "--prune removes it"
expect_eq "$(show vm1 | cut -d' ' -f2-)" "A low" "a VM not named like CloudStack's is left alone"

# Refusals.
printf 'key-0123\nwrong-secret\n' >"$T/bad"; chmod 600 "$T/bad"
rc=0; python3 "$CS_BIN" --cloudstack "http://127.0.0.1:$PORT/client/api" --keys "$T/bad" --agent "$T/agent.sock" \
	sync-vms --host-id "$HOST" >/dev/null 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "a wrong secret: exit 1"
grep -q "unable to verify user credentials" "$T/err" && pass "with CloudStack's message" || fail "$(cat "$T/err")"
calls=$(q 'len(st["calls"])')
rc=0; csv register-gpus --host-id "$HOST" --profile x=Q:high:2 >/dev/null 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "a profile in a pool the registry lacks: exit 1"
expect_eq "$(q 'len(st["calls"])')" "$calls" "before any call to CloudStack"
rc=0; csv register-gpus --host-id "$HOST" --profile gold=A:urgent:2 >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "an unknown priority: usage"
rc=0; csv register-gpus --host-id "$HOST" --profile gold=A:high:0 >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "0 slots: usage"
rc=0; csv sync-vms --host-id not-a-uuid >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "a host id that is no UUID: usage"
chmod 644 "$T/keys"
rc=0; csv sync-vms --host-id "$HOST" >/dev/null 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "a keys file others can read: refused"
e2e_finish
