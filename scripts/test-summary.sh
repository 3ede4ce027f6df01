#!/bin/sh
# SPDX-License-Identifier: MIT
# Print one closing line over the meson test logs of the given build
# directories: "tests: N passed, M failed". Exits non-zero when any failed.
set -eu
passed=0
failed=0
for dir in "$@"; do
	log="$dir/meson-logs/testlog.json"
	[ -f "$log" ] || continue
	p=$(grep -c '"result": "OK"' "$log" || true)
	t=$(grep -c '"result": ' "$log" || true)
	passed=$((passed + p))
	failed=$((failed + t - p))
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
