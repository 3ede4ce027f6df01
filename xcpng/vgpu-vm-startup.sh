#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-vm-startup.sh - copy a VM's vgpu settings from the registry into its
# XAPI platform keys (platform:vgpu-pool, vgpu-priority, vgpu-vm-id), which
# reach xenstore at /local/domain/<domid>/platform/ when the domain is built.
#
#   vgpu-vm-startup.sh VM-UUID                    (by hand)
#   vgpu-vm-startup.sh -vmuuid UUID -reason WHY   (/etc/xapi.d/vm-pre-start/ hook)
#
# Must never: veto a VM start in hook mode (every outcome exits 0 there),
# eval or source what vgpu-admin prints, or run xe for an unregistered VM.
set -u -o pipefail

readonly PROG=vgpu-vm-startup.sh
readonly DEFAULT_DB=/etc/vgpu/vgpu_config.db
readonly STEP_TIMEOUT=60   # seconds for each of vgpu-admin and xe

hook=0

usage() {
	cat <<EOF
Usage: $PROG VM-UUID
       $PROG -vmuuid VM-UUID -reason REASON   (as a vm-pre-start hook)
       $PROG --help

Sets the platform keys vgpu-pool, vgpu-priority and vgpu-vm-id of a VM
registered in the vgpu registry (\$VGPU_DB, default $DEFAULT_DB) with
'xe vm-param-set'. Does nothing for a VM that is not registered.

Environment: VGPU_ADMIN (the vgpu-admin program), VGPU_DB (the registry).
Exit status: 0 done or nothing to do, 1 error, 2 usage error. In hook mode
the status is always 0: vgpu never vetoes a VM start.
EOF
}

# Print an error and exit with $1, or with 0 in hook mode.
die() {
	local status=$1
	shift
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	if [ "$hook" = 1 ]; then
		exit 0
	fi
	exit "$status"
}

# Run "$@" with the step deadline when coreutils' timeout is there.
bounded() {
	if command -v timeout >/dev/null 2>&1; then
		timeout -k 5 "$STEP_TIMEOUT" "$@"
	else
		"$@"
	fi
}

uuid=
if [ $# -eq 1 ] && [ "$1" = --help ]; then
	usage
	exit 0
elif [ $# -ge 1 ] && { [ "$1" = -vmuuid ] || [ "$1" = -reason ]; }; then
	hook=1
	while [ $# -gt 0 ]; do
		case $1 in
		-vmuuid | -reason)
			[ $# -ge 2 ] || die 2 "option $1 needs a value"
			[ "$1" = -vmuuid ] && uuid=$2
			shift 2
			;;
		*)
			# XAPI may add arguments in a later version: not ours to refuse.
			shift
			;;
		esac
	done
elif [ $# -eq 1 ] && [ "${1#-}" = "$1" ]; then
	uuid=$1
else
	usage >&2
	exit 2
fi

uuid_re='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
[[ $uuid =~ $uuid_re ]] || die 2 "not a VM UUID: '${uuid//[^[:print:]]/?}'"

admin=${VGPU_ADMIN:-}
if [ -z "$admin" ]; then
	admin=$(command -v vgpu-admin) || admin=
fi
if [ -z "$admin" ] || [ ! -x "$admin" ]; then
	die 1 "vgpu-admin not found (set VGPU_ADMIN or put it on PATH)"
fi

db=${VGPU_DB:-$DEFAULT_DB}
if [ ! -e "$db" ]; then
	printf '%s: warning: no vgpu registry at %s; VM %s starts without vgpu settings\n' \
		"$PROG" "$db" "$uuid" >&2
	exit 0
fi

errfile=$(mktemp) || die 1 "cannot create a temporary file"
trap 'rm -f "$errfile"' EXIT
out=$(bounded "$admin" --db "$db" show-vm --vm-uuid "$uuid" --export 2>"$errfile")
status=$?
case $status in
0) ;;
3) exit 0 ;; # not registered: nothing to do
*) die 1 "vgpu-admin show-vm failed (status $status): $(head -c 512 "$errfile")" ;;
esac

# Each line is KEY=VALUE; only the three keys below are used, each exactly
# once and in its strict form. Other VGPU_* keys are left for later versions.
vm_id='' pool='' priority=''
while IFS= read -r line; do
	case $line in
	VGPU_VM_ID=*)
		[ -z "$vm_id" ] || die 1 "vgpu-admin printed VGPU_VM_ID twice"
		vm_id=${line#*=}
		if ! [[ $vm_id =~ ^[1-9][0-9]{0,9}$ ]] || [ "$vm_id" -gt 2147483647 ]; then
			die 1 "vgpu-admin printed a malformed VGPU_VM_ID"
		fi
		;;
	VGPU_POOL_ID=*)
		[ -z "$pool" ] || die 1 "vgpu-admin printed VGPU_POOL_ID twice"
		pool=${line#*=}
		[[ $pool =~ ^[AB]$ ]] || die 1 "vgpu-admin printed a malformed VGPU_POOL_ID"
		;;
	VGPU_PRIORITY=*)
		[ -z "$priority" ] || die 1 "vgpu-admin printed VGPU_PRIORITY twice"
		priority=${line#*=}
		[[ $priority =~ ^[012]$ ]] || die 1 "vgpu-admin printed a malformed VGPU_PRIORITY"
		;;
	VGPU_[A-Z0-9_]*=*) ;;
	*) die 1 "vgpu-admin printed an unexpected line" ;;
	esac
done <<<"$out"
if [ -z "$vm_id" ] || [ -z "$pool" ] || [ -z "$priority" ]; then
	die 1 "vgpu-admin did not print VGPU_VM_ID, VGPU_POOL_ID and VGPU_PRIORITY"
fi

if ! bounded xe vm-param-set uuid="$uuid" platform:vgpu-pool="$pool" \
	platform:vgpu-priority="$priority" platform:vgpu-vm-id="$vm_id"; then
	die 1 "xe vm-param-set failed for VM $uuid"
fi
printf '%s: VM %s: vgpu-pool=%s vgpu-priority=%s vgpu-vm-id=%s\n' \
	"$PROG" "$uuid" "$pool" "$priority" "$vm_id"
exit 0
