#!/bin/bash
# SPDX-License-Identifier: MIT
# Soak (issue 9): 8 VMs at once for 30 s. VM 8 is hostile in every way at
# once (answers never read, payloads announced and stalled, half headers,
# connection floods, storms of 64 MiB windows of changing sizes, refused heads with skipped
# payloads); VMs 1-7 run verified work over the socket, windows and the
# spool. Nothing of theirs is lost or refused, and afterwards the
# mediator's descriptors are back to where they were and its memory within
# a stated margin.
. "$(dirname "$0")/lib.sh"
# Under ASan freed memory waits in a quarantine (256 MiB by default) before
# it is reused; a small one keeps the memory figures about the mediator.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"
HC=$VGPU_TESTS/e2e/hostile_client.py
SECONDS_SOAK=${VGPU_SOAK_SECONDS:-30}

for i in 1 2 3 4 5 6 7 8; do vm $i A low; done
# Kept windows expire after 2 s here, so that "holds nothing" can be seen.
start_mediator --set vm_buffer_mib=128 --set msg_timeout_ms=1000 --set shm_max_mib=64 \
	--set window_keep_s=2
uri() {
	case $1 in
	1|2|3) echo "unix:$(sock "$1")" ;;
	4|5) echo "shm:$(sock "$1")" ;;
	*) echo "spool:$SPOOL/$(uuid "$1")" ;;
	esac
}
# One short round of everything first, so that the baseline has the
# mediator's arenas and threads as they are once warm.
python3 "$HC" "$(sock 8)" all 2 >/dev/null 2>&1 || true
for i in 1 2 3 4 5 6 7; do "$VGPU_SUBMIT_BIN" --transport "$(uri $i)" vector-add --n 4096 --verify >/dev/null; done
wait_for "VM 8 holds nothing after the warm-up" 20 vm_stat_is 8 '[.budget[].held] | add' 0
no_kept() { [ "$(stats | jq '[.vms[].windows.kept] | add')" = 0 ]; }
wait_for "no window kept after the warm-up" 10 no_kept
rss0=$(rss_kb); fds0=$(fd_count)

python3 "$HC" "$(sock 8)" all "$SECONDS_SOAK" >"$T/hostile.out" 2>&1 &
hostile=$!
pids=()
for i in 1 2 3 4 5 6 7; do
	(
		end=$((SECONDS + SECONDS_SOAK)); runs=0
		while [ $SECONDS -lt $end ]; do
			"$VGPU_SUBMIT_BIN" --transport "$(uri $i)" vector-add --n 65536 --verify --repeat 20 \
				--depth 4 --timeout-ms 30000 >/dev/null 2>>"$T/client$i.err" || echo fail >>"$T/client$i.err"
			runs=$((runs + 1))
		done
		echo "$runs" >"$T/client$i.runs"
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
wait $hostile || fail "hostile client: $(cat "$T/hostile.out")"
echo "# hostile rounds: $(cat "$T/hostile.out")"
grep -q "=0" "$T/hostile.out" && fail "a hostile behaviour never ran" \
	|| pass "every hostile behaviour ran for $SECONDS_SOAK s"
for i in 1 2 3 4 5 6 7; do
	runs=$(cat "$T/client$i.runs")
	if [ ! -s "$T/client$i.err" ] && [ "$runs" -ge 1 ]; then
		pass "VM $i ($(uri $i | cut -d: -f1)): $((runs * 20)) requests verified"
	else
		fail "VM $i: $(head -3 "$T/client$i.err")"
	fi
	expect_eq "$(vm_stat $i '"\(.submitted) \(.completed) \(.failed) \(.rejected)"')" \
		"$((runs * 20 + 1)) $((runs * 20 + 1)) 0 0" "VM $i: every request completed, none refused"
done
[ "$(vm_stat 8 .rejected)" -gt 0 ] && pass "VM 8 was refused ($(vm_stat 8 .rejected) times)" \
	|| fail "VM 8 was never refused: the soak proves nothing"
for k in bytes connections; do
	[ "$(vm_stat 8 ".budget.$k.refused")" -gt 0 ] && pass "VM 8 ran into its budget of $k" \
		|| fail "VM 8 never ran into its budget of $k"
done
wait_for "VM 8 holds nothing at the end" 20 vm_stat_is 8 '[.budget[].held] | add' 0
# Every line VM 8 can cause is rate-limited: at most 10 per 10 s window
# (plus one "suppressed" line per window), over the soak and the warm-up.
lines=$(grep -c "VM $(uuid 8)" "$T/mediator.log" || true)
[ "$lines" -le $(( (SECONDS_SOAK / 10 + 3) * 11 )) ] \
	&& pass "VM 8's log lines rate-limited: $lines in $SECONDS_SOAK s" \
	|| fail "VM 8 caused $lines log lines in $SECONDS_SOAK s"
wait_for "no window kept at the end" 10 no_kept
fds_back() { [ "$(fd_count)" -eq "$fds0" ]; }
wait_for "descriptors back to $fds0" 10 fds_back
rss1=$(rss_kb)
echo "# resident memory: $rss0 KiB after the warm-up, $rss1 KiB at the end"
# Margin: 32 MiB (a quarter of VM 8's buffer budget) for what the allocator
# keeps of freed buffers.
[ $(( (rss1 - rss0) / 1024 )) -lt 32 ] && pass "memory flat: $(( (rss1 - rss0) / 1024 )) MiB more (bound 32)" \
	|| fail "memory grew $(( (rss1 - rss0) / 1024 )) MiB (bound 32)"
e2e_finish
