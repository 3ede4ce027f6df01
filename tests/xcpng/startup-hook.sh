#!/bin/bash
# SPDX-License-Identifier: MIT
# startup-hook.sh - vgpu-vm-startup.sh as an /etc/xapi.d/vm-pre-start/ hook
# (-vmuuid U -reason R): the same work, and it never vetoes a start: every
# outcome exits 0.
. "$(dirname "$0")/startup-lib.sh"

SET7="vm-param-set uuid=$UUID1 platform:vgpu-pool=B platform:vgpu-priority=2 platform:vgpu-vm-id=7"

make_db
register "$UUID1" i-2-33-VM B 2 7

run_startup -vmuuid "$UUID1" -reason start
expect_status 0
expect_xe "$SET7"
run_startup -reason none -vmuuid "$UUID1"
expect_status 0
expect_xe "$SET7"
run_startup -vmuuid "$UUID1" -reason start -future-option x
expect_status 0
expect_xe "$SET7"
ok "hook: registered VM, -vmuuid/-reason in any order: exactly one xe $SET7"

run_startup -vmuuid "$UUID2" -reason start
expect_status 0
expect_no_xe
if [ -s "$T/stdout" ] || [ -s "$T/stderr" ]; then fail "unregistered VM: output"; fi
ok "hook: unregistered VM: silent, status 0, no xe"

VGPU_DB=$T/missing.db run_startup -vmuuid "$UUID1" -reason start
expect_status 0
expect_stderr 'warning: no vgpu registry'
expect_no_xe
ok "hook: missing registry: warning, status 0"

VGPU_ADMIN=$T/no-such-admin run_startup -vmuuid "$UUID1" -reason start
expect_status 0
expect_stderr 'error: vgpu-admin not found'
expect_no_xe
ok "hook: vgpu-admin missing: error printed, status 0"

touch "$T/xe.fail"
run_startup -vmuuid "$UUID1" -reason start
expect_status 0
expect_stderr 'error: xe vm-param-set failed'
rm "$T/xe.fail"
ok "hook: xe fails: error printed, status 0"

for args in "-vmuuid not-a-uuid -reason start" "-vmuuid" "-reason start" "-vmuuid $UUID1 -reason"; do
	# shellcheck disable=SC2086 # splitting is the point
	run_startup $args
	expect_status 0
	expect_no_xe
	expect_stderr 'error: '
done
ok "hook: malformed arguments: error printed, status 0"
