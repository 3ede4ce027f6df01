# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034 # the variables are for the tests
# tests/xcpng/lib.sh - what the XCP-ng integration tests share: a private
# temporary directory, the fake xenstore, a registry made with sqlite3, the
# stand-in stock wrapper, and assertions. Sourced by each test script.
#
# Must never: touch anything outside the test's temporary directory, or let
# a developer's own settings ($VGPU_DB, /etc/vgpu/vgpu.conf) reach the code
# under test.
set -eu

: "${VGPU_BUILD:?run through meson test}" "${VGPU_SRC:?}" "${VGPU_FAKES:?}"
: "${VGPU_INIT_DB_SQL:?}"

WRAPPER=$VGPU_BUILD/xcpng/vgpu-qemu-wrapper
STARTUP=$VGPU_SRC/xcpng/vgpu-vm-startup.sh
STOCK=$VGPU_BUILD/tests/xcpng/argv-dump

T=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-xcpng.XXXXXX")
trap 'rm -rf "$T"' EXIT

export FAKE_XENSTORE_DIR=$T/xs
export ARGV_DUMP_FILE=$T/argv
export VGPU_STOCK_WRAPPER=$STOCK
export VGPU_CONF=$T/vgpu.conf   # absent unless a test writes it
export VGPU_DB=$T/vgpu_config.db
unset VGPU_ADMIN
mkdir -p "$FAKE_XENSTORE_DIR" "$T/bin"
export PATH="$T/bin:$VGPU_FAKES:$PATH"
TEST_PATH=$PATH

# A typical xenopsd command line, and one with hostile bytes in it.
QEMU_ARGS=(-xen-domid 5 -chardev
	"socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-5,server,nowait"
	-mon "chardev=libxl-cmd,mode=control" -nodefaults -no-user-config
	-name vm1 -vnc "unix:/var/run/xen/vnc-5,lock-key-sync=off" -m 2048)
ODD_ARGS=("" "with space" "a,b,,c" "'single'" '"double"' 'back\slash' "tab	x"
	$'new\nline' "-device" "vgpu-stub,pool_id=A" "*" "\$(touch pwned)" "" "é ü")

UUID1=0a1b2c3d-0000-4000-8000-000000000001
UUID2=0a1b2c3d-0000-4000-8000-000000000002
UUID3=0a1b2c3d-0000-4000-8000-000000000003

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# xs_domain DOMID UUID NAME: what xenopsd writes for a domain.
xs_domain() {
	mkdir -p "$FAKE_XENSTORE_DIR/local/domain/$1"
	printf '/vm/%s' "$2" >"$FAKE_XENSTORE_DIR/local/domain/$1/vm"
	printf '%s' "$3" >"$FAKE_XENSTORE_DIR/local/domain/$1/name"
}

# make_db: an empty registry at $VGPU_DB.
make_db() {
	rm -f "$VGPU_DB"
	sqlite3 "$VGPU_DB" <"$VGPU_INIT_DB_SQL"
}

# register UUID NAME POOL PRIORITY VM_ID
register() {
	sqlite3 "$VGPU_DB" "INSERT INTO vms (vm_uuid, vm_name, pool_id, priority, vm_id)
		VALUES ('$1', '$2', '$3', $4, $5);"
}

# run_wrapper ARG...: run the wrapper; sets $status, stderr in $T/stderr.
# A PATH given for the call (PATH=x run_wrapper ...) reaches only the wrapper.
run_wrapper() {
	local wrapper_path=$PATH

	PATH=$TEST_PATH
	rm -f "$ARGV_DUMP_FILE"
	status=0
	PATH=$wrapper_path "$WRAPPER" "$@" >"$T/stdout" 2>"$T/stderr" || status=$?
}

# expect_argv ARG...: the stock wrapper ran with exactly this vector.
expect_argv() {
	[ -e "$ARGV_DUMP_FILE" ] || {
		cat "$T/stderr" >&2
		fail "the stock wrapper did not run (status $status)"
	}
	printf '%s\0' "$@" >"$T/expected"
	if ! cmp -s "$T/expected" "$ARGV_DUMP_FILE"; then
		echo "expected:" >&2
		tr '\0' '\n' <"$T/expected" | cat -A >&2
		echo "got:" >&2
		tr '\0' '\n' <"$ARGV_DUMP_FILE" | cat -A >&2
		cat "$T/stderr" >&2
		fail "argument vector differs"
	fi
	[ "$status" -eq 0 ] || fail "status $status, expected 0"
}

expect_not_run() {
	[ ! -e "$ARGV_DUMP_FILE" ] || fail "the stock wrapper ran"
}

# expect_log REGEX: a line of the wrapper's stderr matches.
expect_log() {
	grep -Eq -- "$1" "$T/stderr" || {
		cat "$T/stderr" >&2
		fail "no log line matching: $1"
	}
}
