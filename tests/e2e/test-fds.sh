#!/bin/bash
# SPDX-License-Identifier: MIT
# File descriptors (issue 9): the mediator raises RLIMIT_NOFILE to what its
# settings need, says so when it cannot, and when accept() fails for want
# of descriptors it rests the listening socket instead of spinning a core.
# Here it runs without CAP_SYS_RESOURCE under a hard limit of 48, and a
# client opens more connections than that allows.
. "$(dirname "$0")/lib.sh"
HC=$VGPU_TESTS/e2e/hostile_client.py

vm 1 A high; vm 2 B low
cat >"$T/wrap.sh" <<'WRAP'
#!/bin/bash
ulimit -n 48
exec setpriv --bounding-set=-sys_resource -- "$@"
WRAP
chmod +x "$T/wrap.sh"
MEDIATOR_WRAP="$T/wrap.sh" start_mediator --set max_conns_per_vm=200
S1=$(sock 1); S2=$(sock 2)
grep -q "file descriptors: the settings need up to .*, the limit is 48" "$T/mediator.log" \
	&& pass "the unmet fd budget is reported at start" || fail "no fd budget warning"
expect_eq "$(stats | jq .mediator.fds.limit)" "48" "the limit in the statistics"
[ "$(stats | jq .mediator.fds.need)" -gt 1000 ] && pass "the need in the statistics" \
	|| fail "fd need: $(stats | jq .mediator.fds)"

# Up to 40 connections: a few fit under the limit, then the listen backlog
# (16) fills while accept() fails with EMFILE, and connect() is refused.
python3 "$HC" "$S1" conns 40 5 >"$T/conns.out" 2>&1 &
hp=$!
for _ in $(seq 100); do grep -q opened "$T/conns.out" && break; sleep 0.05; done
opened=$(awk '{ print $2 }' "$T/conns.out")
[ "${opened:-0}" -ge 20 ] && pass "$opened connections made, the rest refused by a full backlog" \
	|| fail "connections: $(cat "$T/conns.out")"
sleep 0.5
t0=$(cpu_ticks)
sleep 2
used=$(( $(cpu_ticks) - t0 ))
# Margin: 20 ticks (0.2 s, a tenth of one core) in 2 s; a spinning loop
# takes all 200.
[ "$used" -lt 20 ] && pass "no spin while accept fails: $used ticks of CPU in 2 s (bound 20)" \
	|| fail "the mediator used $used ticks of CPU in 2 s while accept failed"
n=$(grep -c "cannot accept a connection: Too many open files" "$T/mediator.log" || true)
# About 25 failed accepts in these 2.5 s; the guest's log budget is 10 per 10 s.
[ "$n" -ge 1 ] && [ "$n" -le 10 ] && pass "the failure is logged, rate-limited ($n lines)" \
	|| fail "accept failure logged $n times (want 1 to 10)"
wait $hp
# The client is gone: descriptors are free again, and new work is served.
wait_for "VM 1 accepted again" 10 python3 "$RAW" "$S1" ok 100
expect_eq "$(python3 "$RAW" "$S2" ok 100)" "0" "VM 2 served"
wait_for "every connection released" 10 vm_stat_is 1 .budget.connections.held 0
e2e_finish
