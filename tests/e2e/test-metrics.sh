#!/bin/bash
# SPDX-License-Identifier: MIT
# The mediator's figures in Prometheus' text format (the control socket's
# "metrics", which the host agent serves as /metrics), parsed by the
# Prometheus Python client's own parser, against what was sent: VM 1 (a
# name with a quote and a backslash) runs 12 requests, VM 2 runs 3 and has
# one refused (a bad checksum); VM 3 sends nothing.
. "$(dirname "$0")/lib.sh"

# Debian's python3 has the parser (python3-prometheus-client).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

admin register-vm --vm-uuid "$(uuid 1)" --vm-name 'web "blue" \ 1' --pool A --priority high \
	--vm-id 1 >/dev/null
vm 2 B low; vm 3 B medium
admin set-sched --vm-uuid "$(uuid 2)" --mem-quota 64 --rate-limit 500 >/dev/null
start_mediator --set cpu_threads=1
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 1)" sgemm --m 64 --n 64 --k 64 --repeat 12 >/dev/null
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 2)" vector-add --n 4096 --repeat 3 >/dev/null
python3 "$RAW" "$(sock 2)" bad-checksum >/dev/null

fetch() {
	$PY - "$RUN/control.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"metrics\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
EOF
}
fetch >"$T/metrics"
head -c 600 "$T/metrics" | sed 's/^/# /'
$PY - "$T/metrics" "$(uuid 1)" "$(uuid 2)" "$(uuid 3)" >"$T/checks" 2>&1 <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
vm1, vm2, vm3 = sys.argv[2:5]
fam = {f.name: f for f in text_string_to_metric_families(text)}
def val(name, suffix="", **labels):
    for s in fam[name].samples:
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None
def out(what, ok):
    print(("ok" if ok else "FAIL") + " " + what)
out("the parser read %d families" % len(fam), len(fam) >= 20)
out("types: counters, gauges, histograms",
    fam["vgpu_vm_requests_completed"].type == "counter" and fam["vgpu_vm_memory_held_bytes"].type == "gauge"
    and fam["vgpu_vm_queue_wait_seconds"].type == "histogram")
out("VM 1: 12 completed", val("vgpu_vm_requests_completed", "_total", vm_uuid=vm1) == 12)
out("VM 2: 3 completed, 1 rejected", val("vgpu_vm_requests_completed", "_total", vm_uuid=vm2) == 3
    and val("vgpu_vm_requests_rejected", "_total", vm_uuid=vm2) == 1)
out("VM 3: nothing", val("vgpu_vm_requests_submitted", "_total", vm_uuid=vm3) == 0)
out("VM 2's budgets: each listed, none refused",
    len([s for s in fam["vgpu_vm_budget_refusals"].samples if s.labels["vm_uuid"] == vm2]) >= 5
    and val("vgpu_vm_budget_refusals", "_total", vm_uuid=vm2, budget="bytes") == 0)
# sgemm 64: inputs A, B and C of 64 x 64 floats, output C.
out("VM 1's bytes: 12 x 48 KiB in, 12 x 16 KiB out",
    val("vgpu_vm_received_bytes", "_total", vm_uuid=vm1) == 12 * 49152
    and val("vgpu_vm_sent_bytes", "_total", vm_uuid=vm1) == 12 * 16384)
# The histograms: cumulative, +Inf = _count = the requests answered.
for vm, n in ((vm1, 12), (vm2, 3)):
    for h in ("vgpu_vm_queue_wait_seconds", "vgpu_vm_exec_seconds"):
        b = sorted((float(s.labels["le"]), s.value) for s in fam[h].samples
                   if s.name == h + "_bucket" and s.labels["vm_uuid"] == vm)
        mono = all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1))
        out("%s of %s: %d buckets, cumulative, +Inf = count = %d" % (h, vm[-1], len(b), n),
            len(b) == 24 and mono and b[-1][0] == float("inf") and b[-1][1] == n
            and val(h, "_count", vm_uuid=vm) == n and val(h, "_sum", vm_uuid=vm) > 0)
out("VM 1's GPU time > 0", val("vgpu_vm_gpu_seconds", "_total", vm_uuid=vm1) > 0)
out("VM 2's quota 64 MiB and rate limit 0.5 s/s",
    val("vgpu_vm_memory_quota_bytes", vm_uuid=vm2) == 64 << 20
    and val("vgpu_vm_rate_limit_gpu_seconds_per_second", vm_uuid=vm2) == 0.5)
info = [s.labels for s in fam["vgpu_vm_info"].samples if s.labels["vm_uuid"] == vm1]
out("VM 1's info: its name with a quote and a backslash, read back as it is",
    len(info) == 1 and info[0]["vm_name"] == 'web "blue" \\ 1' and info[0]["pool"] == "A"
    and info[0]["priority"] == "high" and info[0]["vm_id"] == "1")
out("pools A and B: GPU time, weight, cap",
    val("vgpu_pool_gpu_seconds", "_total", pool="A") > 0 and val("vgpu_pool_weight", pool="B") == 100
    and val("vgpu_pool_cap_ratio", pool="A") == 1)
out("GPU 0's busy time > 0", val("vgpu_gpu_busy_seconds", "_total", gpu="0") > 0)
out("the mediator's info", val("vgpu_mediator_info", backend="cpu") == 1)
EOF
sed 's/^/# /' "$T/checks"
n_ok=$(grep -c '^ok ' "$T/checks" || true)
n_bad=$(grep -vc '^ok ' "$T/checks" || true)
[ "$n_bad" = 0 ] && [ "$n_ok" = 17 ] && pass "Prometheus' parser: $n_ok checks of the figures" ||
	fail "$n_bad of the figures wrong or unreadable (see above)"
# Label names and metric names as Prometheus' conventions say.
grep -v '^#' "$T/metrics" | grep -vqE '^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [-+0-9.eInf]+$' &&
	fail "a line that is not name{labels} value" || pass "every sample line is name{labels} value"
grep -E '^# TYPE .* counter$' "$T/metrics" | grep -vq '_total counter$' &&
	fail "a counter not named _total" || pass "counters end in _total"
# The Grafana dashboard (docs/) asks only for metrics the mediator gives,
# and for the agent's NVML families (vgpu_gpu_info, _memory_*_bytes,
# _utilization_ratio: test-agent-nvml.sh and, on a GPU, bench/device-agent.sh
# check those).
missing=$(dashboard_missing "$T/metrics" 'vgpu_gpu_(info|memory_(total|used)_bytes|utilization_ratio)')
[ -z "$missing" ] && pass "the Grafana dashboard's metrics of the mediator all exist" ||
	fail "the dashboard uses metrics that do not exist: $missing"
# The stats still answer beside it.
stats | jq -e '.vms | length == 3' >/dev/null && pass "stats beside metrics" || fail "stats"
e2e_finish
