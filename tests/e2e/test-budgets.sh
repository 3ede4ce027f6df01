#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-VM budgets against a hostile socket client (issue 9): answers it
# reads late or never, payloads announced and never sent, headers left
# half-written, and a request refused from its head alone. The mediator's memory stays within
# the VM's budget plus a stated margin, every request it took is answered
# exactly once, the stalled connections are closed at the deadline, and the
# other VM (and the hostile VM's other connections) are served meanwhile.
. "$(dirname "$0")/lib.sh"
# Under ASan freed memory waits in a quarantine (256 MiB by default) before
# it is reused; a small one keeps the memory figures about the mediator.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"
HC=$VGPU_TESTS/e2e/hostile_client.py

vm 1 A high; vm 2 B low
start_mediator --set vm_buffer_mib=64 --set msg_timeout_ms=2000
S1=$(sock 1); S2=$(sock 2)
expect_eq "$(python3 "$RAW" "$S1" ok 16)" "0" "warm-up request served"
base=$(rss_kb)

# 1. Answers not read: 10,000 vector_adds of 16 Ki floats (128 KiB in,
# 64 KiB out each; 1.9 GiB in all) sent without reading, then read after
# 0.5 s (within the 2 s deadline).
python3 "$HC" "$S1" unread 10000 16384 0.5 >"$T/unread.out" 2>&1 &
hp=$!
for _ in $(seq 200); do grep -q '^sent' "$T/unread.out" && break; sleep 0.05; done
peak=$base
for _ in $(seq 4); do r=$(rss_kb); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.1; done
expect_eq "$(python3 "$RAW" "$S2" ok 1000)" "0" "the other VM served while VM 1 does not read"
if "$VGPU_SUBMIT_BIN" --transport "unix:$S2" vector-add --n 4096 --verify --repeat 50 >/dev/null 2>&1; then
	pass "the other VM: 50 requests verified meanwhile"; else fail "the other VM's requests"; fi
wait $hp && pass "every request VM 1 sent answered exactly once" || fail "unread client: $(cat "$T/unread.out")"
sent=$(awk '/^sent/ { print $2 }' "$T/unread.out")
statuses=$(tail -n 1 "$T/unread.out")
echo "# sent $sent of 10000; answers: $statuses; RSS $base KiB -> peak $peak KiB"
[ "$sent" -lt 10000 ] && pass "back-pressure: the mediator stopped reading ($sent of 10000 sent)" \
	|| fail "all 10000 requests were read"
# Margin: the VM's buffer budget (64 MiB) plus 40 MiB for the rest.
grow=$(( (peak - base) / 1024 ))
[ "$grow" -lt $((64 + 40)) ] && pass "resident memory grew $grow MiB (bound 64 + 40)" \
	|| fail "resident memory grew $grow MiB (bound 104)"
echo "$statuses" | tr ' ' '\n' | grep -v '^$' | while IFS== read -r st n; do
	case "$st" in 0|-9) ;; *) echo "unexpected status $st ($n)" ;; esac
done >"$T/bad-status"
[ ! -s "$T/bad-status" ] && pass "answers are results or VGPU_BUSY only" || fail "$(cat "$T/bad-status")"

# ... and never read: the answers stop moving, and after the deadline the
# connection is closed and what it held comes back, while the client still
# holds its end.
python3 "$HC" "$S1" unread 10000 16384 5 >"$T/unread2.out" 2>&1 &
hp=$!
wait_for "a client that never reads is cut off" 6 grep -q "answers not read in time" "$T/mediator.log"
wait_for "its buffers given back" 5 vm_stat_is 1 .budget.bytes.held 0
wait $hp && fail "the cut-off client read all its answers" \
	|| pass "the cut-off client lost its unread answers: $(tail -n 1 "$T/unread2.out")"

# 2. Refused from its head: a bad checksum on a 256 MiB request is answered
# before any of its payload is sent; the payload is then skipped and the
# connection goes on.
read -r st ms good <<<"$(python3 "$HC" "$S1" head-first 256)"
expect_eq "$st" "-14" "bad checksum answered from the head"
[ "$ms" != "none" ] && [ "$ms" -lt 1000 ] && pass "answered in $ms ms with no payload sent (bound 1000)" \
	|| fail "head-first answer took $ms ms"
expect_eq "$good" "good=0" "the payload skipped, the next request served"

# 3. Payloads announced and stalled: 7 connections announce 16 MiB each
# (16 in + 8 out: 24 MiB of the 64 MiB budget). Two fit; the other five are
# refused busy at once, and all seven are closed at the deadline (2 s,
# checked every 500 ms). Another connection of VM 1 is served meanwhile.
python3 "$HC" "$S1" stall 7 16 5 >"$T/stall.out" 2>&1 &
hp=$!
sleep 1.5
expect_eq "$(python3 "$RAW" "$S1" ok 1000)" "0" "VM 1's other connection served during the stall"
wait $hp
expect_eq "$(cat "$T/stall.out")" "answered=5 closed=7 open=0" \
	"stalled payloads: 5 refused at once (budget), all 7 closed at the deadline"
read -r st ms <<<"$(python3 "$HC" "$S1" stall-header 6)"
expect_eq "$st" "closed" "half a header: closed"
[ "${ms:-0}" -ge 1900 ] && [ "${ms:-99999}" -lt 4500 ] && pass "closed after $ms ms (deadline 2000, checked every 500)" \
	|| fail "half a header closed after $ms ms"

# 4. The budget in the statistics: its limit, refusals, nothing held at rest.
wait_for "VM 1 holds no buffers" 10 vm_stat_is 1 .budget.bytes.held 0
expect_eq "$(vm_stat 1 .budget.bytes.limit)" "$((64 << 20))" "buffer limit shown (64 MiB)"
[ "$(vm_stat 1 .budget.bytes.refused)" -ge 5 ] && pass "buffer refusals counted" \
	|| fail "refusals: $(vm_stat 1 .budget)"
expect_eq "$(vm_stat 1 .budget.connections.held)" "0" "no connection held"
expect_eq "$(vm_stat 2 .budget.bytes.refused)" "0" "the other VM was refused nothing"
admin stats --run-dir "$RUN" >"$T/stats.txt"
grep -q "BUDGETS (held/limit)" "$T/stats.txt" && grep -q "0.0/64" "$T/stats.txt" \
	&& pass "vgpu-admin stats shows the budgets" || fail "stats text: $(cat "$T/stats.txt")"
grep -q "a message not completed in time" "$T/mediator.log" && pass "deadline logged" \
	|| fail "deadline not logged"
e2e_finish
