/* SPDX-License-Identifier: MIT */
/*
 * map.h - how the mediator reaches a guest's RAM, to serve the ring window
 * the guest's driver registered through its vgpu-stub device
 * (docs/specs/vgpu-stub-1.1.md). One small interface, two backends:
 *
 * - memfd (KVM, TCG): the VM runs with its RAM in memfds
 *   (memory-backend-memfd, share=on, sealed); the device sent them with
 *   where each lies in guest-physical space. A window's extents are
 *   mapped from them, in order, at one contiguous address. The pages are
 *   ordinary shared memory: the GPU driver can pin them.
 * - xen (XCP-ng): the guest's frames are mapped with xenforeignmemory_map()
 *   on a handle restricted to the domain. Foreign mappings cannot be pinned
 *   by the GPU driver: data goes through pinned staging.
 *
 * Every extent is checked against the guest's memory before it is mapped:
 * memfd refuses one outside the regions the device declared (and the
 * regions were checked against their memfds' sizes and seals); xen
 * refuses a frame the domain does not own (the map fails). A window is
 * never mapped over the mediator's own memory: each mapping lands in an
 * address range reserved for it.
 *
 * A guest map is shared by its device session and each window mapped from
 * it (references), since a window may outlive its session while its last
 * requests finish. Any thread.
 */
#ifndef VGPU_MAP_H
#define VGPU_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "vgpu_device.h"

struct vgpu_guest_map;

struct vgpu_map_ops {
	const char *name;       /* "memfd", "xen" */
	/* Map @n extents (checked by vgpu_dev_parse_window(): whole pages,
	 * disjoint, adding up to @bytes) at one address, *ret.
	 * VGPU_INVALID_PARAM for an extent outside the guest's memory,
	 * VGPU_NO_MEMORY when the mapping fails. */
	int (*map)(struct vgpu_guest_map *g, const struct vgpu_dev_extent *ext, uint32_t n,
		   uint64_t bytes, void **ret);
	void (*unmap)(struct vgpu_guest_map *g, void *mem, uint64_t bytes);
	void (*free)(struct vgpu_guest_map *g);
};

struct vgpu_guest_map {
	const struct vgpu_map_ops *ops;
	bool pinnable;          /* the GPU may copy straight from mappings */
	int refs;               /* atomic */
};

/* Build a memfd map from a checked DEVICE message @h and its @fds (one per
 * region, borrowed: duplicated). VGPU_INVALID_PARAM when a region is past
 * its memfd's end, the fd is not a regular file (a memfd), or it is not
 * sealed against shrinking (else the guest's QEMU could truncate it under
 * our mapping); VGPU_NO_MEMORY. @why gets a line on refusals. */
int vgpu_map_memfd_open(const struct vgpu_dev_hello *h, const int *fds,
			struct vgpu_guest_map **ret, char *why, size_t why_len);

/* A Xen map of domain @domid, which xenstore must say is VM @uuid (the
 * one whose socket the device connected on): VGPU_DENIED otherwise.
 * VGPU_UNSUPPORTED when the mediator was built without Debian's libxen
 * headers (libxen-dev); VGPU_IO_ERROR when xenstore or the handle cannot
 * be opened, or the handle not restricted to the domain. Blocks on
 * xenstore: call it on a worker thread. */
int vgpu_map_xen_open(uint32_t domid, const char *uuid, struct vgpu_guest_map **ret, char *why,
		      size_t why_len);

static inline void vgpu_map_ref(struct vgpu_guest_map *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

static inline void vgpu_map_unref(struct vgpu_guest_map *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		g->ops->free(g);
}

#endif
