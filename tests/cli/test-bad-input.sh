#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input on every flag: a clear message naming the problem, a non-zero
# exit, and a registry left exactly as it was.
. "$(dirname "$0")/lib.sh"

admin register-vm --vm-uuid "$U1" --vm-name one --pool A --vm-id 1
admin register-vm --vm-uuid "$U2" --vm-name two --pool B --vm-id 2
before=$(snapshot)

# bad CMD ARGS... -- EXIT MESSAGE: run, expect the exit code and message, and
# an unchanged registry.
bad() {
	local args=() want msg
	while [ "$1" != "--" ]; do args+=("$1"); shift; done
	shift; want=$1; msg=$2
	admin "${args[@]}"
	local what="${args[*]}"
	expect_rc "$want" "rejects: ${what:0:70}"
	expect_err "$msg" "  message: $msg"
	expect_eq "$(snapshot)" "$before" "  registry unchanged"
}

# Malformed UUIDs.
for u in "" "1234" "${U3}0" "${U3:0:35}" "g${U3:1}" "${U3//-/}" "${U3:0:8}_${U3:9}" " $U3" "$U3 "; do
	bad register-vm --vm-uuid "$u" -- 2 "invalid --vm-uuid"
done
bad show-vm --vm-uuid "not-a-uuid" -- 2 "expected xxxxxxxx-xxxx"
bad remove-vm --vm-uuid "zz" -- 2 "invalid --vm-uuid"

# Pools.
for p in "[" "@" AB "" 1 "A " "é"; do
	bad register-vm --vm-uuid "$U3" --pool "$p" -- 2 "must be one letter A to Z"
done
bad set-pool --vm-uuid "$U1" --pool 1 --yes -- 2 "must be one letter A to Z"
bad list-vms --pool AB -- 2 "must be one letter A to Z"
# Letters whose pool was never made.
bad register-vm --vm-uuid "$U3" --pool c -- 3 "pool C does not exist"
bad show-pool --pool-id Z -- 3 "pool Z does not exist"
bad update-pool --pool Q --weight 5 -- 3 "pool Q does not exist"
bad delete-pool --pool Q -- 3 "pool Q does not exist"

# Pool settings.
bad create-pool --pool A -- 4 "pool A exists"
bad delete-pool --pool A -- 2 "defaults"
bad delete-pool --pool b -- 2 "defaults"
bad create-pool -- 2 "needs --pool"
bad update-pool --pool A -- 2 "at least one of"
for w in 0 10001 -1 x "" 1.5 " 5" 99999999999999999999; do
	bad create-pool --pool C --weight "$w" -- 2 "must be an integer in 1..10000"
	bad update-pool --pool A --weight "$w" -- 2 "must be an integer in 1..10000"
done
for c in 0 101 -5 50% x; do
	bad create-pool --pool C --cap "$c" -- 2 "must be a percentage in 1..100"
done
for g in 32 "0," ",1" "1,1" "" "-1" "0x1" "none" "0 1"; do
	bad create-pool --pool C --gpus "$g" -- 2 "must be all, or GPU numbers 0..31"
done
bad create-pool --pool C --name "" -- 2 "invalid --name"
bad create-pool --pool C --name "$(printf 'a\tb')" -- 2 "invalid --name"
bad create-pool --pool C --description "$(printf 'x\001')" -- 2 "invalid --description"
bad create-pool --pool C --description "$(head -c 1024 /dev/zero | tr '\0' d)" -- 2 "at most 1023 bytes"
bad create-pool --pool C --weight 5 --weight 6 -- 2 "given twice"
bad update-pool --pool A --vm-id 3 -- 2 "not valid for update-pool"

# A VM's scheduler settings.
bad set-sched --vm-uuid "$U1" -- 2 "at least one of"
bad set-sched --weight 5 -- 2 "needs --vm-uuid"
bad set-sched --vm-uuid "$U3" --weight 5 -- 3 "no VM is registered"
for r in -1 32001 x "" 1e3; do
	bad set-sched --vm-uuid "$U1" --rate-limit "$r" -- 2 "GPU-milliseconds per second in 0..32000"
done
for q in -1 16777217 x 1G; do
	bad set-sched --vm-uuid "$U1" --mem-quota "$q" -- 2 "must be MiB in 0..16777216"
done
bad set-sched --vm-uuid "$U1" --weight 0 -- 2 "must be an integer in 1..10000"

# Priorities.
for p in 7 3 -1 "" lowest HIGH1 " 1"; do
	bad register-vm --vm-uuid "$U3" --priority "$p" -- 2 "must be low, medium, high"
done
bad set-priority --vm-uuid "$U1" --priority 7 --yes -- 2 "must be low, medium, high"

# vm_ids.
for i in 0 -1 -5 2147483648 99999999999999999999 1.5 0x10 "+3" " 3" "3 " abc ""; do
	bad register-vm --vm-uuid "$U3" --vm-id "$i" -- 2 "must be an integer in 1..2147483647"
done
bad set-vm-id --vm-uuid "$U1" --vm-id 0 --yes -- 2 "1..2147483647"
bad register-vm --vm-uuid "$U3" --vm-id 2 -- 4 "vm_id 2 is already used"
bad set-vm-id --vm-uuid "$U1" --vm-id 2 --yes -- 4 "already used"
bad register-vm --vm-uuid "${U1^^}" -- 4 "already registered"

# Names: control characters, bad UTF-8, too long.
bad register-vm --vm-uuid "$U3" --vm-name $'a\nb' -- 2 "invalid --vm-name"
bad register-vm --vm-uuid "$U3" --vm-name $'tab\there' -- 2 "invalid --vm-name"
bad register-vm --vm-uuid "$U3" --vm-name $'esc\e[31m' -- 2 "invalid --vm-name"
bad register-vm --vm-uuid "$U3" --vm-name $'del\x7f' -- 2 "invalid --vm-name"
bad register-vm --vm-uuid "$U3" --vm-name $'bad\xff\xfe' -- 2 "invalid --vm-name"
bad register-vm --vm-uuid "$U3" --vm-name "$(printf 'x%.0s' $(seq 256))" -- 2 "invalid --vm-name"
bad update-vm --vm-uuid "$U1" --vm-name $'\x01' -- 2 "invalid --vm-name"
# A message never echoes raw control bytes back to the terminal.
admin register-vm --vm-uuid $'\e[2Jxx'
case "$ERR" in *$'\e'*) fail "escape sequence echoed" ;; *) pass "escape sequence not echoed" ;; esac

# Timeouts.
for t in 0 3601 -1 x ""; do
	bad set-pool --vm-uuid "$U1" --pool B --timeout "$t" -- 2 "must be seconds in 1..3600"
done

# Unknown or misused commands and options.
bad frobnicate -- 2 "unknown command 'frobnicate'"
bad list-vms --frob -- 2 "option '--frob' is not known"
bad list-vms -x -- 2 "is not known"
bad register-vm -- 2 "register-vm needs --vm-uuid"
bad set-pool --vm-uuid "$U1" -- 2 "set-pool needs --pool"
bad register-vm --vm-uuid -- 2 "needs a value"
bad list-vms --json=yes -- 2 "takes no value"
bad list-vms extra -- 2 "unexpected argument 'extra'"
bad show-vm --vm-uuid "$U1" --vm-name one -- 2 "exactly one of"
bad show-vm --vm-uuid "$U1" --json --export -- 2 "cannot be used together"
bad register-vm --vm-uuid "$U3" --pool A --pool B -- 2 "given twice"
bad remove-vm --vm-uuid "$U1" --pool A -- 2 "option --pool is not valid for remove-vm"
bad update-vm --vm-uuid "$U1" -- 2 "needs at least one of"
bad list-vms --db "" -- 2 "empty path"
bad set-pool --vm-uuid "$U3" --pool B --yes -- 3 "no VM is registered"

# Names with quotes and SQL are data, stored verbatim.
sql="x'); DROP TABLE vms; --"
admin register-vm --vm-uuid "$U3" --vm-name "$sql"
expect_rc 0 "a name with quotes and SQL is accepted"
expect_eq "$(sqlite3 "$DB" "SELECT vm_name FROM vms WHERE vm_uuid='$U3'")" "$sql" "stored verbatim"
expect_eq "$(sqlite3 "$DB" "SELECT COUNT(*) FROM vms")" "3" "vms table intact"
admin show-vm --vm-name "$sql"
expect_rc 0 "found by that name"
before=$(snapshot)

# Registry problems: unwritable directory, not a database, newer schema.
bad list-pools --db /proc/vgpu-test/reg.db -- 1 "cannot create directory /proc/vgpu-test"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	mkdir -p "$T/locked"; chmod 755 "$T/locked"
	set +e
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VGPU_ADMIN_BIN" --db "$T/locked/sub/reg.db" list-pools >"$T/out" 2>"$T/err"
	RC=$?; set -e; ERR=$(cat "$T/err")
	expect_rc 1 "unwritable database directory (as nobody)"
	expect_err "Permission denied" "says permission denied"
	[ ! -e "$T/locked/sub" ] && pass "nothing created" || fail "directory created"
else
	mkdir -p "$T/locked"; chmod 555 "$T/locked"
	admin_db() { set +e; "$VGPU_ADMIN_BIN" --db "$T/locked/sub/reg.db" list-pools >/dev/null 2>"$T/err"; RC=$?; set -e; ERR=$(cat "$T/err"); }
	admin_db
	expect_rc 1 "unwritable database directory"
	expect_err "Permission denied" "says permission denied"
fi
echo "this is not a database" >"$T/junk.db"
set +e; "$VGPU_ADMIN_BIN" --db "$T/junk.db" list-vms >/dev/null 2>"$T/err"; RC=$?; set -e; ERR=$(cat "$T/err")
expect_rc 1 "a file that is not a database"
expect_err "not a database" "says it is not a database"
expect_eq "$(cat "$T/junk.db")" "this is not a database" "the file is untouched"
cp "$DB" "$T/future.db"
sqlite3 "$T/future.db" "PRAGMA user_version = 99"
set +e; "$VGPU_ADMIN_BIN" --db "$T/future.db" list-vms >/dev/null 2>"$T/err"; RC=$?; set -e; ERR=$(cat "$T/err")
expect_rc 1 "a registry from a newer vgpu"
expect_err "newer than this vgpu supports" "says the schema is newer"
expect_eq "$(sqlite3 "$T/future.db" 'PRAGMA user_version')" "99" "newer registry left alone"

expect_eq "$(snapshot)" "$before" "registry unchanged by all of the above"
finish
