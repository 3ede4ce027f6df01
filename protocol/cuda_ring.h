/* SPDX-License-Identifier: MIT */
/*
 * cuda_ring.h - the call ring at the start of a process's window
 * (docs/specs/cuda-remoting.md, "The call ring"): the calls the guest
 * library posts without waiting (launches, memsets, device copies, event
 * records and waits, asynchronous window copies) go through it with no
 * system call, to a worker thread that takes them while it is awake; a
 * KICK message on the connection wakes one that went to sleep.
 *
 * Layout, from the window's first byte: the control page
 * (VGPU_CUDA_RING_CTL bytes: struct vgpu_cuda_ring_ctl), then the ring's
 * bytes (a power of two, VGPU_CUDA_RING_MIN to VGPU_CUDA_RING_MAX, at most
 * half the window). The guest writes entries at tail and moves tail on;
 * the worker takes them at head and moves head on; both count bytes
 * since the start, positions being the counts modulo the ring's size.
 * An entry is a u64 length (of the whole entry, a multiple of 16), the
 * call's header and block as on the connection (cuda_call.h), its data,
 * padding; a length of 0 says the rest of the ring up to its end is
 * skipped (an entry never wraps).
 *
 * The worker copies each entry out of the shared page before it checks
 * it, and closes the connection at the first entry, head or tail that is
 * not as said here: the guest writes these pages whenever it likes.
 */
#ifndef VGPU_CUDA_RING_H
#define VGPU_CUDA_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cuda_call.h"

#define VGPU_CUDA_RING_CTL 4096u
#define VGPU_CUDA_RING_MIN ((uint64_t)64 << 10)
#define VGPU_CUDA_RING_MAX ((uint64_t)16 << 20)
#define VGPU_CUDA_RING_PREFIX 16u  /* the u64 length, and 8 bytes of 0 */

struct vgpu_cuda_ring_ctl {
	_Atomic uint64_t tail;      /* the guest's: bytes written */
	uint8_t pad0[56];
	_Atomic uint64_t head;      /* the worker's: bytes taken */
	uint8_t pad1[56];
	_Atomic uint32_t sleeping;  /* the worker's: 1 while it waits on the connection */
	_Atomic uint32_t error;     /* the first CUresult a ring call failed with (the
				     * worker sets it when 0; the guest takes it) */
};
_Static_assert(sizeof(struct vgpu_cuda_ring_ctl) <= VGPU_CUDA_RING_CTL, "in the page");

/* The calls that may go through the ring: those posted without a reply. */
static inline bool vgpu_cuda_ringable(const struct vgpu_cuda_msg *m)
{
	switch (m->call) {
	case VGPU_CUDA_LAUNCH:
	case VGPU_CUDA_MEMSET:
	case VGPU_CUDA_DTOD:
	case VGPU_CUDA_EVENT_RECORD:
	case VGPU_CUDA_STREAM_WAIT:
	case VGPU_CUDA_GRAPH_LAUNCH:
	case VGPU_CUDA_MEM_FREE_ASYNC:
		return true;
	case VGPU_CUDA_HTOD_WIN:
	case VGPU_CUDA_DTOH_WIN:
		return m->v[4] == 1; /* asynchronous */
	default:
		return false;
	}
}

/* What vgpu_cuda_ring_next() found at head. */
enum {
	VGPU_CUDA_RING_BAD = -1,  /* not as said above: close the connection */
	VGPU_CUDA_RING_EMPTY = 0, /* head is tail */
	VGPU_CUDA_RING_CALL = 1,  /* *m, *len bytes long; its data after the
				   * prefix and head (m->data_len bytes) */
	VGPU_CUDA_RING_SKIP = 2,  /* *len bytes to the ring's end skipped */
};

/* The entry at @head of the @ring_bytes (a power of two) at @ring, the
 * guest's tail being @tail: its call decoded into *@m (head and block
 * copied out before they are checked) and its length in *@len. */
int vgpu_cuda_ring_next(const uint8_t *ring, uint64_t ring_bytes, uint64_t head, uint64_t tail,
			struct vgpu_cuda_msg *m, uint64_t *len);

#endif
