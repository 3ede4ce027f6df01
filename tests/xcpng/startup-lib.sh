# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# tests/xcpng/startup-lib.sh - what the vgpu-vm-startup.sh tests share on top
# of lib.sh: the real vgpu-admin ($VGPU_ADMIN_BIN) and a private `xe` stub.
#
# The xe stub lives in the test's own bin directory (first on PATH), so these
# tests do not depend on tests/fakes/xe: it appends each call to $T/xe.log,
# one line per call, the arguments joined by spaces, and fails (status 1)
# while $T/xe.fail exists.
. "$(dirname "$0")/lib.sh"

: "${VGPU_ADMIN_BIN:?}"
export VGPU_ADMIN=$VGPU_ADMIN_BIN

cat >"$T/bin/xe" <<'STUB'
#!/bin/bash
printf '%s\n' "$*" >>"${XE_STUB_DIR:?}/xe.log"
if [ -e "$XE_STUB_DIR/xe.fail" ]; then
	echo "The uuid you supplied was invalid." >&2
	exit 1
fi
exit 0
STUB
chmod +x "$T/bin/xe"
export XE_STUB_DIR=$T

# run_startup ARG...: sets $status; output in $T/stdout and $T/stderr.
run_startup() {
	rm -f "$T/xe.log"
	status=0
	"$STARTUP" "$@" >"$T/stdout" 2>"$T/stderr" || status=$?
}

expect_status() {
	[ "$status" -eq "$1" ] || {
		cat "$T/stdout" "$T/stderr" >&2
		fail "status $status, expected $1"
	}
}

# expect_xe LINE...: exactly these xe calls were made.
expect_xe() {
	[ -e "$T/xe.log" ] || fail "xe was not called"
	printf '%s\n' "$@" | cmp -s - "$T/xe.log" || {
		cat "$T/xe.log" >&2
		fail "unexpected xe calls"
	}
}

expect_no_xe() {
	[ ! -e "$T/xe.log" ] || fail "xe was called: $(cat "$T/xe.log")"
}

expect_stderr() {
	grep -Eq -- "$1" "$T/stderr" || {
		cat "$T/stderr" >&2
		fail "no message matching: $1"
	}
}
