#!/bin/bash
# SPDX-License-Identifier: MIT
# device-agent.sh - on the GPU machine: the host agent's GPU figures
# (agent/nvml.c, NVIDIA's libnvidia-ml.so.1) against nvidia-smi's, with a
# CUDA mediator serving one VM: idle, then while the VM runs sgemms
# (vgpu-submit), GET /v1/gpus and /metrics over the agent's Unix socket
# beside nvidia-smi --query-gpu. Checked: the same model, PCI address and
# total memory; used memory within 64 MiB of nvidia-smi's (both sample a
# moving figure); utilisation above 0 under load; the agent's /metrics
# GPU families present, and every metric docs/grafana-dashboard.json uses.
#
#   bash bench/device-agent.sh      (results in $OUT/agent-*.txt)
set -u
. "$(dirname "$0")/device-env.sh" agent
VM=6f1c2a10-0000-4000-8000-0000000d0009
cuda_mediator "$VM" agent
LD_LIBRARY_PATH="$BIN/agent:$BIN" "$BIN/agent/vgpu-agent" --db "$W/db" --run-dir "$W/run" \
	--socket "$W/agent.sock" 2>"$OUT/agent.log" &
APID=$!
for _ in $(seq 100); do [ -S "$W/agent.sock" ] && break; sleep 0.1; done
get() { # GET PATH over the agent's socket, the body on stdout
	python3 - "$W/agent.sock" "$1" <<'EOF'
import http.client, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
c = C("agent", timeout=10)
c.request("GET", sys.argv[2])
r = c.getresponse()
sys.stdout.write(r.read().decode())
sys.exit(0 if r.status == 200 else 1)
EOF
}
smi() { nvidia-smi --query-gpu=name,pci.bus_id,memory.total,memory.used,utilization.gpu \
	--format=csv,noheader,nounits -i 0; }
fails=0
compare() { # PHASE: one line each, then the checks
	local gpus s
	gpus=$(get /v1/gpus) || { echo "$1: GET /v1/gpus failed: $gpus"; fails=$((fails + 1)); return; }
	s=$(smi)
	echo "$gpus" >"$OUT/agent-$1-gpus.json"
	echo "$s" >"$OUT/agent-$1-smi.txt"
	python3 - "$1" "$gpus" "$s" "${2:-0}" <<'EOF' || fails=$((fails + 1))
import json, sys
phase, gpus, smi, busy = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
name, bus, total, used, util = [x.strip() for x in smi.split(",")]
g = gpus[0]
mib = 1 << 20
print("%-5s agent: %s %s total %d MiB used %d MiB util %s%%" % (phase, g["model"], g["bus_id"],
      g["memory_total_bytes"] // mib, g["memory_used_bytes"] // mib, g["utilization_percent"]))
print("%-5s smi:   %s %s total %s MiB used %s MiB util %s%%" % (phase, name, bus, total, used, util))
ok = True
def check(c, what):
    global ok
    print(("ok  " if c else "FAIL") + " " + phase + ": " + what)
    ok = ok and c
check(g["model"] == name, "the same model")
check(g["bus_id"].lower() == bus.lower(), "the same PCI address")
check(g["memory_total_bytes"] // mib == int(total), "the same total memory (MiB)")
check(abs(g["memory_used_bytes"] // mib - int(used)) <= 64, "used memory within 64 MiB")
if busy:
    check((g["utilization_percent"] or 0) > 0, "utilisation above 0 while the VM computes")
sys.exit(0 if ok else 1)
EOF
}
compare idle
"$BIN/vgpu-submit" --transport "unix:$W/run/vm-$VM.sock" sgemm --m 2048 --n 2048 --k 2048 \
	--repeat 100000 --depth 4 >/dev/null 2>&1 &
SPID=$!
sleep 3
compare busy 1
if get /metrics >"$OUT/agent-metrics.txt"; then
	for f in vgpu_gpu_info vgpu_gpu_memory_total_bytes vgpu_gpu_memory_used_bytes \
		vgpu_gpu_utilization_ratio vgpu_vm_requests_completed_total; do
		grep -q "^$f{" "$OUT/agent-metrics.txt" && echo "ok   /metrics has $f" ||
			{ echo "FAIL /metrics lacks $f"; fails=$((fails + 1)); }
	done
	grep '^vgpu_gpu_' "$OUT/agent-metrics.txt"
	# Every metric the Grafana dashboard asks for, from the agent alone.
	missing=""
	for name in $(jq -r '.panels[].targets[].expr' docs/grafana-dashboard.json |
		grep -oE 'vgpu_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
		grep -q "^# TYPE $name " "$OUT/agent-metrics.txt" || missing="$missing $name"
	done
	[ -z "$missing" ] && echo "ok   every metric of docs/grafana-dashboard.json" ||
		{ echo "FAIL the dashboard's metrics missing:$missing"; fails=$((fails + 1)); }
else
	echo "FAIL GET /metrics"; fails=$((fails + 1))
fi
kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null
kill -TERM "$APID"; wait "$APID"; echo "agent exit $?"
kill -TERM "$MPID"; wait "$MPID"; echo "mediator exit $?"
rm -rf "$W"
echo "device-agent: $fails failed"
[ "$fails" -eq 0 ]
