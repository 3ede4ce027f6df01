/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ring.c - the shared-memory ring's decoders (protocol/ring.c): a
 * 64-byte descriptor checked against a window whose size the input also
 * picks, a completion, and the attach messages.
 * Invariants: an accepted descriptor names only whole arrays inside the
 * data area, its output apart from its inputs (or exactly its own input),
 * and re-encodes to the same bytes; accepted completions and attach
 * messages re-encode to the same bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu_ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_desc(const uint8_t *raw, uint64_t window)
{
	struct vgpu_ring_desc d;
	struct vgpu_ring_view v;
	uint8_t again[VGPU_RING_DESC_SIZE];

	if (vgpu_ring_decode_desc(raw, &d) != VGPU_OK)
		return;
	vgpu_ring_encode_desc(&d, again);
	if (memcmp(again, raw, sizeof(again)) != 0)
		abort();
	if (vgpu_ring_check_desc(&d, &vgpu_proto_default_limits, window, &v) != VGPU_OK)
		return;
	uint64_t out_end = v.out_off + v.out_count * sizeof(float);
	if (v.out_off < VGPU_RING_DATA_OFFSET || out_end > window || v.out_off % 4)
		abort();
	for (int i = 0; i < v.n_inputs; i++) {
		uint64_t end = v.in_off[i] + v.in_count[i] * sizeof(float);

		if (v.in_off[i] < VGPU_RING_DATA_OFFSET || end > window || v.in_off[i] % 4 ||
		    v.in_count[i] == 0)
			abort();
		/* Only saxpy's y (input 1) and sgemm's C (input 2) may be the
		 * output itself; any other overlap must have been refused. */
		bool same = v.in_off[i] == v.out_off &&
			    ((v.op == VGPU_OP_SAXPY && i == 1) || (v.op == VGPU_OP_SGEMM && i == 2));

		if (!same && v.in_off[i] < out_end && v.out_off < end)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[VGPU_RING_ATTACH_MSG];
	struct vgpu_msg_header h;
	struct vgpu_ring_cqe e;
	uint64_t window, bytes;
	int32_t status;

	if (size < 4 + VGPU_RING_DESC_SIZE)
		return 0;
	/* The first 4 bytes choose the window: up to 4 GiB, so that offsets
	 * near the top of the 32-bit range meet windows near it too. */
	window = VGPU_RING_DATA_OFFSET + ((uint64_t)data[0] | (uint64_t)data[1] << 8 |
					  (uint64_t)data[2] << 16 | (uint64_t)data[3] << 24);
	check_desc(data + 4, window);
	if (vgpu_ring_decode_cqe(data + 4, &e) == VGPU_OK) {
		vgpu_ring_encode_cqe(&e, buf);
		if (memcmp(buf, data + 4, VGPU_RING_CQE_SIZE) != 0)
			abort();
	}
	if (vgpu_proto_decode_header(data + 4, &vgpu_proto_default_limits, &h) != VGPU_OK)
		return 0;
	if (vgpu_ring_parse_attach(data + 4, &h, data + 4 + VGPU_PROTO_HEADER_SIZE, &bytes) ==
	    VGPU_OK) {
		vgpu_ring_encode_attach(bytes, buf);
		if (memcmp(buf, data + 4, sizeof(buf)) != 0)
			abort();
	}
	if (vgpu_ring_parse_attached(data + 4, &h, data + 4 + VGPU_PROTO_HEADER_SIZE, &status,
				     &window) == VGPU_OK) {
		vgpu_ring_encode_attached(status, window, buf);
		if (memcmp(buf, data + 4, sizeof(buf)) != 0)
			abort();
	}
	return 0;
}
