/* SPDX-License-Identifier: MIT */
/*
 * vgpu_uapi.h - the interface of the vgpu guest driver (vgpu.ko) to
 * programs: /dev/vgpuN, one per vgpu-stub device (docs/guest-driver.md).
 *
 *   mmap(0, window_bytes)  the ring window (protocol/vgpu_ring.h layout):
 *                          control page, rings, data area, in guest RAM
 *                          the device registered with the mediator
 *   write(8 bytes)         ring the doorbell (descriptors published)
 *   read(8 bytes)          wait for completions: the number of completion
 *                          interrupts since the last read (at least 1);
 *                          EPIPE once the window is gone (the mediator
 *                          went away or refused it): requests in flight
 *                          are lost, wait with VGPU_IOC_WAIT for it to
 *                          come back (its rings start anew)
 *   poll                   POLLIN: completions to read; POLLERR: gone
 *   VGPU_IOC_INFO          the device's identity and the window's state
 *   VGPU_IOC_WAIT          block until the window is registered, then INFO
 *
 * One program at a time per device (a second open is EBUSY): the ring has
 * one producer. Each close starts the rings anew (the window registered
 * again: the mediator forgets the program's streams and requests).
 */
#ifndef VGPU_UAPI_H
#define VGPU_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct vgpu_dev_info {
	__u64 window_bytes;     /* the mmap()able window */
	__u32 window_state;     /* WIN_STATE: 0 none, 1 registering, 2 registered, 3 refused */
	__s32 window_error;     /* WIN_ERROR when refused */
	__u32 generation;       /* counts registrations: the rings start anew with each */
	__u32 link;             /* 1: the device is connected to the mediator */
	__u32 pool;             /* 'A' or 'B' */
	__u32 priority;
	__u32 vm_id;
	__u32 version;          /* the device's VERSION register */
};

#define VGPU_IOC_MAGIC 'V'
#define VGPU_IOC_INFO _IOR(VGPU_IOC_MAGIC, 1, struct vgpu_dev_info)
#define VGPU_IOC_WAIT _IOR(VGPU_IOC_MAGIC, 2, struct vgpu_dev_info)

#endif
