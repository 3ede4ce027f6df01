#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# guest-init.sh - /init of the VM test's initramfs (busybox and the guest
# tools, nothing else). It reports on the serial console, between
# VGPU-TEST-BEGIN and VGPU-TEST-END, what the guest sees of its vgpu-stub
# devices, then powers the VM off. The host side (test-vm.sh) checks it.
#
# vgpu_test=regs on the kernel command line also pokes the registers with
# devmem: the magic, an unknown offset, a write to a read-only register,
# and 50 reads of an unknown offset (for the host to see rate-limiting).
# vgpu_test=live watches the pool and priority vgpu-guest-info reads, ten
# times a second: each change is a line "LIVE POOLPRIORITY INT_STATUS"
# (the interrupt causes then, cleared after), until the pool and priority
# are vgpu_want's (a letter and a digit), or 300 s passed.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /etc
printf 'root:x:0:0::/:/bin/sh\nguest:x:1000:1000::/:/bin/sh\n' >/etc/passwd
printf 'root:x:0:\nguest:x:1000:\n' >/etc/group
test=$(sed -n 's/.*vgpu_test=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "VGPU-TEST-BEGIN $test"
for d in /sys/bus/pci/devices/*; do
	echo "PCI $(basename "$d") $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"
done
vgpu-guest-info
echo "INFO-RC $?"
vgpu-guest-info --json
echo "JSON-RC $?"
su -s /bin/sh guest -c vgpu-guest-info
echo "USER-RC $?"
if [ "$test" = regs ]; then
	dev=$(grep -l 0x1111 /sys/bus/pci/devices/*/device | head -n 1)
	base=$(head -n 1 "${dev%/device}/resource" | cut -d ' ' -f 1)
	echo "REG-MAGIC $(devmem "$base" 32)"
	echo "REG-VMID $(devmem $((base + 0x10)) 32)"
	echo "REG-UNKNOWN $(devmem $((base + 0x300)) 32)"
	devmem $((base + 0x10)) 32 0x12345678
	echo "REG-VMID-AFTER-WRITE $(devmem $((base + 0x10)) 32)"
	i=0
	while [ $i -lt 50 ]; do
		devmem $((base + 0x400)) 32 >/dev/null
		i=$((i + 1))
	done
	# One more guest error a second later: the device then logs how many
	# of the burst it left out.
	sleep 2
	devmem $((base + 0x404)) 32 >/dev/null
	echo "REG-BURST-DONE"
fi
if [ "$test" = live ]; then
	want=$(sed -n 's/.*vgpu_want=\([A-Z][0-2]\).*/\1/p' /proc/cmdline)
	dev=$(grep -l 0x1111 /sys/bus/pci/devices/*/device | head -n 1)
	base=$(head -n 1 "${dev%/device}/resource" | cut -d ' ' -f 1)
	last=""
	i=0
	while [ $i -lt 3000 ]; do
		now=$(vgpu-guest-info --json | sed -n 's/.*"pool":"\([A-Z]\)","priority":\([0-2]\),.*/\1\2/p')
		if [ "$now" != "$last" ]; then
			echo "LIVE $now $(devmem $((base + 0x104)) 32)"
			devmem $((base + 0x104)) 32 0xf
			last=$now
		fi
		[ "$now" = "$want" ] && break
		usleep 100000
		i=$((i + 1))
	done
fi
echo "VGPU-TEST-END"
poweroff -f
