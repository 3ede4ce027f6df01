#!/bin/bash
# SPDX-License-Identifier: MIT
# test-ring.sh - the device path with real guests (issue 10): the QEMU that
# scripts/build-qemu.sh builds boots Debian's kernel (TCG) with guest RAM
# in a shared memfd and a vgpu-stub device pointing at a real mediator
# (CPU backend); guest_ring, inside the guest, places a ring window in its
# RAM, registers it through the device and speaks the ring. Checked:
#   - one guest: every op through the device, verified against the CPU
#     reference; the completion interrupt cause raised;
#   - a hostile guest: bad descriptors, bad extent lists (memory it does
#     not own, unaligned, empty, overlapping), a doorbell storm, a broken
#     ring (window lost, registered again), writes to read-only registers;
#     the mediator goes on; guest errors logged by QEMU;
#   - 8 guests booted at once, in both pools at every priority, each
#     running verified work through its own device (driver and libvgpu)
#     against one mediator, each VM's requests counted by the mediator;
#   - the guest driver (vgpu.ko) and libvgpu's dev: transport: loads,
#     identity in sysfs, every op through vgpu-submit's default transport,
#     an unprivileged user of group vgpu, unloads cleanly and loads again;
#     the 8 guests above run this; a guest reset while submitting waits
#     for the mediator to release the window, then registers it again
#     after the reboot;
#   - the mediator killed -9 and restarted while guests submit: the
#     devices reconnect and register the window again, every request ends
#     once (a verified result, or an error for those lost), none wrong;
#     a QEMU chrooted and running as nobody (as on XCP-ng) is reached by
#     the mediator dialing its device back;
#   - QEMU killed with a window registered: the mediator releases the
#     VM's window and requests.
set -eu
: "${VGPU_QEMU:?run through meson test}" "${VGPU_GUEST_RING_BIN:?}" "${VGPU_MEDIATOR_BIN:?}"
: "${VGPU_TESTS:?}" "${VGPU_SRC:?}" "${VGPU_ADMIN_BIN:?}" "${VGPU_BUILD:?}"
. "$VGPU_TESTS/lib/assert.sh"

. "$VGPU_TESTS/vm/lib.sh"
vm_setup vgpu-ring
# Eight VMs: pools A and B, priorities 0, 1, 2 in turn.
for i in 1 2 3 4 5 6 7 8; do
	pool=$([ $((i % 2)) = 1 ] && echo A || echo B)
	admin register-vm --vm-uuid "$(uuid $i)" --vm-name "ring$i" --pool $pool \
		--priority $((i % 3)) --vm-id $i >/dev/null
done
start_mediator() {
	"$VGPU_MEDIATOR_BIN" --db "$DB" --run-dir "$T/run" --spool-dir "$T/spool" --backend cpu \
		--log stderr --log-level info --set window_keep_s=0 2>>"$T/mediator.log" &
	MPID=$!
	for _ in $(seq 100); do
		[ -S "$T/run/control.sock" ] && return 0
		sleep 0.1
	done
	fail "mediator did not start"; cat "$T/mediator.log"; exit 1
}
vm_stat() { admin stats --json --run-dir "$T/run" | jq -r --arg u "$(uuid "$1")" ".vms[] | select(.vm_uuid == \$u) | $2"; }

# Guest RAM in the shared memfd the device maps: QEMU 5.0 and later name
# it as the machine's RAM; 4.2 (XCP-ng's, make test-qemu42) only as the
# memory of a NUMA node.
if "$VGPU_QEMU" -version | grep -q 'version [1-4]\.'; then
	RAM=(-M pc -numa node,memdev=ram)
else
	RAM=(-M pc,memory-backend=ram)
fi
# guest NAME VM TEST [ARG [QEMU ARGS...]]: boot VM's guest in the
# background; its console in $T/NAME.raw, QEMU's guest errors in
# $T/NAME.qlog; its pid in GPID.
guest() {
	local name=$1 vm=$2 test=$3 arg=${4:-0}
	shift 4 2>/dev/null || shift $#
	"$VGPU_QEMU" -L /usr/share/qemu -L /usr/share/seabios "${RAM[@]}" -accel tcg \
		-m 192 -object memory-backend-memfd,id=ram,size=192M,share=on \
		-smp 1 -display none -nodefaults -serial stdio "${@:--no-reboot}" \
		-kernel "$ASSETS/vmlinuz" -initrd "$T/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 hugepages=8 vgpu_test=$test vgpu_arg=$arg" \
		-device "vgpu-stub,pool_id=A,priority=2,vm_id=$vm,mediator=$(sock "$vm")" \
		-d guest_errors -D "$T/$name.qlog" >"$T/$name.raw" 2>"$T/$name.err" &
	GPID=$!
}
# report NAME: the guest's report lines (after it powered off).
report() { tr -d '\r' <"$T/$1.raw" | sed -n '/^VGPU-TEST-BEGIN/,/^VGPU-TEST-END/p'; }
line() { report "$1" | sed -n "s/^$2 *//p" | head -n 1; }
finished() { report "$1" | grep -q '^VGPU-TEST-END'; }
wait_guest() { # NAME PID
	if timeout 300 tail --pid="$2" -f /dev/null && finished "$1"; then return 0; fi
	fail "$1: the guest did not finish its report"
	tail -n 20 "$T/$1.raw" "$T/$1.err" | sed 's/^/#   /'
	return 1
}

start_mediator

# ---- the guest driver and libvgpu: every op through /dev/vgpu0 ----
t0=$(date +%s)
guest driver 5 driver; wait_guest driver "$GPID" && pass "driver guest booted and reported ($(($(date +%s) - t0)) s)"
d() { line driver "$1"; }
expect_eq "$(d INSMOD-RC)" "0" "vgpu.ko loads"
expect_eq "$(d SYSFS-pool) $(d SYSFS-priority) $(d SYSFS-vm_id) $(d SYSFS-version) $(d SYSFS-link)" \
	"A 2 5 1.1 1" "identity and link in sysfs (/sys/class/misc/vgpu0)"
expect_eq "$(d GUEST-INFO-ring)" "link up, window registered" "vgpu-guest-info shows the ring's state (from the driver's sysfs)"
expect_eq "$(d GUEST-INFO-USER-vm_id)" "5" "with the driver, vgpu-guest-info works for an unprivileged user"
expect_eq "$(d OP-vector-add) $(d OP-saxpy) $(d OP-sgemm) $(d OP-reduce-sum) $(d OP-large)" "0 0 0 0 0" \
	"vgpu-submit over dev:/dev/vgpu0 (its default): every op verified, and 3 x 1M-float vector_adds"
expect_eq "$(d USER-RC)" "0" "an unprivileged user in group vgpu submits through the device"
expect_eq "$(d SYSFS-window_state)" "2" "the window stays registered"
expect_eq "$(d RMMOD-RC) $(d AGAIN-RC) $(d KERNEL-WARNINGS)" "0 0 0" \
	"vgpu.ko unloads cleanly (the window released first), loads again and works; no kernel warning"

# ---- one guest: every op, verified ----
t0=$(date +%s)
guest ops 1 ops 3; wait_guest ops "$GPID" && pass "one guest booted and reported ($(($(date +%s) - t0)) s)"
expect_eq "$(line ops RING-OPS)" "vector_add=3/3 saxpy=3/3 sgemm=3/3 reduce_sum=3/3 int-status=set" \
	"every op through the device, verified; completion interrupt cause raised"
expect_eq "$(vm_stat 1 .completed)" "12" "the mediator counted VM 1's 12 requests"

# ---- a hostile guest ----
guest hostile 2 hostile; wait_guest hostile "$GPID"
expect_eq "$(line hostile RING-HOSTILE)" \
	"in-rings=-3 past-window=-3 reserved-flags=-14 other-vm=-10 good=0 after-storm=0 list-outside-ram=3/-3 list-unaligned=3/-3 list-empty=3/-3 list-overlap=3/-3 reregister=0 served=0 tail-jump=3/-14 int=window ro-write=3 again=0" \
	"hostile guest: every bad descriptor, list and ring refused with its error; the device goes on"
grep -q "vgpu-stub: window list at" "$T/hostile.qlog" && grep -q "read-only" "$T/hostile.qlog" &&
	pass "QEMU logged the guest's mistakes (LOG_GUEST_ERROR)" || fail "no guest errors logged"
kill -0 "$MPID" && pass "mediator alive after the hostile guest" || fail "mediator died"

# ---- 8 guests at once, each through its driver and libvgpu ----
t0=$(date +%s)
pids=()
for i in 1 2 3 4 5 6 7 8; do
	guest "many$i" "$i" driver
	pids+=("$GPID")
done
good=0
for i in 1 2 3 4 5 6 7 8; do
	wait_guest "many$i" "${pids[$((i - 1))]}" || continue
	r="$(line "many$i" OP-vector-add) $(line "many$i" OP-saxpy) $(line "many$i" OP-sgemm)"
	r="$r $(line "many$i" OP-reduce-sum) $(line "many$i" OP-large) $(line "many$i" USER-RC)"
	[ "$r" = "0 0 0 0 0 0" ] && good=$((good + 1)) || echo "# many$i: $r"
done
expect_eq "$good" "8" "8 guests at once (pools A and B, priorities 0 to 2): every op verified in each ($(($(date +%s) - t0)) s)"
counts=""
for i in 1 2 3 4 5 6 7 8; do counts="$counts $(vm_stat "$i" .completed)"; done
# Each driver guest completes 25 requests (4 ops x 5, 3 large, 1 as a user,
# 1 after reloading); VM 1 had 12 before, VM 2's hostile guest 3, VM 5
# was the first driver guest.
expect_eq "$counts" " 37 28 25 25 50 25 25 25" "the mediator counted each VM's completed requests"

# ---- a guest reboot: the driver registers the window again ----
guest reboot 6 driverloop 30 -monitor "unix:$T/mon.sock,server,nowait"
gp=$GPID
for _ in $(seq 600); do grep -aq "LOOP-OK 1" "$T/reboot.raw" 2>/dev/null && break; sleep 0.1; done
# QEMU's monitor: system_reset, then wait for its prompt again.
python3 - "$T/mon.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
buf = b""
while not buf.endswith(b"(qemu) "):
    buf += s.recv(4096)
s.sendall(b"system_reset\r\n")
buf = b""
while b"(qemu) " not in buf:  # the command taken: its prompt again
    buf += s.recv(4096)
PY
wait_guest reboot "$gp"
expect_eq "$(tr -d '\r' <"$T/reboot.raw" | grep -c '^VGPU-TEST-BEGIN')" "2" "the guest was reset while submitting, and booted again"
r="$(line reboot OP-vector-add) $(line reboot OP-saxpy) $(line reboot OP-sgemm) $(line reboot OP-reduce-sum)"
expect_eq "$r" "0 0 0 0" "after the reboot the driver registered its window again: every op verified"
ms=$(sed -n 's/.*vgpu-stub: reset: the mediator released the window in \([0-9]*\) ms.*/\1/p' "$T/reboot.err")
[ -n "$ms" ] && pass "the reset waited for the mediator to release the window ($ms ms)" ||
	fail "no reset wait in QEMU's log: $(grep vgpu-stub "$T/reboot.err" | tail -n 3)"

# ---- the mediator killed -9 and restarted while two guests submit ----
# The second QEMU chroots itself into an empty directory and runs as
# nobody once started (as XCP-ng runs it): the mediator's socket is out of
# its reach after that, and only the mediator dialing its device back
# (RUNDIR/vm-<uuid>.sock.dev, bound before the chroot) reconnects it.
mkdir -p "$T/jail"
guest fault 3 loop 40
gp=$GPID
guest jailed 7 loop 40 -no-reboot -chroot "$T/jail" -runas nobody
jp=$GPID
for g in fault jailed; do
	for _ in $(seq 300); do grep -q GUEST-READY "$T/$g.raw" 2>/dev/null && break; sleep 0.1; done
done
sleep 12
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true
sleep 2
start_mediator
for g in fault jailed; do
	[ $g = fault ] && p=$gp || p=$jp
	wait_guest $g "$p" || continue
	out=$(line $g RING-LOOP)
	case "$out" in
	*" wrong=0 twice=0 relinks="[1-9]*) ok=${out#ok=}; ok=${ok%% *}
		[ "$ok" -gt 0 ] && pass "$g: mediator killed and restarted under load: the device reconnected ($out)" \
			|| fail "$g: no request served: $out" ;;
	*) fail "$g: mediator restart: $out" ;;
	esac
done
grep -q "reconnecting" "$T/fault.err" && pass "QEMU said it lost the mediator and reconnected" || fail "no reconnect in QEMU's log"
grep -q "the mediator dialed back" "$T/jailed.err" &&
	pass "the chrooted QEMU (running as nobody) was reached by the mediator dialing its device back" ||
	fail "the chrooted QEMU was not dialed back: $(grep vgpu-stub "$T/jailed.err" | tail -n 3)"

# ---- QEMU killed with a window registered ----
guest killed 4 loop 60
gp=$GPID
for _ in $(seq 600); do [ "$(vm_stat 4 .budget.windows.held)" = 1 ] && break; sleep 0.1; done
expect_eq "$(vm_stat 4 .budget.windows.held)" "1" "VM 4's window registered"
kill -9 "$gp"; wait "$gp" 2>/dev/null || true
for _ in $(seq 100); do [ "$(vm_stat 4 .budget.windows.held)" = 0 ] && break; sleep 0.1; done
expect_eq "$(vm_stat 4 .budget.windows.held) $(vm_stat 4 .budget.requests.held)" "0 0" \
	"QEMU killed: the mediator released VM 4's window and requests"

kill -TERM "$MPID"; wait "$MPID"; rc=$?; MPID=""
expect_eq "$rc" "0" "mediator stopped cleanly"
finish
