#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent's GPU figures from NVML (agent/nvml.c): with an NVML library
# on its path (vgpu's own libnvidia-ml.so.1 over the scripted host here,
# which answers the same calls as NVIDIA's: a device named "vgpu test
# device (H200-like)" at 00000000:19:00.0 with the VM's quota, 256 MiB, as
# its memory), /v1/gpus gives each GPU's model, PCI address and memory,
# /metrics its info and memory families, /v1/health says NVML is up;
# without one, the figures are null, health says why and stays ok.
. "$(dirname "$0")/lib.sh"
: "${VGPU_AGENT_BIN:?}" "${VGPU_NVML_DIR:?}" "${VGPU_CUDA_SHIM_DIR:?}" "${VGPU_CUDA_PEER:?}"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

vm 1 A high
start_mediator --set cpu_threads=1
python3 "$VGPU_CUDA_PEER" "$T/peer.sock" good >"$T/peer.log" 2>&1 & PEER=$!
for _ in $(seq 100); do grep -q ready "$T/peer.log" 2>/dev/null && break; sleep 0.05; done
APID=""
trap '[ -n "$APID" ] && kill "$APID" 2>/dev/null; cleanup' EXIT
# The library path without any directory that holds an NVML library.
no_nvml=$(tr ':' '\n' <<<"${LD_LIBRARY_PATH:-}" | while read -r d; do
	if [ -n "$d" ] && [ ! -e "$d/libnvidia-ml.so.1" ]; then printf '%s:' "$d"; fi; done)
agent() { # agent with|without: NVML on its library path, or not
	local lib="$no_nvml"
	[ "$1" = with ] && lib="$VGPU_NVML_DIR:$VGPU_CUDA_SHIM_DIR:$no_nvml"
	env LD_LIBRARY_PATH="${lib%:}" VGPU_TRANSPORT= \
		VGPU_CUDA_TRANSPORT="unix:$T/peer.sock" \
		"$VGPU_AGENT_BIN" --db "$DB" --run-dir "$RUN" --socket "$T/agent.sock" 2>>"$T/agent.log" &
	APID=$!
	for _ in $(seq 200); do [ -S "$T/agent.sock" ] && break; sleep 0.05; done
}
get() { curl -s --unix-socket "$T/agent.sock" -o "$T/body" -w '%{http_code}' "http://agent$1" || true; }
stop_agent() { kill -TERM "$APID"; wait "$APID" || true; APID=""; }

agent with
expect_eq "$(get /v1/gpus)" 200 "GET /v1/gpus"
expect_eq "$(jq -r '.[0] | [.model, .bus_id, .memory_total_bytes, .memory_used_bytes] | map(tostring) | join("|")' "$T/body")" \
	"vgpu test device (H200-like)|00000000:19:00.0|268435456|0" "GPU 0: its model, PCI address and memory from NVML"
expect_eq "$(jq -r '.[0] | [.served, .inflight, (.pools | join(","))] | map(tostring) | join("|")' "$T/body")" \
	"true|0|A,B" "beside what the mediator serves and the pools"
expect_eq "$(jq -r '.[0].utilization_percent' "$T/body")" null \
	"utilisation null: this NVML has no nvmlDeviceGetUtilizationRates"
expect_eq "$(get /v1/health)" 200 "health"
expect_eq "$(jq -r '[.nvml.up, .nvml.gpus] | map(tostring) | join(" ")' "$T/body")" "true 1" "health: NVML up, one GPU"
expect_eq "$(get /metrics)" 200 "/metrics"
cp "$T/body" "$T/metrics"
out=$($PY -c 'import sys
from prometheus_client.parser import text_string_to_metric_families
f = {m.name: m for m in text_string_to_metric_families(open(sys.argv[1]).read())}
i = f["vgpu_gpu_info"].samples[0].labels
print(i["gpu"], i["name"], i["bus_id"], int(f["vgpu_gpu_memory_total_bytes"].samples[0].value),
      int(f["vgpu_gpu_memory_used_bytes"].samples[0].value), "vgpu_vm_requests_completed" in f)' "$T/metrics")
expect_eq "$out" "0 vgpu test device (H200-like) 00000000:19:00.0 268435456 0 True" \
	"/metrics: the GPU's info and memory after the mediator's families, all read by Prometheus' parser"
# The dashboard's metrics, but the utilisation this NVML does not give.
missing=$(dashboard_missing "$T/metrics" vgpu_gpu_utilization_ratio)
[ -z "$missing" ] && pass "every metric of the Grafana dashboard from the agent (but utilisation)" ||
	fail "the dashboard's metrics missing from the agent:$missing"
stop_agent

agent without
expect_eq "$(get /v1/gpus)" 200 "without NVML: GET /v1/gpus"
expect_eq "$(jq -r '.[0] | [.model, .memory_total_bytes, .served] | map(tostring) | join("|")' "$T/body")" \
	"null|null|true" "the mediator's GPU, no model or memory"
expect_eq "$(get /v1/health)" 200 "health stays ok"
expect_eq "$(jq -r '.nvml.up' "$T/body")" false "and says NVML is not up"
jq -r '.nvml.error' "$T/body" | grep -q "libnvidia-ml.so.1" && pass "with why: $(jq -r '.nvml.error' "$T/body" | head -c 80)" ||
	fail "nvml error: $(jq -c .nvml "$T/body")"
expect_eq "$(get /metrics)" 200 "/metrics"
grep -q '^vgpu_gpu_info' "$T/body" && fail "GPU info without NVML" || pass "no GPU info families without NVML"
stop_agent
e2e_finish
