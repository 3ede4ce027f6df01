/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cuda_ring.c - the CUDA call ring as the worker reads it
 * (protocol/cuda_ring.c): the input's first 16 bytes are the worker's
 * head and the guest's tail (little-endian u64), the rest the ring's
 * bytes, cut to the largest power of two (at least 64). Entries are
 * taken as cudaworker/serve.c's drain_ring() takes them. When the head's
 * lowest bit is set (the worker's head is a multiple of 16: the bit is
 * free), every entry the walk reaches is first given its right checksum,
 * so that the fuzzer gets past the CRC to the checks behind it.
 * Invariants: every accepted entry lies inside the ring, is a multiple
 * of 16 bytes, holds its data and is a call that may come that way; a
 * skip ends at the ring's end; head never passes tail; the walk ends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ring.h"
#include "le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The checksum of each entry from @head to @tail, as a guest signs it. */
static void sign(uint8_t *ring, uint64_t ring_bytes, uint64_t head, uint64_t tail)
{
	while (head != tail && tail - head <= ring_bytes) {
		uint64_t pos = head & (ring_bytes - 1), n = get64(ring + pos);
		uint8_t *h = ring + pos + VGPU_CUDA_RING_PREFIX;

		if (n == 0 && pos != 0) {
			head += ring_bytes - pos;
			continue;
		}
		if (n < VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD || n % 16 || n > ring_bytes - pos)
			return;
		put32(h + 28, vgpu_proto_checksum(h, h + VGPU_PROTO_HEADER_SIZE, VGPU_CUDA_BLOCK));
		head += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vgpu_cuda_msg m;
	uint64_t head, tail, len, ring_bytes = 64;
	uint8_t *ring;
	int rc;

	if (size < 16 + 64)
		return 0;
	memcpy(&head, data, 8);
	memcpy(&tail, data + 8, 8);
	while (ring_bytes * 2 <= size - 16)
		ring_bytes *= 2;
	ring = malloc(ring_bytes); /* aligned, as the window's pages are */
	if (!ring)
		return 0;
	memcpy(ring, data + 16, ring_bytes);
	if (head & 1)
		sign(ring, ring_bytes, head & ~(uint64_t)15, tail);
	head &= ~(uint64_t)15; /* the worker's head moves by whole entries */
	for (uint64_t steps = 0;; steps++) {
		uint64_t pos = head & (ring_bytes - 1);

		rc = vgpu_cuda_ring_next(ring, ring_bytes, head, tail, &m, &len);
		if (rc == VGPU_CUDA_RING_EMPTY || rc == VGPU_CUDA_RING_BAD)
			break;
		if (steps > ring_bytes / 16 + 1 || len == 0 || len > tail - head)
			abort();
		if (rc == VGPU_CUDA_RING_SKIP && pos + len != ring_bytes)
			abort();
		if (rc == VGPU_CUDA_RING_CALL &&
		    (len % 16 || pos + len > ring_bytes || !vgpu_cuda_ringable(&m) ||
		     VGPU_CUDA_RING_PREFIX + VGPU_CUDA_MSG_HEAD + (uint64_t)m.data_len > len))
			abort();
		head += len;
	}
	free(ring);
	return 0;
}
