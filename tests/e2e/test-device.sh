#!/bin/bash
# SPDX-License-Identifier: MIT
# The device transport end to end (issue 10): a vgpu-stub device and its
# guest, played by device_client.py (guest RAM in a memfd, sent in a
# DEVICE message; a ring window in scattered extents of it, registered
# with WINDOW), against a real mediator: the window served in place,
# every bad descriptor and bad registration refused with its error, a
# device whose RAM can shrink refused, a broken ring losing its window,
# re-registration under load answering every taken request once, doorbell
# storms, the window budget, a device that goes away giving back its
# window, staged windows, and the mediator dialing a device's own socket;
# the VM's pool and priority told to the device (IDENTITY) once it is
# accepted and within 2 s of a vgpu-admin change, with no VM restart.
# VM 2, a socket client, goes on throughout and stays correct.
. "$(dirname "$0")/lib.sh"
DEVC=$VGPU_TESTS/e2e/device_client.py

vm 1 A high; vm 2 B low
start_mediator --set shm_max_mib=16 --set vm_windows=2
S1=$(sock 1); S2=$(sock 2)

# VM 2's steady work beside everything VM 1's device does.
"$VGPU_SUBMIT_BIN" --transport "unix:$S2" vector-add --n 4096 --verify --repeat 400 --depth 4 --json >"$T/vm2.json" 2>&1 &
p2=$!

expect_eq "$(python3 "$DEVC" "$S1" ok 80000)" "0" "a vector_add through a device window in guest RAM"
expect_eq "$(python3 "$DEVC" "$S1" descs)" \
	"in-rings=-3 in-control-page=-3 past-window=-3 huge-offset=-3 misaligned=-3 out-over-input=-3 out-past-window=-3 unused-offset=-3 other-vm=-10 reserved-bytes=-14 unknown-op=-3 saxpy-in-place=0 good=0" \
	"bad descriptors each answered with their error, good ones served"
expect_eq "$(python3 "$DEVC" "$S1" extents)" \
	"outside-ram=-3 in-the-hole=-3 across-region-end=-3 overlapping=-3 too-small=-3 unaligned=-3 good=0 unregister=0" \
	"window registrations naming memory the guest does not have, or malformed: refused"
expect_eq "$(python3 "$DEVC" "$S1" hello-unsealed)" "-3 closed" "guest RAM that can shrink: device refused"
expect_eq "$(python3 "$DEVC" "$S1" hello-fds)" "-14 closed" "DEVICE without its memfd: refused"
expect_eq "$(python3 "$DEVC" "$S1" hello-twice)" "closed" "a second DEVICE message: connection closed"
expect_eq "$(python3 "$DEVC" "$S1" tail-jump)" "-14 0" "a broken ring loses its window; the device registers again"
out=$(timeout 120 python3 "$DEVC" "$S1" reregister 20) && pass "re-registration under load, 20 rounds: $out" \
	|| fail "reregister: $out"
expect_eq "$(timeout 120 python3 "$DEVC" "$S1" storm 30000)" "0=6" "30000 doorbells around 6 requests: each served"
expect_eq "$(python3 "$DEVC" "$S1" window 32)" "-13" "a window past shm_max_mib: VGPU_LIMIT"

# IDENTITY: once the device is accepted, then at each change of the VM's
# pool or priority (set-priority and set-pool change a running VM live:
# no xe here, no restart); not for a change of weight.
python3 "$DEVC" "$S1" identity >"$T/id" 2>&1 < <(sleep 600) &
idp=$!
wait_for "the accepted device is told its VM's pool and priority (A 2)" 30 grep -qx "A 2" "$T/id"
ids() { grep -c "^[A-Z] [0-2]" "$T/id" || true; }
admin set-priority --vm-uuid "$(uuid 1)" --priority low >"$T/set.out" 2>&1 ||
	fail "set-priority: $(cat "$T/set.out")"
grep -q "no restart" "$T/set.out" && pass "set-priority says no restart is needed" ||
	fail "set-priority: $(cat "$T/set.out")"
wait_for "set-priority low: IDENTITY A 0 within 2 s" 2 grep -q "^A 0 " "$T/id"
admin set-pool --vm-uuid "$(uuid 1)" --pool B >/dev/null
wait_for "set-pool B: IDENTITY B 0 within 2 s" 2 grep -q "^B 0 " "$T/id"
admin update-vm --vm-uuid "$(uuid 1)" --pool A --priority high >/dev/null
wait_for "update-vm back to A high: IDENTITY A 2 within 2 s" 2 grep -q "^A 2 " "$T/id"
admin set-sched --vm-uuid "$(uuid 1)" --weight 50 >/dev/null
sleep 1.5
admin set-sched --vm-uuid "$(uuid 1)" --weight 100 >/dev/null
expect_eq "$(ids)" "4" "one IDENTITY per change of pool or priority, none for a weight"
grep -q "VM $(uuid 1): told its device pool A, priority high" "$T/mediator.log" &&
	pass "the mediator logged what it told the device" || fail "no IDENTITY in the mediator's log"
kill "$idp" 2>/dev/null; wait "$idp" 2>/dev/null || true

# The VM's budget of windows (2): a third device's window waits its turn.
python3 "$DEVC" "$S1" hold >"$T/h1" 2>&1 < <(sleep 600) &
h1=$!
python3 "$DEVC" "$S1" hold >"$T/h2" 2>&1 < <(sleep 600) &
h2=$!
both_held() { grep -q registered "$T/h1" && grep -q registered "$T/h2"; }
wait_for "two devices of VM 1 hold a window each" 30 both_held
expect_eq "$(vm_stat 1 .budget.windows.held)" "2" "both counted in VM 1's window budget"
expect_eq "$(vm_stat 1 .windows.device_direct) $(vm_stat 1 .windows.device_staged)" "2 0" \
	"vgpu-admin stats: both served straight from guest RAM (memfd: pinned), none staged"
admin stats --run-dir "$RUN" >"$T/stats.txt"
row=$(awk -v u="$(uuid 1)" '/BUDGETS/ { b = 1 } /^$/ { b = 0 } b && $1 == u { print $(NF - 3), $(NF - 2) }' "$T/stats.txt")
expect_eq "$row" "2 0" "the text table's DEV_DMA and DEV_STG columns"
expect_eq "$(python3 "$DEVC" "$S1" window 1)" "-9" "a third window: over the VM's budget (VGPU_BUSY)"
# The devices go away (QEMU killed): their windows come back.
kill -9 "$h1" "$h2"
wait_for "the windows given back" 10 vm_stat_is 1 .budget.windows.held 0
expect_eq "$(vm_stat 1 .windows.device_direct)" "0" "and no device window counted any more"
expect_eq "$(python3 "$DEVC" "$S1" ok 1000)" "0" "a new device of VM 1 is served"

wait $p2 && pass "VM 2's 400 socket requests beside it all verified" || fail "VM 2: $(cat "$T/vm2.json")"
expect_eq "$(vm_stat 2 .budget.windows.held)" "0" "VM 2 holds no window"

# device_dma=staged: the path of Xen's unpinnable pages, chosen per window,
# here on memfd RAM (the CPU backend reads either; cuda-check runs the
# CUDA backend's staging on the GPU).
stop_mediator
start_mediator --set shm_max_mib=16 --set vm_windows=2 --set device_dma=staged --set msg_timeout_ms=1000
python3 "$DEVC" "$S1" hold >"$T/h3" 2>&1 < <(sleep 600) &
h3=$!
wait_for "a device of VM 1 holds a window" 30 grep -q registered "$T/h3"
expect_eq "$(vm_stat 1 .windows.device_direct) $(vm_stat 1 .windows.device_staged)" "0 1" \
	"device_dma=staged: the window counted as staged, not pinned"
expect_eq "$(python3 "$DEVC" "$S1" ok 80000)" "0" "a vector_add through a staged window"
kill -9 "$h3"
wait_for "the staged window given back" 10 vm_stat_is 1 .windows.device_staged 0

# Dialing back: a chrooted QEMU cannot reach vm-<uuid>.sock after a
# mediator restart, so the mediator dials the device's own socket,
# vm-<uuid>.sock.dev, once a second while the VM has no device. A listener
# that accepts and says nothing is cut after msg_timeout_ms (1 s here) and
# dialed again; answering as a device, it is served like one that
# connected. VM 2's socket clients go on meanwhile.
"$VGPU_SUBMIT_BIN" --transport "unix:$S2" vector-add --n 4096 --verify --repeat 200 --depth 4 --json >"$T/vm2b.json" 2>&1 &
p2=$!
expect_eq "$(timeout 60 python3 "$DEVC" "$S1" dialed)" "silent=closed device=0" \
	"the mediator dials a device's socket: a silent one is cut within 5 s, a real one served"
grep -q "VM $(uuid 1): dialed its device" "$T/mediator.log" && pass "the mediator logged the dial" ||
	fail "no dial in the mediator's log"
wait $p2 && pass "VM 2's socket requests beside it all verified" || fail "VM 2: $(cat "$T/vm2b.json")"
e2e_finish
