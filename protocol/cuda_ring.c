/* SPDX-License-Identifier: MIT */
/*
 * cuda_ring.c - reading the call ring (cuda_ring.h) as the worker does:
 * one entry at a time, checked after it is copied out of the shared
 * page. Kept apart from the worker so that tests/fuzz/fuzz_cuda_ring.c
 * can try every byte the guest might write.
 */
#include <string.h>

#include "cuda_ring.h"

int vgpu_cuda_ring_next(const uint8_t *ring, uint64_t ring_bytes, uint64_t head, uint64_t tail,
			struct vgpu_cuda_msg *m, uint64_t *len)
{
	uint8_t msg[VGPU_CUDA_MSG_HEAD];
	uint64_t pos = head & (ring_bytes - 1), n;

	if (head == tail)
		return VGPU_CUDA_RING_EMPTY;
	if (tail - head > ring_bytes)
		return VGPU_CUDA_RING_BAD;
	/* Read once: the guest may change it meanwhile. */
	n = __atomic_load_n((const uint64_t *)(ring + pos), __ATOMIC_RELAXED);
	if (n == 0 && pos != 0 && ring_bytes - pos <= tail - head) {
		*len = ring_bytes - pos; /* the rest skipped */
		return VGPU_CUDA_RING_SKIP;
	}
	if (n < VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD || n % 16 || n > ring_bytes - pos ||
	    n > tail - head)
		return VGPU_CUDA_RING_BAD;
	memcpy(msg, ring + pos + VGPU_CUDA_RING_PREFIX, sizeof(msg));
	if (vgpu_cuda_decode(msg, false, m) != VGPU_OK || !vgpu_cuda_ringable(m) ||
	    VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD + (uint64_t)m->data_len > n)
		return VGPU_CUDA_RING_BAD;
	*len = n;
	return VGPU_CUDA_RING_CALL;
}
