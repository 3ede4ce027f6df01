#!/bin/sh
# `make run`: the main job on embedded defaults. Creates a fresh registry
# under ./var/, registers example VMs in both pools at every priority, and
# prints the control panel. Nothing outside ./var/ is touched.
# usage: run-example.sh BUILD_DIR
set -eu
build=${1:-build}
admin="$build/admin/vgpu-admin"
var=./var
db=$var/vgpu_config.db

mkdir -p "$var"
rm -f "$db" "$db-wal" "$db-shm"

# uuid name pool priority
while read -r uuid name pool prio; do
	"$admin" --db "$db" register-vm --vm-uuid "$uuid" --vm-name "$name" \
		--pool "$pool" --priority "$prio" >/dev/null
done <<'VMS'
6f1c2a10-0000-4000-8000-00000000a001 render-a1 A high
6f1c2a10-0000-4000-8000-00000000a002 train-a2 A medium
6f1c2a10-0000-4000-8000-00000000a003 batch-a3 A low
6f1c2a10-0000-4000-8000-00000000b001 infer-b1 B high
6f1c2a10-0000-4000-8000-00000000b002 notebook-b2 B medium
6f1c2a10-0000-4000-8000-00000000b003 backfill-b3 B low
VMS

echo "Registry: $db (6 example VMs; try: $admin --db $db list-vms)"
echo
"$admin" --db "$db" status
