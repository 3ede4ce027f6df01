#!/bin/bash
# SPDX-License-Identifier: MIT
# vgpu-xenopsd-hook - point XCP-ng's xenopsd at vgpu-qemu-wrapper, or back
# at its stock wrapper, with a rollback when xenopsd does not come back.
#
#   vgpu-xenopsd-hook enable [--wrapper PATH] [--conf FILE]
#   vgpu-xenopsd-hook disable [--conf FILE]
#   vgpu-xenopsd-hook status [--conf FILE]
#
# enable: keeps a copy of FILE (/etc/xenopsd.conf) as FILE.vgpu-backup
# (once: the copy is the file as it was before vgpu), sets
# upstream-compat-qemu-dm-wrapper=PATH (/usr/sbin/vgpu-qemu-wrapper) in it,
# restarts xenopsd-xc and checks that it is active; if it is not, puts the
# file back as it was, restarts xenopsd-xc again and exits 1.
# disable: puts FILE back as it was before vgpu (the backup, else without
# the key), restarts xenopsd-xc and checks it; the package's removal runs
# it. status: "enabled PATH" or "disabled"; exit 0.
# Exit status: 0 done, 1 failed (and rolled back), 2 usage. docs/xcp-ng.md.
set -euo pipefail

KEY=upstream-compat-qemu-dm-wrapper
SERVICE=xenopsd-xc
conf=/etc/xenopsd.conf
wrapper=/usr/sbin/vgpu-qemu-wrapper

usage() {
	sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
say() { echo "vgpu-xenopsd-hook: $*" >&2; }

[ $# -ge 1 ] || usage
action=$1
shift
while [ $# -gt 0 ]; do
	case $1 in
	--wrapper) [ $# -ge 2 ] || usage; wrapper=$2; shift 2 ;;
	--conf) [ $# -ge 2 ] || usage; conf=$2; shift 2 ;;
	*) usage ;;
	esac
done
backup=$conf.vgpu-backup

current() { sed -n "s/^$KEY=//p" "$conf" 2>/dev/null | tail -n 1; }

# Restart xenopsd and wait for it to be active (it checks the wrapper).
restart() {
	systemctl restart "$SERVICE" || return 1
	for _ in 1 2 3 4 5; do
		systemctl is-active --quiet "$SERVICE" && return 0
		sleep 1
	done
	return 1
}

# Whether FILE names a vgpu wrapper.
ours() { case $(current) in */vgpu-qemu-wrapper) return 0 ;; *) return 1 ;; esac; }

# FILE as it was before vgpu: the backup, or FILE without vgpu's key.
put_back() {
	if [ -f "$backup" ]; then
		cp -p "$backup" "$conf"
	elif ours; then
		sed -i "/^$KEY=/d" "$conf"
	fi
}

case $action in
status)
	w=$(current)
	if [ -n "$w" ] && [ "$w" = "$wrapper" ]; then echo "enabled $w"; else echo "disabled"; fi
	;;
enable)
	case $wrapper in /*) ;; *) say "--wrapper must be an absolute path"; exit 2 ;; esac
	if [ ! -x "$wrapper" ]; then
		say "$wrapper is not an executable file"
		exit 1
	fi
	if ! "$wrapper" --version >/dev/null 2>&1; then
		say "$wrapper does not run"
		exit 1
	fi
	if [ "$(current)" = "$wrapper" ]; then
		say "xenopsd uses $wrapper already"
		exit 0
	fi
	[ -f "$conf" ] || touch "$conf"
	[ -f "$backup" ] || cp -p "$conf" "$backup"
	tmp=$(mktemp "$conf.XXXXXX")
	sed "/^$KEY=/d" "$conf" >"$tmp"
	echo "$KEY=$wrapper" >>"$tmp"
	chmod --reference="$conf" "$tmp"
	mv "$tmp" "$conf"
	if restart; then
		say "xenopsd now starts VMs' QEMU through $wrapper"
		exit 0
	fi
	say "$SERVICE did not come back with $wrapper: rolling back"
	put_back
	if restart; then
		say "rolled back: $SERVICE runs with its stock wrapper"
	else
		say "rolled back $conf, but $SERVICE is still not active: check 'systemctl status $SERVICE'"
	fi
	exit 1
	;;
disable)
	if ! ours && [ ! -f "$backup" ]; then
		say "xenopsd uses its stock wrapper already"
		exit 0
	fi
	put_back
	rm -f "$backup"
	if restart; then
		say "xenopsd uses its stock wrapper again"
		exit 0
	fi
	say "$SERVICE is not active after the change back: check 'systemctl status $SERVICE'"
	exit 1
	;;
*)
	usage
	;;
esac
