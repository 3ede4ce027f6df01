#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# ring-init.sh - /init of the device-path VM tests (test-ring.sh): busybox
# and guest_ring. vgpu_test=ops|hostile|loop on the kernel command line
# picks what guest_ring does (vgpu_arg=N its argument); its report goes
# to the serial console between VGPU-TEST-BEGIN and VGPU-TEST-END, then
# the VM powers off. Huge pages come from hugepages= on the command line.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
test=$(sed -n 's/.*vgpu_test=\([a-z]*\).*/\1/p' /proc/cmdline)
arg=$(sed -n 's/.*vgpu_arg=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "VGPU-TEST-BEGIN $test"
echo "GUEST-READY"
guest_ring "$test" $arg
echo "RING-RC $?"
echo "VGPU-TEST-END"
poweroff -f
