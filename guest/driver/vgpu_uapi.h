/* SPDX-License-Identifier: MIT */
/*
 * vgpu_uapi.h - the interface of the vgpu guest driver (vgpu.ko) to
 * programs: /dev/vgpuN, one per vgpu-stub device (docs/guest-driver.md).
 *
 * A program uses the device one of two ways, chosen by its first call
 * below that needs one:
 *
 * The whole window (libvgpu's ops), one program at a time (EBUSY while
 * another has it or programs have streams):
 *   VGPU_IOC_WAIT          block until the window is registered, then INFO
 *   mmap(0, window_bytes)  the ring window (protocol/vgpu_ring.h layout):
 *                          control page, rings, data area, in guest RAM
 *                          the device registered with the mediator
 * Each close of such a program starts the rings anew (the window
 * registered again: the mediator forgets its streams and requests).
 *
 * Streams (the guest libcuda.so.1), any number of programs at once (EBUSY
 * while a program has the whole window), VGPU_STREAMS_MAX streams in all,
 * two slots per open file:
 *   VGPU_IOC_STREAM_OPEN   the driver opens a stream in a slot of the data
 *                          area (vgpu_ring.h "Streams"; the same slot again
 *                          if this file has one closed): its index, ring
 *                          size, and the slot's offset and bytes to mmap;
 *                          a file's first waits (30 s at most: ETIMEDOUT)
 *                          for the window to be registered;
 *                          ENOSPC when every slot is taken or the file
 *                          has two open, EPIPE when the window is gone,
 *                          EPROTO when the mediator refused it
 *   mmap(offset, bytes)    the slot: control page, TX ring, RX ring; only
 *                          the file's own slots
 *   VGPU_IOC_STREAM_CLOSE  close stream @index (the slot stays the file's
 *                          until it is released)
 * At release the driver closes the file's streams; the mediator then
 * drops them and their CUDA worker frees what they held.
 *
 * Both ways:
 *   write(8 bytes)         ring the doorbell
 *   read(8 bytes)          wait for completions: the number of completion
 *                          interrupts since this file last read (at least
 *                          1); EPIPE once the window is gone (the mediator
 *                          went away or refused it): requests in flight
 *                          are lost; a whole-window program waits with
 *                          VGPU_IOC_WAIT for it to come back (its rings
 *                          start anew), a stream's is closed
 *   poll                   POLLIN: completions to read; POLLERR: gone
 *   VGPU_IOC_INFO          the device's identity and the window's state
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

struct vgpu_stream_req {
	__u32 index;            /* the stream's index in the window (0 .. 7) */
	__u32 ring_bytes;       /* each ring's bytes (a power of two) */
	__u64 offset;           /* the slot's control page: mmap() offset */
	__u64 bytes;            /* the control page and both rings */
};

#define VGPU_IOC_STREAM_OPEN _IOR(VGPU_IOC_MAGIC, 3, struct vgpu_stream_req)
#define VGPU_IOC_STREAM_CLOSE _IOW(VGPU_IOC_MAGIC, 4, __u32)

#endif
