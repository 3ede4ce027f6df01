#!/bin/bash
# SPDX-License-Identifier: MIT
# The spool transport, the seed's shared directory made safe: a directory per
# VM, requests published by rename, responses the same way; hostile files get
# error responses; and kill -9 of the mediator under load, then a restart:
# every accepted request is answered exactly once.
. "$(dirname "$0")/lib.sh"
SC="python3 $VGPU_TESTS/e2e/spool_client.py"

vm 1 A high; vm 2 B low
start_mediator --set spool_poll_ms=50
D1=$SPOOL/$(uuid 1); D2=$SPOOL/$(uuid 2)
# The control socket is made last: once start_mediator saw it, they exist.
[ -d "$D1/req" ] && [ -d "$D1/resp" ] && [ -d "$D2/req" ] &&
	pass "a spool directory per VM with req/ and resp/" || fail "spool directories missing"
[ -d "$SPOOL/.journal" ] && pass "journal outside the VMs' directories" || fail "no journal"

id() { printf '%016x' "$1"; }
$SC "$D1" put "$(id 1)" 1000
expect_eq "$($SC "$D1" wait "$(id 1)" 10)" "0" "vector_add through the spool"
$SC "$D2" put-vm-id "$(id 2)" 1
expect_eq "$($SC "$D2" wait "$(id 2)" 10)" "-10" "request naming another VM's id: VGPU_DENIED"
$SC "$D1" put-symlink "$(id 3)"
expect_eq "$($SC "$D1" wait "$(id 3)" 10)" "-14" "symlinked request: VGPU_PROTOCOL"
[ ! -L "$D1/req/$(id 3).req" ] && pass "symlink removed, not followed" || fail "symlink still there"
$SC "$D1" put-dir "$(id 7)"
expect_eq "$($SC "$D1" wait "$(id 7)" 10)" "-14" "a directory published as a request: VGPU_PROTOCOL"
sleep 0.3
[ ! -e "$D1/req/$(id 7).req" ] && [ ! -e "$D1/resp/$(id 7).resp" ] && pass "moved out of req/ and answered once" ||
	fail "directory request still there or answered again"
$SC "$D1" put-garbage "$(id 4)"
expect_eq "$($SC "$D1" wait "$(id 4)" 10)" "-14" "garbage request: VGPU_PROTOCOL"
$SC "$D1" put-oversize "$(id 5)" 2
expect_eq "$($SC "$D1" wait-op "$(id 5)" 10)" "-13 2" "oversized saxpy file: VGPU_LIMIT, answered as a saxpy"
$SC "$D1" put-badname "not-a-request"
gone() { [ ! -e "$D1/req/not-a-request" ]; }
wait_for "unexpected name removed" 5 gone
$SC "$D2" put "$(id 6)" 10
expect_eq "$($SC "$D2" wait "$(id 6)" 10)" "0" "the other VM is served"
expect_eq "$(ls -A "$SPOOL/.journal/$(uuid 1)" | wc -l)" "0" "journal empty once everything is answered"

# The real guest library over the spool, several requests in flight.
for op in "vector-add --n 100000" "saxpy --n 4097" "sgemm --m 33 --n 17 --k 65" "reduce-sum --n 1000"; do
	# shellcheck disable=SC2086
	if "$VGPU_SUBMIT_BIN" --transport "spool:$D2" $op --verify --repeat 10 --depth 4 >/dev/null 2>"$T/sub.err"; then
		pass "vgpu-submit over the spool: ${op%% *} verified"
	else
		fail "vgpu-submit over the spool: ${op%% *}: $(cat "$T/sub.err")"
	fi
done
expect_eq "$(ls -A "$D2/req" "$D2/resp" | grep -vc ':$\|^$')" "0" "req/ and resp/ empty afterwards"

# Leftovers of dead clients: old temporary files and uncollected answers go,
# fresh ones stay.
stop_mediator
start_mediator --set spool_poll_ms=50 --set spool_stale_s=60
: >"$D2/req/.tmp-dead-client"; touch -d '2 hours ago' "$D2/req/.tmp-dead-client"
: >"$D2/resp/00000000000000aa.resp"; touch -d '2 hours ago' "$D2/resp/00000000000000aa.resp"
: >"$D2/req/.tmp-live-client"; : >"$D2/resp/00000000000000bb.resp"
stale_gone() { [ ! -e "$D2/req/.tmp-dead-client" ] && [ ! -e "$D2/resp/00000000000000aa.resp" ]; }
wait_for "stale temporary file and uncollected answer removed" 3 stale_gone
[ -e "$D2/req/.tmp-live-client" ] && [ -e "$D2/resp/00000000000000bb.resp" ] && pass "fresh files kept" || fail "fresh files removed"
rm -f "$D2/req/.tmp-live-client" "$D2/resp/00000000000000bb.resp"

# kill -9 under load, then a restart.
stop_mediator
start_mediator --set spool_poll_ms=50 --set cpu_threads=1 --set max_inflight=1
ids=""
for i in $(seq 100 119); do ids="$ids${ids:+,}$(id "$i")"; done
$SC "$D1" put-sgemm-many "$(id 100)" 20 "${VGPU_E2E_SGEMM:-1024}"
journaled() { [ "$(ls "$SPOOL/.journal/$(uuid 1)" | wc -l)" -ge 10 ]; }
wait_for "requests accepted into the journal" 30 journaled
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true; MPID=""
left=$(ls "$SPOOL/.journal/$(uuid 1)" | wc -l)
echo "# killed with $left requests journaled and unanswered"
[ "$left" -gt 0 ] && pass "requests were pending at kill -9" || fail "nothing pending: the test proves nothing"
start_mediator --set spool_poll_ms=50
out=$($SC "$D1" collect "$ids" 300)
expect_eq "$out" "0=20" "all 20 requests answered exactly once after the restart"
grep -q "accepted requests queued again" "$T/mediator.log" && pass "restart re-queued the journal" || fail "no recovery logged"
expect_eq "$(ls -A "$D1/resp" | wc -l)" "0" "no response left over (none answered twice)"
expect_eq "$(ls -A "$SPOOL/.journal/$(uuid 1)" | wc -l)" "0" "journal empty"

# A second mediator on the same spool (another run directory) is refused.
set +e
"$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$T/run2" --spool-dir "$SPOOL" --backend cpu 2>"$T/second.err"
rc=$?; set -e
expect_eq "$rc" "1" "second mediator on the same spool refused"
grep -q "another vgpu-mediator serves it" "$T/second.err" && pass "says so" || fail "$(cat "$T/second.err")"
e2e_finish
