/* SPDX-License-Identifier: MIT */
/*
 * transport_shm.h - the client end of the shared-memory ring (internal;
 * not installed). Unlike the stream transports of transport.h it moves no
 * bytes: the client core places arrays in the window (or finds them
 * there), publishes descriptors naming their offsets and takes
 * completions; see vgpu_ring.h and docs/protocol.md. The same code serves
 * a vgpu-stub device's window in a guest (dev:/dev/vgpuN, the guest
 * driver's; docs/guest-driver.md): only opening it differs.
 */
#ifndef VGPU_GUEST_TRANSPORT_SHM_H
#define VGPU_GUEST_TRANSPORT_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"
#include "vgpu_ring.h"
#include "window.h"

struct vgpu_shm {
	int sock_fd;          /* shm: the VM's socket, the session's lifeline; dev: -1 */
	int doorbell_fd;      /* written after publishing descriptors */
	int notify_fd;        /* the mediator writes it after completions
			       * (dev: the device's fd is both, and its own lifeline) */
	uint8_t *win;         /* the mapping */
	size_t win_size;
	struct window alloc;  /* the data area's blocks */
	uint32_t sq_tail;     /* private copies of the indexes this side owns */
	uint32_t cq_head;
	char why[256];        /* the last failure, one line */
};

/*
 * Connect to the socket at @path and attach a window with @data_bytes of
 * data area (whole pages, 1 MiB to 2 GiB). vgpu_unix_connect()'s errors,
 * the mediator's refusal (VGPU_LIMIT past its shm_max_mib, VGPU_BUSY past
 * its shm_total_mib, VGPU_INVALID_PARAM, ...), VGPU_PROTOCOL for a
 * malformed answer, VGPU_TIMEOUT when none comes.
 */
int vgpu_shm_open(const char *path, uint64_t data_bytes, struct vgpu_shm **ret);
/*
 * Open the guest driver's device @path (/dev/vgpuN), wait up to 30 s for
 * its window to be registered with the mediator (a new open starts the
 * rings anew), and map it. VGPU_NOT_FOUND when there is no such device,
 * VGPU_DENIED without permission (the udev rule's group), VGPU_BUSY when
 * another program has its window or CUDA programs have streams in it,
 * VGPU_TIMEOUT when the mediator does not take the window in time,
 * VGPU_PROTOCOL for a window not the ring's.
 */
int vgpu_shm_open_dev(const char *path, struct vgpu_shm **ret);
/* Unmap and close everything (NULL is fine). */
void vgpu_shm_close(struct vgpu_shm *s);

/* Window memory: window_alloc()'s errors; free: VGPU_NOT_FOUND for a
 * pointer that is not a block's start. */
int vgpu_shm_alloc(struct vgpu_shm *s, uint64_t size, void **ret);
int vgpu_shm_free(struct vgpu_shm *s, void *p);
/* Whether @p points into the mapping at all. */
bool vgpu_shm_contains(const struct vgpu_shm *s, const void *p);
/* The offset of [@p, @p + @len) when it lies inside one allocated block. */
bool vgpu_shm_offset(const struct vgpu_shm *s, const void *p, uint64_t len, uint32_t *ret_off);

/* Publish @d and ring the doorbell. VGPU_PROTOCOL when the ring has no
 * room (the core never has more than VGPU_RING_ENTRIES outstanding, so
 * only a broken mediator gets here), VGPU_IO_ERROR. */
int vgpu_shm_submit(struct vgpu_shm *s, const struct vgpu_ring_desc *d);
/* The next completion: VGPU_OK, VGPU_TIMEOUT when there is none yet,
 * VGPU_PROTOCOL for a corrupt ring or entry. */
int vgpu_shm_next(struct vgpu_shm *s, struct vgpu_ring_cqe *ret);
/* Say whether this client spins on the completion tail (vgpu_ring.h:
 * the mediator then sends no signals). Turning it off returns whether
 * completions are already waiting: then do not sleep. */
bool vgpu_shm_spinning(struct vgpu_shm *s, bool on);
/* Sleep until the mediator signals completions or @timeout_ms (-1:
 * forever) passes. VGPU_IO_ERROR once the mediator has gone away (dev:
 * the device's window is gone: requests in flight are lost). */
int vgpu_shm_wait(struct vgpu_shm *s, int timeout_ms);

#endif
