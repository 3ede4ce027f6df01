#!/bin/bash
# SPDX-License-Identifier: MIT
# Kept windows (issue 9): a window whose client left stays with its VM for
# window_keep_s, counted in the VM's budget, and the VM's next client that
# asks for the same size gets it (nothing made, pinned or freed again).
# Kept windows give way: to a window of another size the VM asks for, to
# another VM when the host's total is short, at the VM's removal, after
# window_keep_s, and at shutdown.
. "$(dirname "$0")/lib.sh"
SHM=$VGPU_TESTS/e2e/shm_client.py

vm 1 A high; vm 2 B low
# No rate limit here (pin_rate_mib_s, below): windows come and go fast.
start_mediator --set max_vms=2 --set registry_poll_ms=100 --set vm_windows=1 \
	--set vm_window_mib=120 --set shm_total_mib=140 --set window_keep_s=3 \
	--set pin_rate_mib_s=0
S1=$(sock 1); S2=$(sock 2)

expect_eq "$(python3 "$SHM" "$S1" reuse 64)" "same 0" \
	"the next client of the same size gets the window, its ring set anew"
expect_eq "$(vm_stat 1 .windows.kept)/$(vm_stat 1 .windows.kept_bytes)" \
	"1/$(( (64 << 20) + 4096 + 1024 * 96 ))" "kept: one window, its size"
expect_eq "$(vm_stat 1 .budget.windows.held)" "1" "a kept window stays in the VM's budget"
admin stats --run-dir "$RUN" >"$T/stats.txt"
# VM 1's row of the budgets table: ... WINDOWS_MIB DEV_DMA DEV_STG KEPT REFUSED.
kept_cell=$(awk -v u="$(uuid 1)" '/BUDGETS/ { b = 1 } /^$/ { b = 0 } b && $1 == u { print $(NF - 1) }' "$T/stats.txt")
expect_eq "$kept_cell" "1" "vgpu-admin stats: VM 1's KEPT column"

# Another size, with the VM's one window kept: the kept one gives way,
# no refusal.
expect_eq "$(python3 "$SHM" "$S1" attach 32)" "0" "a window of another size replaces the kept one"
expect_eq "$(vm_stat 1 .budget.windows.refused)/$(vm_stat 1 .budget.window_bytes.refused)" "0/0" \
	"no refusal counted for it"
expect_eq "$(vm_stat 1 .windows.kept_bytes)" "$(( (32 << 20) + 4096 + 1024 * 96 ))" \
	"now the 32 MiB one is kept"

# The host's total (140 MiB): VM 1 keeps 64 MiB, VM 2 asks for 80.
python3 "$SHM" "$S1" attach 64 >/dev/null
first=$(python3 "$SHM" "$S2" attach 80 2>&1 | tail -1)
expect_eq "$first" "-9" "VM 2 first answered VGPU_BUSY (host total)"
attach_80() { [ "$(python3 "$SHM" "$S2" attach 80 2>&1 | tail -1)" = 0 ]; }
wait_for "VM 2 served once VM 1's kept window gave way" 5 attach_80
expect_eq "$(vm_stat 1 .windows.kept)" "0" "VM 1 keeps none"

# Past window_keep_s (3 s) a kept window is released.
wait_for "VM 2's kept window released after window_keep_s" 6 vm_stat_is 2 .budget.windows.held 0
expect_eq "$(vm_stat 2 .budget.window_bytes.held)" "0" "its bytes given back"

# A removed VM's kept window is released with it: with max_vms=2, VM 3
# can only be served in VM 1's slot, which is free only then (within 2 s:
# before window_keep_s could have released it).
python3 "$SHM" "$S1" attach 64 >/dev/null
expect_eq "$(vm_stat 1 .windows.kept)" "1" "VM 1 keeps a window"
admin remove-vm --vm-uuid "$(uuid 1)" >/dev/null
vm 3 A high
wait_for "VM 3 served in VM 1's slot" 2 test -S "$(sock 3)"
expect_eq "$(python3 "$SHM" "$(sock 3)" ok 1000)" "0" "VM 3 served over a window"
stop_mediator

# pin_rate_mib_s: past its first vm_window_mib + vm_buffer_mib (64 + 1), a
# VM's new windows come at 16 MiB/s; a kept window used again does not count.
start_mediator --set vm_window_mib=64 --set vm_buffer_mib=1 --set pin_rate_mib_s=16
S2=$(sock 2)
expect_eq "$(python3 "$SHM" "$S2" attach 32)/$(python3 "$SHM" "$S2" attach 28)" "0/0" \
	"two new windows within the VM's first 64 MiB"
expect_eq "$(python3 "$SHM" "$S2" attach 24)" "-9" "a third at once: VGPU_BUSY (too fast)"
expect_eq "$(vm_stat 2 .budget.new_pinned.refused)" "1" "counted as too fast"
expect_eq "$(python3 "$SHM" "$S2" reuse 32)" "same 0" "a kept one is used again meanwhile"
sleep 1.6
expect_eq "$(python3 "$SHM" "$S2" attach 24)" "0" "made once the rate allows it (1.6 s x 16 MiB/s)"
e2e_finish
