# SPDX-License-Identifier: MIT
# lib.sh - shared by the vgpu-admin tests: a temporary registry, the fake xe
# first on PATH, and assertions that print what they check.
# Sourced by bash scripts run under `meson test` (env from tests/meson.build).
set -eu

: "${VGPU_ADMIN_BIN:?}" "${VGPU_FAKES:?}" "${VGPU_TESTS:?}"
T=$(mktemp -d /tmp/vgpu-cli-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export FAKE_XE_DIR=$T/xe
mkdir -p "$FAKE_XE_DIR/vms" "$FAKE_XE_DIR/fail" "$FAKE_XE_DIR/hang"
: >"$FAKE_XE_DIR/calls.log"
DB=$T/etc/vgpu_config.db
export FAKE_XE_REGISTRY=$DB
BIN=$T/bin
mkdir -p "$BIN"
ln -s "$VGPU_FAKES/xe" "$BIN/xe"
export PATH=$BIN:$PATH
TTY_RUN=$VGPU_TESTS/helpers/tty-run.py

. "$VGPU_TESTS/lib/assert.sh"

# admin ARGS...: run vgpu-admin on the test registry; sets OUT, ERR, RC.
admin() {
	set +e
	"$VGPU_ADMIN_BIN" --db "$DB" "$@" >"$T/out" 2>"$T/err" </dev/null
	RC=$?
	set -e
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	case "$ERR" in *Sanitizer*|*"runtime error:"*) fail "sanitizer report from: vgpu-admin $*"; echo "$ERR" ;; esac
}

expect_rc() { # expect_rc N DESCRIPTION
	if [ "$RC" -eq "$1" ]; then pass "$2 (exit $1)"; else
		fail "$2: exit $RC, expected $1"; echo "#  stdout: $OUT"; echo "#  stderr: $ERR"; fi
}
expect_out() { # expect_out TEXT DESCRIPTION: stdout contains TEXT
	case "$OUT" in *"$1"*) pass "$2" ;; *) fail "$2: stdout lacks '$1'"; echo "#  stdout: $OUT" ;; esac
}
expect_err() { # expect_err TEXT DESCRIPTION: stderr contains TEXT
	case "$ERR" in *"$1"*) pass "$2" ;; *) fail "$2: stderr lacks '$1'"; echo "#  stderr: $ERR" ;; esac
}

# The registry's VM rows, for "nothing changed" checks.
snapshot() {
	sqlite3 "$DB" "SELECT vm_id, vm_uuid, ifnull(vm_name,'<null>'), pool_id, priority, updated_at FROM vms ORDER BY vm_uuid" 2>&1
}

# The same without updated_at: a rollback writes the old values back, which
# is itself an update.
values() {
	sqlite3 "$DB" "SELECT vm_id, vm_uuid, ifnull(vm_name,'<null>'), pool_id, priority FROM vms ORDER BY vm_uuid" 2>&1
}

# fake_vm UUID NAME POWER: a VM on the fake host.
fake_vm() {
	mkdir -p "$FAKE_XE_DIR/vms/$1"
	printf '%s' "$2" >"$FAKE_XE_DIR/vms/$1/name-label"
	echo "$3" >"$FAKE_XE_DIR/vms/$1/power-state"
}
# xe_fail ACTION [N]: make the fake xe fail ACTION N more times (default: always).
xe_fail() { printf '%s' "${2:-}" >"$FAKE_XE_DIR/fail/$1"; }
xe_ok() { rm -f "$FAKE_XE_DIR/fail/$1"; }
power_of() { cat "$FAKE_XE_DIR/vms/$1/power-state"; }
calls() { cat "$FAKE_XE_DIR/calls.log"; }
reset_calls() { : >"$FAKE_XE_DIR/calls.log"; }

U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333
U4=44444444-4444-4444-8444-444444444444
U5=55555555-5555-4555-8555-555555555555
