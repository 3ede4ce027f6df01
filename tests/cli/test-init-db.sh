#!/bin/bash
# SPDX-License-Identifier: MIT
# init_db.sql on its own with the sqlite3 shell (the seed's build step), the
# schema's constraints enforced by SQLite itself, and a version-1 registry
# migrated forward by vgpu-admin with its rows intact.
. "$(dirname "$0")/lib.sh"
: "${VGPU_INIT_DB_SQL:?}" "${VGPU_SCHEMA_V1:?}"

mkdir -p "$(dirname "$DB")"
sqlite3 "$DB" <"$VGPU_INIT_DB_SQL" && pass "init_db.sql runs in the sqlite3 shell" || fail "init_db.sql failed"
sqlite3 "$DB" <"$VGPU_INIT_DB_SQL" && pass "init_db.sql runs twice (idempotent)" || fail "second run failed"
expect_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" "3" "schema version 3"
expect_eq "$(sqlite3 "$DB" "SELECT group_concat(pool_id || '=' || pool_name, ' ') FROM pools")" \
	"A=Pool A B=Pool B" "pools A and B, once each"
expect_eq "$(sqlite3 "$DB" "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%' ORDER BY name)")" \
	"idx_vm_name idx_vm_pool idx_vm_priority idx_vm_uuid" "the seed's indexes and the name index"

# Constraints hold even for writers that bypass the library.
sqlfail() { # sqlfail SQL DESCRIPTION: the statement must be refused
	if sqlite3 "$DB" "PRAGMA foreign_keys = ON; $1" 2>/dev/null; then fail "$2"; else pass "$2"; fi
}
sqlfail "INSERT INTO pools (pool_id, pool_name) VALUES ('1', 'Pool 1')" "pool 1 refused"
sqlfail "INSERT INTO pools (pool_id, pool_name) VALUES ('c', 'Pool c')" "pool c (lower case) refused"
sqlfail "INSERT INTO pools (pool_id, pool_name, weight) VALUES ('D', 'Pool D', 0)" "weight 0 refused"
sqlfail "INSERT INTO pools (pool_id, pool_name, cap_percent) VALUES ('D', 'Pool D', 101)" "cap 101% refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid, pool_id) VALUES (1, 'u1', 'C')" "VM in a pool that does not exist refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid, rate_limit_ms) VALUES (1, 'u1', -1)" "negative rate limit refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid, priority) VALUES (1, 'u1', 3)" "priority 3 refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid) VALUES (0, 'u1')" "vm_id 0 refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid) VALUES (2147483648, 'u1')" "vm_id 2^31 refused"
sqlfail "INSERT INTO vms (vm_id) VALUES (1)" "VM without UUID refused"
sqlite3 "$DB" "INSERT INTO vms (vm_id, vm_uuid) VALUES (1, '$U1')"
sqlfail "INSERT INTO vms (vm_id, vm_uuid) VALUES (1, '$U2')" "duplicate vm_id refused"
sqlfail "INSERT INTO vms (vm_id, vm_uuid) VALUES (2, '$U1')" "duplicate UUID refused"
sqlfail "DELETE FROM pools WHERE pool_id = 'A'" "pool with VMs cannot be deleted (foreign key)"
expect_eq "$(sqlite3 "$DB" "SELECT pool_id || priority FROM vms WHERE vm_uuid = '$U1'")" "A1" "defaults pool A, priority 1"

admin show-vm --vm-uuid "$U1"
expect_rc 0 "vgpu-admin reads a registry made by init_db.sql"

# A version-1 registry (the seed's schema) is migrated on open.
V1=$T/v1.db
sqlite3 "$V1" <"$VGPU_SCHEMA_V1"
sqlite3 "$V1" "PRAGMA user_version = 1; INSERT INTO vms (vm_id, vm_uuid, vm_name, pool_id, priority) VALUES (4, '$U2', 'old', 'B', 2)"
set +e; "$VGPU_ADMIN_BIN" --db "$V1" show-vm --vm-name old --export >"$T/out" 2>"$T/err"; RC=$?; set -e
OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
expect_rc 0 "version-1 registry opened"
expect_eq "$OUT" $'VGPU_VM_ID=4\nVGPU_POOL_ID=B\nVGPU_PRIORITY=2' "its row is intact and found by name"
expect_eq "$(sqlite3 "$V1" 'PRAGMA user_version')" "3" "migrated to version 3"
expect_eq "$(sqlite3 "$V1" "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_vm_name'")" "1" "migration 2 applied"
expect_eq "$(sqlite3 "$V1" 'PRAGMA integrity_check')" "ok" "integrity_check after migration"
finish
