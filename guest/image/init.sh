#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# init.sh - /init of the guest image scripts/guest-image.sh makes (busybox,
# vgpu.ko, a static vgpu-submit, and for the tests guest_ring): what the
# guest does comes from the kernel command line, vgpu_test=WHAT and
# vgpu_arg=N:
#   gpu          the GPU machine's guest (bench/device-guest.sh)
#   run          `make run`'s guest: load the driver, run workload N
#                through /dev/vgpu0, print its JSON (RUN-JSON ...)
#   driver       the driver and libvgpu checked (tests/vm/test-ring.sh)
#   driverloop   N rounds of vector_adds first, then as driver
#   ops|hostile|loop   guest_ring, driving the registers itself
#   cuda         every program in /cuda/run through the guest libcuda.so.1
#                and the device (dev:/dev/vgpu0, its default in a VM), as
#                an unprivileged user of group vgpu; vgpu_arg=1: cuda_probe
#                once more, holding its memory until killed (SIGKILL),
#                with another run of it, NVML's questions (nvml_check),
#                vgpu-submit and guest_streams beside it, then vgpu-submit
#                and the program again
# The report goes to the serial console between VGPU-TEST-BEGIN and
# VGPU-TEST-END, then the VM powers off. Huge pages (guest_ring) come from
# hugepages= on the command line.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp
test=$(sed -n 's/.*vgpu_test=\([a-z]*\).*/\1/p' /proc/cmdline)
arg=$(sed -n 's/.*vgpu_arg=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "VGPU-TEST-BEGIN $test"
echo "GUEST-READY"
if [ "$test" = gpu ]; then
	# The GPU machine's guest (bench/device-guest.sh): every op verified,
	# then large vector_adds pipelined and small ones one at a time, their
	# arrays in the window (--in-window), JSON for the host.
	insmod /lib/vgpu.ko window_mib=400
	echo "INSMOD-RC $?"
	for op in vector-add saxpy sgemm reduce-sum; do
		vgpu-submit $op --verify --repeat 5 --depth 2 >/tmp/out 2>&1
		echo "OP-$op $?"
	done
	vgpu-submit vector-add --n 16777216 --in-window --depth 2 --repeat 12 --json >/tmp/large.json 2>&1
	echo "LARGE-RC $?"
	echo "LARGE-JSON $(cat /tmp/large.json)"
	vgpu-submit vector-add --n 1024 --in-window --repeat 400 --json >/tmp/small.json 2>&1
	echo "SMALL-RC $?"
	echo "SMALL-JSON $(cat /tmp/small.json)"
elif [ "$test" = cuda ]; then
	# CUDA programs through the device (tests/vm/test-cuda-vm.sh,
	# bench/device-guest-cuda.sh): each one's output as CUDA-OUT lines.
	mkdir -p /etc
	chmod 1777 /tmp
	printf 'root:x:0:0::/:/bin/sh\nguest:x:1000:1000::/:/bin/sh\n' >/etc/passwd
	printf 'root:x:0:\nvgpu:x:900:guest\nguest:x:1000:\n' >/etc/group
	insmod /lib/vgpu.ko
	echo "INSMOD-RC $?"
	chgrp vgpu /dev/vgpu0 && chmod 660 /dev/vgpu0
	for p in /cuda/run/*; do
		n=${p##*/}
		t0=$(date +%s)
		su -s /bin/sh guest -c "LD_LIBRARY_PATH=/cuda/lib $p" >/tmp/out 2>/tmp/err
		echo "CUDA-RC $n $? $(($(date +%s) - t0))"
		sed "s/^/CUDA-OUT $n /" /tmp/out
		sed "s/^/CUDA-ERR $n /" /tmp/err | head -n 20
	done
	if [ "$arg" = 1 ]; then
		# The probe again, holding its device memory
		# (VGPU_PROBE_HOLD_S) until it is killed; beside it meanwhile:
		# the same program, vgpu-submit (it wants the whole window,
		# refused while programs have streams) and guest_streams'
		# misuses of the driver; then, once it is killed, vgpu-submit
		# and the program once more.
		set -- /cuda/run/cuda_probe
		su -s /bin/sh guest -c "VGPU_PROBE_HOLD_S=600 LD_LIBRARY_PATH=/cuda/lib $1" >/tmp/held 2>&1 &
		for _ in $(seq 300); do grep -q '^malloc 0' /tmp/held && break; sleep 0.1; done
		echo "CUDA-HOLDING $(grep -c '^malloc 0' /tmp/held)"
		sleep 4 # the host reads what the VM's worker holds
		su -s /bin/sh guest -c "LD_LIBRARY_PATH=/cuda/lib $1" >/tmp/out 2>/tmp/err
		echo "CUDA-BESIDE-RC $?"
		sed "s/^/CUDA-BESIDE /" /tmp/out
		if [ -x /cuda/bin/nvml_check ]; then
			su -s /bin/sh guest -c "LD_LIBRARY_PATH=/cuda/lib /cuda/bin/nvml_check /cuda/lib/libnvidia-ml.so.1" >/tmp/out 2>&1
			sed "s/^/NVML /" /tmp/out
		fi
		vgpu-submit vector-add --n 16 --verify >/tmp/out 2>&1
		echo "CUDA-SUBMIT-RC $?"
		sed "s/^/CUDA-SUBMIT /" /tmp/out | head -n 3
		[ ! -x /bin/guest_streams ] || su -s /bin/sh guest -c /bin/guest_streams
		killall -9 "${1##*/}"
		wait
		echo "CUDA-KILLED"
		vgpu-submit vector-add --n 16 --verify >/tmp/out 2>&1
		echo "CUDA-SUBMIT-AFTER-RC $?"
		su -s /bin/sh guest -c "LD_LIBRARY_PATH=/cuda/lib $1" >/tmp/out 2>/tmp/err
		echo "CUDA-AGAIN-RC $?"
		sed "s/^/CUDA-AGAIN /" /tmp/out
	fi
elif [ "$test" = run ]; then
	insmod /lib/vgpu.ko
	case "$arg" in
	1) job="vector-add --n 262144" ;;
	2) job="saxpy --n 262144" ;;
	3) job="sgemm --m 128 --n 128 --k 128" ;;
	*) job="reduce-sum --n 262144" ;;
	esac
	# shellcheck disable=SC2086 # the job is words
	vgpu-submit $job --verify --repeat 40 --json >/tmp/run.json 2>/tmp/run.err
	echo "RUN-RC $?"
	echo "RUN-JSON $(cat /tmp/run.json)"
	sed 's/^/RUN-ERR /' /tmp/run.err
elif [ "$test" = driver ] || [ "$test" = driverloop ]; then
	# The guest driver and libvgpu's dev: transport (vgpu-submit's default).
	mkdir -p /etc /tmp
	chmod 1777 /tmp
	printf 'root:x:0:0::/:/bin/sh\nguest:x:1000:1000::/:/bin/sh\n' >/etc/passwd
	printf 'root:x:0:\nvgpu:x:900:guest\nguest:x:1000:\n' >/etc/group
	insmod /lib/vgpu.ko window_mib=16
	echo "INSMOD-RC $?"
	sys=/sys/class/misc/vgpu0
	for a in pool priority vm_id version link; do echo "SYSFS-$a $(cat $sys/$a)"; done
	echo "GUEST-INFO-$(vgpu-guest-info | grep '^ring')"
	echo "GUEST-INFO-USER-$(su -s /bin/sh guest -c vgpu-guest-info | grep '^vm_id')"
	# No udev in the initramfs: what its rule (99-vgpu.rules) does, by hand.
	chgrp vgpu /dev/vgpu0 && chmod 0660 /dev/vgpu0
	if [ "$test" = driverloop ]; then
		i=0
		while [ $i -lt "${arg:-100}" ]; do
			vgpu-submit vector-add --n 100000 --verify --repeat 20 >/dev/null 2>&1 && echo "LOOP-OK $i"
			i=$((i + 1))
		done
	fi
	for op in vector-add saxpy sgemm reduce-sum; do
		vgpu-submit $op --verify --repeat 5 --depth 4 >/tmp/out 2>&1
		echo "OP-$op $?"
	done
	vgpu-submit vector-add --n 1000000 --verify --repeat 3 >/dev/null 2>&1
	echo "OP-large $?"
	su -s /bin/sh guest -c "vgpu-submit vector-add --n 4096 --verify" >/tmp/out 2>&1
	echo "USER-RC $?"
	sed 's/^/USER-OUT /' /tmp/out
	echo "SYSFS-window_state $(cat $sys/window_state)"
	rmmod vgpu
	echo "RMMOD-RC $?"
	insmod /lib/vgpu.ko
	vgpu-submit vector-add --n 4096 --verify >/dev/null 2>&1
	echo "AGAIN-RC $?"
	rmmod vgpu
	dmesg | grep -c "vgpu.*did not release\|BUG\|WARNING" | sed 's/^/KERNEL-WARNINGS /'
else
	guest_ring "$test" $arg
	echo "RING-RC $?"
fi
echo "VGPU-TEST-END"
poweroff -f
