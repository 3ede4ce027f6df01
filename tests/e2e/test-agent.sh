#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-agent against the real mediator and registry, with curl: every
# route; writes seen by vgpu-admin (the same registry and library) and by
# the running mediator; /metrics read by Prometheus' parser; every kind of
# bad input gets its 4xx and changes nothing; TCP needs the token; the
# agent restarted while the mediator runs; the mediator gone.
. "$(dirname "$0")/lib.sh"
: "${VGPU_AGENT_BIN:?}"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

vm 1 A high; vm 2 B low
start_mediator --set cpu_threads=1
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 1)" vector-add --repeat 5 >/dev/null

ASOCK=$T/agent.sock
TOKEN=tok-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
APID=""
start_agent() {
	"$VGPU_AGENT_BIN" --db "$DB" --run-dir "$RUN" --socket "$ASOCK" \
		--listen "127.0.0.1:$PORT" --token-file "$T/token" 2>>"$T/agent.log" &
	APID=$!
	for _ in $(seq 200); do [ -S "$ASOCK" ] && curl -s --unix-socket "$ASOCK" http://a/v1/health >/dev/null && return 0; sleep 0.05; done
	fail "the agent did not start: $(cat "$T/agent.log")"
	return 1
}
stop_agent() { kill -TERM "$APID"; local rc=0; wait "$APID" || rc=$?; APID=""; return "$rc"; }
trap 'if [ -n "$APID" ]; then kill -9 "$APID" 2>/dev/null; fi; cleanup' EXIT
start_agent

# api METHOD PATH [BODY]: the status; the body in $T/body.
api() {
	if [ $# -ge 3 ]; then
		curl -s --unix-socket "$ASOCK" -o "$T/body" -w '%{http_code}' -X "$1" \
			-H 'Content-Type: application/json' --data-binary "$3" "http://agent$2"
	else
		curl -s --unix-socket "$ASOCK" -o "$T/body" -w '%{http_code}' -X "$1" "http://agent$2"
	fi
}
body() { jq -r "$1" "$T/body"; }
expect() { # expect STATUS METHOD PATH [BODY] -- WHAT
	local want=$1; shift
	local what=${!#} got
	got=$(api "${@:1:$(($# - 1))}") || true
	[ "$got" = "$want" ] && pass "$what ($want)" || fail "$what: $got, not $want: $(head -c 300 "$T/body")"
}
U1=$(uuid 1) U2=$(uuid 2) U3=$(uuid 3) U4=$(uuid 4)

[ "$(stat -c %a "$ASOCK")" = 600 ] && pass "the socket is mode 0600" || fail "socket mode $(stat -c %a "$ASOCK")"

# ---- reads ----
expect 200 GET /v1/health "health"
[ "$(body .status)" = ok ] && [ "$(body .mediator.up)" = true ] && [ "$(body .registry.up)" = true ] &&
	pass "health: ok, mediator up, registry up" || fail "health: $(cat "$T/body")"
expect 200 GET /v1/host "host"
[ "$(body .vm_count)" = 2 ] && [ "$(body '[.pools[].pool_id] | join(",")')" = A,B ] &&
	[ "$(body .mediator.backend)" = cpu ] && pass "host: 2 VMs, pools A and B, the mediator's backend" ||
	fail "host: $(cat "$T/body")"
expect 200 GET /v1/gpus "GPUs"
[ "$(body '.[0].gpu')" = 0 ] && [ "$(body '.[0].pools | join(",")')" = A,B ] &&
	pass "GPU 0, used by pools A and B" || fail "gpus: $(cat "$T/body")"
expect 200 GET /v1/vms "VMs"
[ "$(body 'length')" = 2 ] && [ "$(body ".[] | select(.vm_uuid == \"$U1\") | .live.completed")" = 5 ] &&
	pass "two VMs, VM 1 with its live figures (5 completed)" || fail "vms: $(head -c 400 "$T/body")"
expect 200 GET "/v1/vms/$U1" "one VM"
[ "$(body .vm_name)" = vm1 ] && [ "$(body .priority_name)" = high ] && pass "VM 1: its name and priority" ||
	fail "vm: $(cat "$T/body")"
expect 200 GET "/v1/vms/${U1^^}" "a UUID in upper case finds it"
expect 200 GET /v1/pools "pools"
expect 200 GET /v1/pools/a "a pool by its letter, either case"
[ "$(body .pool_id)" = A ] && [ "$(body .vm_count)" = 1 ] && pass "pool A: one VM" || fail "pool: $(cat "$T/body")"

# ---- writes, seen by vgpu-admin and the mediator ----
expect 201 POST /v1/vms "{\"vm_uuid\": \"$U3\", \"vm_name\": \"web\", \"pool_id\": \"B\", \"priority\": \"medium\"}" "register a VM"
[ "$(admin show-vm --vm-uuid "$U3" --json | jq -c '{vm_name, pool_id, priority}')" = '{"vm_name":"web","pool_id":"B","priority":1}' ] &&
	pass "vgpu-admin sees it as registered" || fail "vgpu-admin show-vm: $(admin show-vm --vm-uuid "$U3" --json)"
diff <(admin show-vm --vm-uuid "$U3" --json) <(jq 'del(.live)' "$T/body") >/dev/null &&
	pass "the agent's VM is vgpu-admin's JSON, field for field" || fail "the JSON differs from vgpu-admin's"
expect 200 PATCH "/v1/vms/$U3" '{"priority": "high", "weight": 300, "rate_limit_ms": 250, "mem_quota_mib": 512, "vm_name": "web-2"}' "change its settings"
[ "$(admin show-vm --vm-uuid "$U3" --json | jq -c '[.priority, .weight, .rate_limit_ms, .mem_quota_mib, .vm_name]')" = '[2,300,250,512,"web-2"]' ] &&
	pass "vgpu-admin sees the new settings" || fail "show-vm after PATCH"
live_rate() { vm_stat_is 3 .sched.rate_limit_ms 250; }
wait_for "the running mediator applies them (VM 3's rate limit 250)" 20 live_rate
expect 200 PATCH "/v1/vms/$U3" '{"pool_id": "A"}' "move it to pool A (live)"
expect 201 POST /v1/pools '{"pool_id": "C", "pool_name": "batch", "weight": 50, "cap_percent": 40, "gpus": "0"}' "create pool C"
[ "$(body '[.weight, .cap_percent, .gpus] | map(tostring) | join(",")')" = 50,40,0 ] && pass "pool C as asked" ||
	fail "pool C: $(cat "$T/body")"
expect 200 PATCH /v1/pools/C '{"weight": 60, "description": "nightly"}' "change pool C"
[ "$(admin show-pool --pool-id C --json | jq -c '[.weight, .description]')" = '[60,"nightly"]' ] &&
	pass "vgpu-admin sees pool C's change" || fail "show-pool C: $(admin show-pool --pool-id C --json)"
expect 201 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"pool_id\": \"C\", \"vm_id\": 40}" "a VM in pool C, vm_id 40"
expect 409 DELETE /v1/pools/C "a pool with a VM cannot go"
expect 204 DELETE "/v1/vms/$U4" "remove that VM"
expect 404 GET "/v1/vms/$U4" "then it is not found"
expect 204 DELETE /v1/pools/C "delete pool C"
expect 400 DELETE /v1/pools/A "the default pools stay"

# ---- bad input: 4xx, nothing changes ----
before=$(admin list-vms --json; admin list-pools --json)
expect 400 POST /v1/vms 'not json' "a body that is not JSON"
expect 400 POST /v1/vms '[1, 2]' "a body that is not an object"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_uuid\": \"$U4\"}" "duplicate keys"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"color\": 1}" "an unknown field"
expect 400 POST /v1/vms '{"vm_uuid": "00000000-0000-4000-8000-00000000000g"}' "a bad UUID"
expect 400 POST /v1/vms '{"vm_name": "x"}' "no UUID"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_name\": \"bell\\u0007\"}" "a name with a control character"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_name\": 7}" "a name that is not a string"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"pool_id\": \"AA\"}" "a pool of two letters"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"priority\": \"urgent\"}" "an unknown priority"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"priority\": 7}" "a priority out of range"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_id\": 0}" "vm_id 0"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_id\": \"3\"}" "a vm_id that is a string"
expect 400 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_id\": 99999999999}" "a vm_id past the largest"
expect 409 POST /v1/vms "{\"vm_uuid\": \"$U1\"}" "a UUID registered already"
expect 409 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"vm_id\": 1}" "a vm_id taken"
expect 404 POST /v1/vms "{\"vm_uuid\": \"$U4\", \"pool_id\": \"Q\"}" "a pool that does not exist"
expect 400 PATCH "/v1/vms/$U1" '{"weight": 0}' "weight 0"
expect 400 PATCH "/v1/vms/$U1" '{"weight": 10001}' "weight past 10000"
expect 400 PATCH "/v1/vms/$U1" '{"weight": 1.5}' "a weight that is not an integer"
expect 400 PATCH "/v1/vms/$U1" '{"rate_limit_ms": -1}' "a negative rate limit"
expect 400 PATCH "/v1/vms/$U1" '{"mem_quota_mib": 99999999999}' "a memory quota past 16 TiB"
expect 400 PATCH "/v1/vms/$U1" '{"vm_id": 5}' "vm_id cannot change here"
grep -q "vgpu-admin set-vm-id" "$T/body" && pass "and says where it can" || fail "vm_id message: $(cat "$T/body")"
expect 404 PATCH "/v1/vms/$U4" '{"weight": 5}' "a VM not registered"
expect 400 PATCH "/v1/vms/$U1" '' "no body"
expect 400 PATCH "/v1/vms/$U1" '{}' "an empty object (nothing to change)"
expect 400 PATCH /v1/pools/A '{}' "an empty object for a pool"
expect 409 POST /v1/pools '{"pool_id": "A"}' "pool A exists: 409"
[ "$(body .error)" != null ] && pass "with a message" || fail "no message"
expect 400 POST /v1/pools '{"pool_id": "D", "gpus": "99"}' "a GPU number out of range"
expect 400 POST /v1/pools '{"pool_id": "D", "cap_percent": 0}' "cap 0"
expect 400 POST /v1/pools '{"weight": 5}' "a pool without its id"
expect 404 GET /v1/vms/not-a-uuid "a path that is no UUID"
expect 404 GET /v1/pools/7 "a path that is no pool"
expect 404 GET /v1/nothing "an unknown route"
expect 405 PUT /v1/vms "a method a route does not take"
expect 405 DELETE /v1/host "DELETE on the host"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
# Announced (Content-Length; curl waits for the verdict before sending it)...
got=$(curl -s --unix-socket "$ASOCK" -o "$T/body" -w '%{http_code}' -X POST -H 'Expect: 100-continue' \
	--data-binary @"$T/big" http://agent/v1/vms) || true
expect_eq "$got" 413 "a body over 64 KiB, announced: 413"
# ... or sent in chunks, never kept.
got=$(curl -s --unix-socket "$ASOCK" -o "$T/body" -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/big" http://agent/v1/vms) || true
expect_eq "$got" 413 "a body over 64 KiB in chunks: 413"
after=$(admin list-vms --json; admin list-pools --json)
[ "$before" = "$after" ] && pass "none of the bad requests changed the registry" || fail "the registry changed"
expect 200 GET "/v1/vms/$U1" "and the agent still answers"

# ---- /metrics ----
code=$(curl -s --unix-socket "$ASOCK" -o "$T/metrics" -w '%{http_code} %{content_type}' http://agent/metrics)
expect_eq "$code" "200 text/plain; version=0.0.4; charset=utf-8" "/metrics: Prometheus' text type"
n=$($PY -c 'import sys
from prometheus_client.parser import text_string_to_metric_families
f = {m.name: m for m in text_string_to_metric_families(open(sys.argv[1]).read())}
s = [x for x in f["vgpu_vm_requests_completed"].samples if x.labels["vm_uuid"] == sys.argv[2]]
print(len(f), int(s[0].value))' "$T/metrics" "$U1")
[ "${n%% *}" -ge 20 ] && [ "${n##* }" = 5 ] && pass "Prometheus' parser reads it: ${n%% *} families, VM 1's 5 requests" ||
	fail "metrics: $n"

# ---- docs/openapi.yaml: every path and method it lists is served ----
$PY - "$VGPU_SRC/docs/openapi.yaml" >"$T/routes" <<'EOF'
import sys, yaml
for path, ops in yaml.safe_load(open(sys.argv[1]))["paths"].items():
    for m in ops:
        if m != "parameters":
            print(m.upper(), path)
EOF
n=0; bad=""
while read -r m p; do
	p=${p//\{pool_id\}/Y}; p=${p//\{vm_uuid\}/$(uuid 9)}
	case $m in
	POST|PATCH) got=$(api "$m" "$p" '{}') || true ;;
	*) got=$(api "$m" "$p") || true ;;
	esac
	n=$((n + 1))
	if [ "$got" = 405 ] || grep -q "no such route" "$T/body"; then bad="$bad $m $p ($got)"; fi
done <"$T/routes"
[ "$n" -ge 14 ] && [ -z "$bad" ] && pass "the $n operations of docs/openapi.yaml are all served" ||
	fail "operations not served:$bad ($n listed)"

# ---- TCP: the token ----
tcp() { curl -s -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:$PORT/v1/health"; }
expect_eq "$(tcp)" 401 "TCP without a token: 401"
expect_eq "$(tcp -H 'Authorization: Bearer wrong-token-0123456789')" 401 "with a wrong token: 401"
expect_eq "$(tcp -H "Authorization: Bearer ${TOKEN}x")" 401 "with the token and one more character: 401"
expect_eq "$(tcp -H "Authorization: Bearer $TOKEN")" 200 "with the token: 200"
expect_eq "$(tcp -H "authorization: bearer $TOKEN")" 200 "the scheme in lower case (RFC 7235): 200"
got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data "{\"vm_uuid\": \"$U4\"}" "http://127.0.0.1:$PORT/v1/vms")
expect_eq "$got" 401 "a POST with a body but no token: 401"
[ -z "$(admin show-vm --vm-uuid "$U4" --json 2>/dev/null)" ] && pass "and nothing registered" || fail "registered"

# ---- the command line ----
rc=0; "$VGPU_AGENT_BIN" --listen 127.0.0.1:1 >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "--listen without --token-file: usage error"
chmod 644 "$T/token"
rc=0; "$VGPU_AGENT_BIN" --socket "$T/x.sock" --listen 127.0.0.1:1 --token-file "$T/token" 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "a token file others can read is refused"
grep -q "only its owner can read" "$T/err" && pass "and says why" || fail "message: $(cat "$T/err")"
chmod 600 "$T/token"
printf 'short\n' >"$T/short"; chmod 600 "$T/short"
rc=0; "$VGPU_AGENT_BIN" --socket "$T/x.sock" --listen 127.0.0.1:1 --token-file "$T/short" 2>/dev/null || rc=$?
expect_eq "$rc" 1 "a token under 16 characters is refused"
rc=0; "$VGPU_AGENT_BIN" --listen nowhere:80 --token-file "$T/token" 2>/dev/null || rc=$?
expect_eq "$rc" 2 "--listen with a name, not an address: usage error"
touch "$T/plain"
rc=0; "$VGPU_AGENT_BIN" --socket "$T/plain" 2>/dev/null || rc=$?
expect_eq "$rc" 1 "a file that is not a socket at --socket is left alone"
[ -f "$T/plain" ] && pass "and is still there" || fail "the file was replaced"
"$VGPU_AGENT_BIN" --help | grep -q -- "--token-file" && pass "--help" || fail "--help"

# ---- a mediator that answers badly: never half an answer ----
mkdir -p "$T/badrun"
$PY - "$T/badrun/control.sock" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(64)
    c.sendall(b'# HELP vgpu_x half\nvgpu_x{vm_uuid="ab')  # and closes mid-line
    c.close()
EOF
BAD=$!
for _ in $(seq 50); do [ -S "$T/badrun/control.sock" ] && break; sleep 0.05; done
"$VGPU_AGENT_BIN" --db "$DB" --run-dir "$T/badrun" --socket "$T/bad.sock" 2>>"$T/agent.log" & BADA=$!
for _ in $(seq 100); do [ -S "$T/bad.sock" ] && break; sleep 0.05; done
code=$(curl -s --unix-socket "$T/bad.sock" -o "$T/body" -w '%{http_code}' http://agent/v1/health)
expect_eq "$code" 503 "a mediator whose stats are cut off: health 503"
kill "$BAD" 2>/dev/null || true
$PY - "$T/badrun/control.sock" <<'EOF' &
import os, socket, sys
os.unlink(sys.argv[1])
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(64); c.close()   # no answer at all
EOF
BAD=$!
sleep 0.3
code=$(curl -s --unix-socket "$T/bad.sock" -o "$T/body" -w '%{http_code}' http://agent/metrics)
expect_eq "$code" 503 "a mediator that closes without an answer: /metrics 503, not an empty 200"
kill "$BAD" "$BADA" 2>/dev/null || true
wait "$BADA" 2>/dev/null || true

# ---- restarts ----
rc=0; stop_agent || rc=$?
expect_eq "$rc" 0 "the agent stops on SIGTERM, exit 0"
[ ! -e "$ASOCK" ] && pass "and removes its socket" || fail "socket left behind"
start_agent && expect 200 GET /v1/health "started again while the mediator runs: healthy"
stop_mediator
expect 503 GET /v1/health "the mediator gone: 503"
[ "$(body .status)" = degraded ] && [ "$(body .mediator.up)" = false ] && pass "health says degraded, mediator down" ||
	fail "health: $(cat "$T/body")"
expect 503 GET /metrics "/metrics: 503 without the mediator"
expect 200 GET /v1/vms "the registry's routes still answer"
[ "$(body '.[0].live')" = null ] && pass "with no live figures" || fail "live: $(body '.[0].live')"
stop_agent || true
if grep -q "Sanitizer\|runtime error:" "$T/agent.log"; then
	fail "sanitizer report in the agent's log"; cat "$T/agent.log"
else
	pass "no sanitizer report in the agent's log"
fi
e2e_finish
