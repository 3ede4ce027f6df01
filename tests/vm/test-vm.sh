#!/bin/bash
# SPDX-License-Identifier: MIT
# test-vm.sh - the vgpu-stub device in a real VM: the QEMU built by
# scripts/build-qemu.sh boots Debian's kernel (TCG) with an initramfs of
# busybox and vgpu-guest-info (guest-init.sh), and the guest's console
# says what it found. Checked here:
#   - one device (pool B, priority 2, vm_id 7): PCI ids and class in sysfs,
#     vgpu-guest-info's text and JSON, its refusal without root, and the
#     registers themselves (devmem): magic, vm_id, an unknown offset reads
#     0, a write to a read-only register is ignored, each logged as a guest
#     error, and a burst of bad reads is rate-limited in the log;
#   - two devices with different properties in one guest;
#   - no device: vgpu-guest-info says so (exit 1);
#   - invalid property values: QEMU refuses to start, naming the problem;
#   - the whole path: registry -> vgpu-qemu-wrapper (fake xenstore-read)
#     -> the "stock wrapper" (a script running this QEMU) -> the guest
#     reads the registry's values;
#   - live identity: with the device linked to a mediator (CPU backend),
#     vgpu-admin set-priority and set-pool change what the running guest
#     reads (vgpu-guest-info) within a few seconds, with the identity
#     interrupt cause raised, and neither QEMU nor the guest restarted.
set -eu
: "${VGPU_QEMU:?run through meson test (make test-vm)}" "${VGPU_GUEST_INFO_BIN:?}"
: "${VGPU_TESTS:?}" "${VGPU_SRC:?}" "${VGPU_BUILD:?}" "${VGPU_FAKES:?}" "${VGPU_ADMIN_BIN:?}"
: "${VGPU_MEDIATOR_BIN:?}"
. "$VGPU_TESTS/lib/assert.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-vm.XXXXXX")
MPID="" QPID=""
cleanup() {
	[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null
	[ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
	[ -n "${VGPU_VM_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
[ -x "$VGPU_QEMU" ] || { echo "# no QEMU at $VGPU_QEMU: run make qemu"; exit 1; }
ASSETS=$(bash "$VGPU_SRC/scripts/vm-assets.sh")
BUSYBOX=$ASSETS/busybox

# The initramfs: busybox, the guest tool, and the init script.
mkdir -p "$T/root/bin"
cp "$BUSYBOX" "$T/root/bin/busybox"
cp "$VGPU_GUEST_INFO_BIN" "$T/root/bin/vgpu-guest-info"
cp "$VGPU_TESTS/vm/guest-init.sh" "$T/root/init"
chmod 755 "$T/root/init" "$T/root/bin/"*
(cd "$T/root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 >"$T/initrd.gz")

# The arguments of a test VM, without devices.
vm_args() { # TEST
	echo -L /usr/share/qemu -L /usr/share/seabios -M pc -accel tcg -m 256 -smp 1 -display none -no-reboot -nodefaults -serial stdio \
		-kernel "$ASSETS/vmlinuz" -initrd "$T/initrd.gz"
}
APPEND_BASE="console=ttyS0 quiet panic=-1"

# boot_via NAME TEST LAUNCHER... [-- QEMU ARGS...]: LAUNCHER (QEMU itself,
# or a wrapper and its first arguments) runs the test VM with QEMU ARGS
# added; the guest's report in $T/NAME.out (between the markers, carriage
# returns dropped), QEMU's guest-error log in $T/NAME.qlog; the boot's
# seconds in BOOT_S.
boot_via() {
	local name=$1 test=$2 t0 launcher=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		launcher+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	t0=$(date +%s%N)
	# shellcheck disable=SC2046 # vm_args is words
	timeout 240 "${launcher[@]}" $(vm_args) -append "$APPEND_BASE vgpu_test=$test" \
		-d guest_errors -D "$T/$name.qlog" "$@" >"$T/$name.raw" 2>"$T/$name.err" || true
	BOOT_S=$(awk "BEGIN{printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9}")
	tr -d '\r' <"$T/$name.raw" | sed -n '/^VGPU-TEST-BEGIN/,/^VGPU-TEST-END/p' >"$T/$name.out"
	if ! grep -q '^VGPU-TEST-END' "$T/$name.out"; then
		fail "$name: the guest did not finish its report"
		tail -n 20 "$T/$name.raw" "$T/$name.err" | sed 's/^/#   /'
		return 1
	fi
}
# boot NAME TEST [QEMU ARGS...]: boot_via with QEMU itself.
boot() {
	local name=$1 test=$2
	shift 2
	boot_via "$name" "$test" "$VGPU_QEMU" -- "$@"
}
line() { sed -n "s/^$2  *//p" "$T/$1.out" | head -n 1; }
json() { sed -n '/^{"devices"/p' "$T/$1.out" | head -n 1 | jq -r "$2"; }

# ---- one device ----
boot one regs -device vgpu-stub,pool_id=B,priority=2,vm_id=7
pass "guest booted and reported in $BOOT_S s"
pci=$(grep '^PCI .* 0x1af4 0x1111 ' "$T/one.out" || true)
expect_eq "$(echo "$pci" | wc -l)" "1" "one PCI device 1af4:1111 in sysfs"
expect_eq "$(echo "$pci" | cut -d ' ' -f 5)" "0x120000" "its class is 0x1200 (processing accelerator)"
expect_eq "$(line one INFO-RC)" "0" "vgpu-guest-info exits 0"
expect_eq "$(line one pool)" "B" "vgpu-guest-info: pool B"
expect_eq "$(line one priority)" "2 (high)" "vgpu-guest-info: priority 2 (high)"
expect_eq "$(line one vm_id)" "7" "vgpu-guest-info: vm_id 7"
expect_eq "$(line one version)" "1.1" "vgpu-guest-info: device version 1.1"
expect_eq "$(json one '.devices | length')" "1" "--json: one device"
expect_eq "$(json one '.devices[0] | "\(.pool) \(.priority) \(.vm_id) \(.version) \(.class) \(.ready)"')" \
	"B 2 7 1.1 0x120000 true" "--json: pool, priority, vm_id, version, class, ready"
expect_eq "$(line one USER-RC)" "3" "without root: exit 3"
grep -q "run as root" "$T/one.out" && pass "without root: says to run as root" || fail "no hint about root"
expect_eq "$(line one REG-MAGIC)" "0x55504756" "register MAGIC reads \"VGPU\""
expect_eq "$(line one REG-VMID)" "0x00000007" "register VM_ID reads 7"
expect_eq "$(line one REG-UNKNOWN)" "0x00000000" "an unknown offset reads 0"
expect_eq "$(line one REG-VMID-AFTER-WRITE)" "0x00000007" "a write to a read-only register is ignored"
grep -q "vgpu-stub: read of unknown register 0x300" "$T/one.qlog" &&
	pass "unknown read logged as a guest error" || fail "unknown read not logged: $(head -c 300 "$T/one.qlog")"
grep -q "vgpu-stub: write of 0x12345678 to read-only register 0x010 (size 4) ignored" "$T/one.qlog" &&
	pass "ignored write logged as a guest error" || fail "ignored write not logged"
n=$(grep -c "read of unknown register 0x400" "$T/one.qlog" || true)
[ "$n" -ge 1 ] && [ "$n" -le 20 ] && pass "50 bad reads: $n logged (at most 10 per second)" ||
	fail "50 bad reads: $n lines logged"
left_out=$(sed -n 's/.*vgpu-stub: \([0-9]*\) guest errors not logged.*/\1/p' "$T/one.qlog" |
	awk '{ s += $1 } END { print s + 0 }')
expect_eq "$((n + left_out))" "50" "50 bad reads: each logged or counted in a \"not logged\" line"

# ---- two devices ----
boot two basic -device vgpu-stub,pool_id=A,priority=0,vm_id=1 \
	-device vgpu-stub,pool_id=B,priority=1,vm_id=4294967295
expect_eq "$(line two JSON-RC)" "0" "two devices: vgpu-guest-info exits 0"
expect_eq "$(json two '[.devices[] | "\(.pool)/\(.priority)/\(.vm_id)"] | sort | join(" ")')" \
	"A/0/1 B/1/4294967295" "two devices, each with its own properties"

# ---- no device ----
boot none basic
expect_eq "$(line none INFO-RC)" "1" "no device: exit 1"
grep -q "no vgpu-stub device (PCI 1af4:1111)" "$T/none.out" && pass "no device: says so" ||
	fail "no device: message missing"

# ---- invalid properties: QEMU does not start ----
# QEMU's error line repeats the option it refuses ("PROG: -device
# vgpu-stub,PROPS: MESSAGE"), so a property's name or value found anywhere
# in its output proves nothing. The whole line must be there: that option,
# then the message for that very problem (vgpu-stub's realize, or QEMU's
# property parser).
bad_props() { # PROPS MESSAGE
	local rc=0 want
	want="$(basename "$VGPU_QEMU"): -device vgpu-stub$1: $2"
	# shellcheck disable=SC2046 # vm_args is words
	timeout 60 "$VGPU_QEMU" $(vm_args) -S -device "vgpu-stub$1" >"$T/bad.out" 2>&1 </dev/null || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qxF -- "$want" "$T/bad.out"; then
		pass "refused at start: vgpu-stub$1: $2"
	else
		fail "vgpu-stub$1: exit $rc, expected \"$want\", output: $(head -c 300 "$T/bad.out")"
	fi
}
bad_props ",pool_id=1,priority=0,vm_id=1" "vgpu-stub: pool_id must be one letter A to Z, not '1'"
bad_props ",pool_id=AB" "vgpu-stub: pool_id must be one letter A to Z, not 'AB'"
bad_props ",priority=1,vm_id=1" "vgpu-stub: pool_id must be one letter A to Z, not '(unset)'"
bad_props ",pool_id=a" "vgpu-stub: pool_id must be one letter A to Z, not 'a'"
bad_props ",pool_id=[" "vgpu-stub: pool_id must be one letter A to Z, not '['"
bad_props ",pool_id=B,priority=3" "vgpu-stub: priority must be 0, 1 or 2, not 3"
bad_props ",pool_id=B,priority=-1" "Parameter 'priority' expects uint32_t"
bad_props ",pool_id=B,vm_id=4294967296" "Parameter 'vm_id' expects uint32_t"
bad_props ",pool_id=B,vm_id=-1" "Parameter 'vm_id' expects uint32_t"
# QEMU's own parser words these two differently before 5.0 (4.2 is
# XCP-ng's, make test-qemu42).
if "$VGPU_QEMU" -version | grep -q 'version [1-4]\.'; then
	bad_props ",pool_id=B,vm_id=seven" "Parameter 'vm_id' expects uint64"
	bad_props ",pool_id=B,colour=red" "Property '.colour' not found"
else
	bad_props ",pool_id=B,vm_id=seven" "Parameter 'vm_id' expects integer"
	bad_props ",pool_id=B,colour=red" "Property 'vgpu-stub.colour' not found"
fi

# ---- live identity: registry -> mediator -> device -> guest, no restart ----
# Guest RAM in a shared memfd (the device's link needs it): QEMU 5.0 and
# later name it as the machine's RAM, 4.2 only as a NUMA node's memory.
if "$VGPU_QEMU" -version | grep -q 'version [1-4]\.'; then
	RAM=(-M pc -numa node,memdev=ram)
else
	RAM=(-M pc,memory-backend=ram)
fi
LDB=$T/live.db
LUUID=0a1b2c3d-0000-4000-8000-0000000000bb
ladmin() { "$VGPU_ADMIN_BIN" --db "$LDB" "$@"; }
ladmin register-vm --vm-uuid "$LUUID" --vm-name live-vm --pool B --priority high --vm-id 9 >/dev/null
ladmin create-pool --pool C --name live >/dev/null
mkdir -p "$T/run" "$T/spool"
"$VGPU_MEDIATOR_BIN" --db "$LDB" --run-dir "$T/run" --spool-dir "$T/spool" --backend cpu \
	--log stderr --log-level info 2>"$T/mediator.log" &
MPID=$!
for _ in $(seq 100); do [ -S "$T/run/control.sock" ] && break; sleep 0.1; done
t0=$(date +%s%N)
timeout 300 "$VGPU_QEMU" -L /usr/share/qemu -L /usr/share/seabios "${RAM[@]}" -accel tcg -m 256 \
	-object memory-backend-memfd,id=ram,size=256M,share=on -smp 1 -display none -no-reboot \
	-nodefaults -serial stdio -kernel "$ASSETS/vmlinuz" -initrd "$T/initrd.gz" \
	-append "$APPEND_BASE vgpu_test=live vgpu_want=C0" \
	-device "vgpu-stub,pool_id=B,priority=2,vm_id=9,mediator=$T/run/vm-$LUUID.sock" \
	-d guest_errors -D "$T/live.qlog" >"$T/live.raw" 2>"$T/live.err" &
QPID=$!
# live_seen POOLPRIO: the guest reported it.
live_seen() { tr -d '\r' <"$T/live.raw" | grep -q "^LIVE $1 "; }
# live_wait POOLPRIO SECONDS: until the guest reports it; its wait in WAITED (s).
live_wait() {
	local t
	t=$(date +%s%N)
	while ! live_seen "$1"; do
		kill -0 "$QPID" 2>/dev/null || break
		[ $(( ($(date +%s%N) - t) / 1000000 )) -lt $(($2 * 1000)) ] || break
		sleep 0.1
	done
	WAITED=$(awk "BEGIN{printf \"%.1f\", ($(date +%s%N) - $t) / 1e9}")
	live_seen "$1"
}
linked() { grep -q "vgpu-stub: connected to the mediator" "$T/live.err"; }
for _ in $(seq 2400); do linked && live_seen B2 && break; kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
if linked && live_seen B2; then
	pass "live: the guest reads pool B, priority 2, with its device linked to the mediator ($(awk "BEGIN{printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9}") s)"
	out=$(ladmin set-priority --vm-uuid "$LUUID" --priority low)
	case "$out" in *"no restart needed"*) pass "live: set-priority says no restart is needed" ;;
	*) fail "live: set-priority: $out" ;; esac
	live_wait B0 5 && pass "live: set-priority low: the guest reads priority 0 ($WAITED s)" ||
		fail "live: the guest did not read priority 0 within 5 s"
	ladmin set-pool --vm-uuid "$LUUID" --pool C >/dev/null
	live_wait C0 5 && pass "live: set-pool C: the guest reads pool C ($WAITED s)" ||
		fail "live: the guest did not read pool C within 5 s"
else
	fail "live: the guest did not start watching with its device linked"
	tail -n 20 "$T/live.raw" "$T/live.err" | sed 's/^/#   /'
fi
wait "$QPID" 2>/dev/null || true
QPID=""
tr -d '\r' <"$T/live.raw" | sed -n '/^VGPU-TEST-BEGIN/,/^VGPU-TEST-END/p' >"$T/live.out"
expect_eq "$(sed -n 's/^LIVE \([A-Z][0-2]\) .*/\1/p' "$T/live.out" | tr '\n' ' ')" "B2 B0 C0 " \
	"live: the guest saw B2, then B0, then C0, nothing else"
int_bits() { sed -n "s/^LIVE $1 \(0x[0-9a-fA-F]*\)$/\1/p" "$T/live.out"; }
b0=$(int_bits B0); c0=$(int_bits C0)
[ -n "$b0" ] && [ -n "$c0" ] && [ $((b0 & 8)) = 8 ] && [ $((c0 & 8)) = 8 ] &&
	pass "live: INT_STATUS bit 3 (identity changed) raised at each change ($b0, $c0)" ||
	fail "live: INT_STATUS at the changes: '$b0' '$c0'"
expect_eq "$(grep -c '^VGPU-TEST-BEGIN' "$T/live.out") $(grep -c '^VGPU-TEST-END' "$T/live.out")" "1 1" \
	"live: one boot, finished by the guest itself: neither QEMU nor the guest restarted"
grep -q "vgpu-stub: pool C, priority 0 (was B, 0), as the mediator says" "$T/live.err" &&
	pass "live: QEMU logged the change" || fail "live: QEMU did not log the change: $(grep vgpu-stub "$T/live.err" | tail -n 3)"
grep -q "VM $LUUID: told its device pool C, priority low" "$T/mediator.log" &&
	pass "live: the mediator logged what it told the device" || fail "live: no IDENTITY in the mediator's log"
[ -s "$T/live.qlog" ] && fail "live: guest errors logged: $(head -c 300 "$T/live.qlog")" ||
	pass "live: no guest error logged"
kill -TERM "$MPID"; wait "$MPID" 2>/dev/null || true
MPID=""

# ---- registry -> vgpu-qemu-wrapper -> QEMU -> guest ----
export VGPU_DB=$T/vgpu_config.db VGPU_CONF=$T/none.conf FAKE_XENSTORE_DIR=$T/xs
UUID=0a1b2c3d-0000-4000-8000-0000000000aa
"$VGPU_ADMIN_BIN" register-vm --vm-uuid "$UUID" --vm-name wrapped-vm --pool B --priority high \
	--vm-id 42 >/dev/null
mkdir -p "$FAKE_XENSTORE_DIR/local/domain/5"
printf '/vm/%s\n' "$UUID" >"$FAKE_XENSTORE_DIR/local/domain/5/vm"
printf 'wrapped-vm\n' >"$FAKE_XENSTORE_DIR/local/domain/5/name"
# The stock wrapper's part: drop the domid and --syslog, run QEMU.
cat >"$T/stock-wrapper" <<EOF
#!/bin/bash
shift 2
exec "$VGPU_QEMU" "\$@"
EOF
chmod 755 "$T/stock-wrapper"
export VGPU_STOCK_WRAPPER=$T/stock-wrapper
PATH="$VGPU_FAKES:$PATH" boot_via wrap basic "$VGPU_BUILD/xcpng/vgpu-qemu-wrapper" 5 --syslog &&
	pass "wrapper path: guest booted ($BOOT_S s)"
expect_eq "$(json wrap '.devices[0] | "\(.pool) \(.priority) \(.vm_id)"')" "B 2 42" \
	"wrapper path: the guest reads the registry's pool, priority and vm_id"
finish
