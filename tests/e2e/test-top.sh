#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-admin top against a real mediator: VM 1 keeps the (CPU) GPU busy,
# VM 2 is idle. --once shows one frame over a second: both VMs with their
# pool and priority, VM 1 first (sorted by share) with most of the GPU,
# VM 2 with none; --sort name orders by name; not on a terminal, a frame
# each second; in a pseudo-terminal, full screen (cleared, no cursor),
# keys change the order and q quits with the terminal given back; bad
# options and a mediator gone are errors.
. "$(dirname "$0")/lib.sh"

vm 1 A high; vm 2 B low
# Named so that by name it comes first, by share last.
admin register-vm --vm-uuid "$(uuid 3)" --vm-name aaa-idle --pool B --priority low --vm-id 3 >/dev/null
start_mediator --set cpu_threads=1 --set max_inflight=1
# shellcheck disable=SC2086
"$VGPU_SUBMIT_BIN" --transport "unix:$(sock 1)" sgemm --m 256 --n 256 --k 256 --repeat 1000000 \
	--depth 4 >/dev/null 2>&1 & busy=$!
busy_now() { [ "$(vm_stat 1 .completed)" -gt 5 ]; }
wait_for "VM 1 busy" 20 busy_now

rc=0; out=$(admin top --once --run-dir "$RUN") || rc=$?
expect_eq "$rc" 0 "top --once exits 0"
echo "$out" | sed 's/^/# /'
line() { echo "$out" | grep -E "^$1 "; }
[ -n "$(line vm1)" ] && [ -n "$(line vm2)" ] && pass "both VMs listed" || fail "VMs missing"
echo "$out" | grep -qE "^vm1 +1 +A +high " && echo "$out" | grep -qE "^vm2 +2 +B +low " &&
	pass "each with its id, pool and priority" || fail "id, pool or priority wrong"
# The margin: VM 1 alone keeps one CPU thread busy with 4 requests in
# flight, so its share over the second is near 100% (measured: 92.7% plain,
# 99.1% ASan; 121.5% under TSan's 250 ms requests before shares were made
# to add up to 100% where charges pass the second); at least 50% leaves room
# for a slow build's gaps between requests.
share1=$(line vm1 | awk '{ sub(/%/, "", $5); print $5 }')
share2=$(line vm2 | awk '{ sub(/%/, "", $5); print $5 }')
awk -v s="$share1" 'BEGIN { exit !(s >= 50 && s <= 100) }' &&
	pass "VM 1's share of the GPU over the second: $share1% (>= 50%)" || fail "VM 1's share $share1%"
expect_eq "$share2" "0.0" "VM 2, idle, has none"
rate=$(line vm1 | awk '{ print $6 }')
awk -v r="$rate" 'BEGIN { exit !(r > 0) }' && pass "VM 1's requests per second: $rate" ||
	fail "VM 1's rate $rate"
first=$(echo "$out" | awk '/^VM / { getline; print $1; exit }')
expect_eq "$first" vm1 "sorted by share: VM 1 first"
echo "$out" | grep -qE "^A +[^ ]* *[0-9]+ +[0-9]+% +1 " && pass "pool A's line: one VM" ||
	fail "pool A's line"

out=$(admin top --once --sort name --run-dir "$RUN")
first=$(echo "$out" | awk '/^VM / { getline; print $1; exit }')
expect_eq "$first" aaa-idle "--sort name: aaa-idle first (by share it is last)"
rc=0; admin top --once --sort wait --run-dir "$RUN" >/dev/null || rc=$?
expect_eq "$rc" 0 "--sort wait"

# Not on a terminal and no --once: a frame each second, no escapes (3.5 s:
# 3 frames, 2 to 4 allowed for a slow start under the sanitizers). Stopped
# by a plain SIGTERM: timeout(1) follows its signal with a SIGCONT, which,
# landing while LeakSanitizer's exit-time tracer attaches, leaves both
# waiting for ever (seen once in 20 runs under load).
"$VGPU_ADMIN_BIN" --db "$DB" top --run-dir "$RUN" >"$T/batch" 2>&1 &
top_pid=$!
sleep 3.5
kill -TERM "$top_pid"
rc=0; wait "$top_pid" || rc=$?
expect_eq "$rc" 0 "batch mode: SIGTERM ends it, exit 0"
frames=$(grep -c '^vgpu-admin top - ' "$T/batch" || true)
[ "$frames" -ge 2 ] && [ "$frames" -le 4 ] && pass "batch mode: $frames frames in 3.5 s (one a second)" ||
	fail "batch mode: $frames frames"
grep -q $'\033' "$T/batch" && fail "escape sequences in batch mode" || pass "and no escape sequences"

# In a pseudo-terminal: full screen, keys, q.
python3 - "$VGPU_ADMIN_BIN" "$DB" "$RUN" >"$T/pty" 2>&1 <<'EOF'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--db", sys.argv[2], "top", "--run-dir", sys.argv[3]])
out = b""
def read_for(s):
    global out
    end = time.time() + s
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
read_for(2.3)
mark = len(out)
os.write(fd, b"n")
read_for(1.5)
by_name = out[mark:]
os.write(fd, b"q")
read_for(1.0)
status = None
for _ in range(100):   # q must end it; a stuck one is killed, not waited for
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.write("exit %d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.write("frames %d\n" % out.count(b"\x1b[H\x1b[2J"))
sys.stdout.write("cursor %s\n" % ("hidden-then-shown" if b"\x1b[?25l" in out and out.rstrip().endswith(b"\x1b[?25h") else "wrong"))
sys.stdout.write("rows %d\n" % out.count(b"\nvm1 "))
i = by_name.rfind(b"\x1b[H\x1b[2J")
last = by_name[i:] if i >= 0 else b""
sys.stdout.write("n-sorts %s\n" % ("yes" if b"\naaa-idle " in last and last.find(b"\naaa-idle ") < last.find(b"\nvm1 ") else "no"))
EOF
sed 's/^/# /' "$T/pty"
grep -qx "exit 0" "$T/pty" && pass "in a pseudo-terminal: q quits, exit 0" || fail "pty: $(cat "$T/pty")"
frames=$(awk '/^frames/ { print $2 }' "$T/pty")
[ "${frames:-0}" -ge 3 ] && pass "screen cleared and redrawn each second ($frames frames in 4.8 s)" ||
	fail "pty frames: $frames"
grep -qx "cursor hidden-then-shown" "$T/pty" && pass "cursor hidden while it runs, shown at the end" ||
	fail "cursor not restored"
grep -qx "n-sorts yes" "$T/pty" && pass "the key n sorts by name (aaa-idle above vm1)" || fail "n did not sort by name"

# Bad input: usage errors (2), nothing else happens.
rc=0; admin top --sort fastest --run-dir "$RUN" >/dev/null 2>"$T/err" || rc=$?
expect_eq "$rc" 2 "--sort fastest: usage error"
grep -q "must be share, rate, wait, mem or name" "$T/err" && pass "and says which sorts there are" ||
	fail "message: $(cat "$T/err")"
rc=0; admin top --json --run-dir "$RUN" >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "--json is not an option of top"
rc=0; admin top --once --run-dir relative >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 2 "a relative --run-dir: usage error"

kill "$busy" 2>/dev/null || true
wait "$busy" 2>/dev/null || true
stop_mediator
rc=0; admin top --once --run-dir "$RUN" >/dev/null 2>"$T/err" || rc=$?
expect_eq "$rc" 1 "the mediator gone: exit 1"
grep -q "the mediator is not running" "$T/err" && pass "and says so" || fail "message: $(cat "$T/err")"
e2e_finish
