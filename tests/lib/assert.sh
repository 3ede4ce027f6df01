# SPDX-License-Identifier: MIT
# assert.sh - the assertions every shell test shares: each prints "ok - ..."
# or "not ok - ...", and finish() exits non-zero when any failed.
FAILS=0
CHECKS=0
pass() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
finish() {
	echo "# $CHECKS checks, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}
expect_eq() { # expect_eq ACTUAL EXPECTED DESCRIPTION
	if [ "$1" = "$2" ]; then pass "$3"; else fail "$3: got '$1', expected '$2'"; fi
}
