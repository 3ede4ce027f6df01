/* SPDX-License-Identifier: MIT */
/*
 * fuzz_protocol.c - the wire-format decoder (protocol/protocol.c), fed a
 * whole message: header, then the payload when its length fits the input.
 * Invariants: an accepted header is a request or response naming a known
 * op, an attach message naming none (the ring's, fuzzed by fuzz_ring), or
 * a CUDA call or reply naming a known call (cuda_desc.h);
 * whatever is accepted has counts that add up to payload_len,
 * pointers inside the payload, and re-encodes to exactly the input bytes
 * (one message, one encoding).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_call.h"
#include "cuda_desc.h"
#include "cuda_image.h"
#include "vgpu_device.h"
#include "vgpu_protocol.h"
#include "vgpu_ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Besides the defaults, small limits, so that the limit checks are reached. */
static const struct vgpu_proto_limits small_limits = { 4096, 512, 16 };

static void check_request(const uint8_t *msg, const struct vgpu_msg_header *h,
			  const struct vgpu_proto_limits *l)
{
	const uint8_t *payload = msg + VGPU_PROTO_HEADER_SIZE, *end = payload + h->payload_len;
	struct vgpu_request_view v;
	uint64_t sum = VGPU_PROTO_PARAMS_SIZE;
	uint8_t *again;
	size_t len;

	if (vgpu_proto_parse_request(msg, h, payload, l, &v) != VGPU_OK)
		return;
	if ((int)v.op != h->op || v.out_count == 0 || v.out_count > l->max_elems)
		abort();
	for (int i = 0; i < 3; i++) {
		if (!v.in[i]) {
			if (v.in_count[i])
				abort();
			continue;
		}
		const uint8_t *p = (const uint8_t *)v.in[i];
		if (v.in_count[i] == 0 || v.in_count[i] > l->max_elems || p < payload ||
		    p + v.in_count[i] * sizeof(float) > end)
			abort();
		sum += v.in_count[i] * sizeof(float);
	}
	if (sum != h->payload_len)
		abort();
	/* Build it again from the view: the same bytes. */
	if (vgpu_proto_build_request(h->request_id, v.op, &v.params, v.in, l, &again, &len) !=
	    VGPU_OK)
		abort();
	if (len != VGPU_PROTO_HEADER_SIZE + h->payload_len || memcmp(again, msg, len) != 0)
		abort();
	free(again);
}

/* The mediator's two steps (a request's head before its payload is read,
 * then its inputs): the head alone, from the parameter block, agrees with
 * parsing the whole message, and never points at data. @avail: payload
 * bytes present (the head may come without the rest). */
static void check_head(const uint8_t *msg, const struct vgpu_msg_header *h, size_t avail,
		       const struct vgpu_proto_limits *l)
{
	const uint8_t *payload = msg + VGPU_PROTO_HEADER_SIZE;
	struct vgpu_request_view head, whole;

	if (h->type != VGPU_MSG_REQUEST || h->payload_len < VGPU_PROTO_PARAMS_SIZE ||
	    avail < VGPU_PROTO_PARAMS_SIZE)
		return;
	int rc = vgpu_proto_check_request_head(msg, h, payload, l, &head);
	if (avail < h->payload_len) {
		if (rc == VGPU_OK && head.in[0])
			abort();
		return;
	}
	int whole_rc = vgpu_proto_parse_request(msg, h, payload, l, &whole);
	if (rc != whole_rc)
		abort();
	if (rc != VGPU_OK)
		return;
	if (head.in[0] || head.out_count != whole.out_count ||
	    memcmp(head.in_count, whole.in_count, sizeof(head.in_count)) != 0)
		abort();
	vgpu_proto_request_inputs(&head, payload);
	if (memcmp(head.in, whole.in, sizeof(head.in)) != 0)
		abort();
}

static void check_response(const uint8_t *msg, const struct vgpu_msg_header *h)
{
	const uint8_t *payload = msg + VGPU_PROTO_HEADER_SIZE;
	struct vgpu_response_view v;
	uint8_t again[VGPU_PROTO_RESPONSE_PREFIX];

	if (vgpu_proto_parse_response(msg, h, payload, &v) != VGPU_OK)
		return;
	if (v.status > 0 || (v.status != VGPU_OK && v.out_count) ||
	    VGPU_PROTO_STATUS_SIZE + v.out_count * sizeof(float) != h->payload_len ||
	    (v.out_count == 0) != (v.out == NULL) ||
	    (v.out && (const uint8_t *)v.out != payload + VGPU_PROTO_STATUS_SIZE))
		abort();
	vgpu_proto_encode_response(h->request_id, h->op, v.status, v.queue_ns, v.exec_ns,
				   v.out_count, again);
	if (memcmp(again, msg, sizeof(again)) != 0)
		abort();
}

/* The device's messages: what parses is within its bounds and encodes
 * back to the very bytes. */
static void check_device(const uint8_t *msg, const struct vgpu_msg_header *h)
{
	static uint8_t again[VGPU_PROTO_HEADER_SIZE + VGPU_DEV_MAX_PAYLOAD];
	const uint8_t *payload = msg + VGPU_PROTO_HEADER_SIZE;
	size_t len = VGPU_PROTO_HEADER_SIZE + h->payload_len;

	if (!vgpu_dev_header_ok(h, h->type))
		return;
	if (h->type == VGPU_MSG_DEVICE) {
		struct vgpu_dev_hello v;

		if (vgpu_dev_parse_hello(msg, h, payload, &v) != VGPU_OK)
			return;
		if (v.n_regions > VGPU_DEV_MAX_REGIONS ||
		    vgpu_dev_encode_hello(h->request_id, &v, again) != len ||
		    memcmp(again, msg, len) != 0)
			abort();
		for (uint32_t i = 0; i < v.n_regions; i++)
			if (!v.regions[i].size || v.regions[i].gpa + v.regions[i].size < v.regions[i].gpa)
				abort();
	} else if (h->type == VGPU_MSG_WINDOW) {
		struct vgpu_dev_window w;
		uint64_t sum = 0;

		if (vgpu_dev_parse_window(msg, h, payload, &w) != VGPU_OK)
			return;
		for (uint32_t i = 0; i < w.n_extents; i++)
			sum += w.extents[i].len;
		if (w.n_extents > VGPU_DEV_MAX_EXTENTS || sum != w.bytes ||
		    (w.action == VGPU_DEV_REGISTER &&
		     (sum < VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA ||
		      sum > VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA)) ||
		    vgpu_dev_encode_window(h->request_id, &w, again) != len ||
		    memcmp(again, msg, len) != 0)
			abort();
	} else if (h->type == VGPU_MSG_DEVICE_REPLY) {
		uint16_t answered;
		int32_t status;
		uint64_t window;

		if (vgpu_dev_parse_reply(msg, h, payload, &answered, &status, &window) != VGPU_OK)
			return;
		vgpu_dev_encode_reply(h->request_id, answered, status, window, again);
		if (memcmp(again, msg, VGPU_DEV_REPLY_MSG) != 0)
			abort();
	} else if (h->type == VGPU_MSG_IDENTITY) {
		struct vgpu_dev_identity id;

		if (vgpu_dev_parse_identity(msg, h, payload, &id) != VGPU_OK)
			return;
		if (id.pool < 'A' || id.pool > 'Z' || id.priority > VGPU_DEV_MAX_PRIORITY)
			abort();
		vgpu_dev_encode_identity(h->request_id, &id, again);
		if (len != VGPU_DEV_IDENTITY_MSG || memcmp(again, msg, len) != 0)
			abort();
	}
}

/* A CUDA description reply: what parses is within its bounds and
 * encodes back to the very bytes. */
static void check_cuda(const uint8_t *msg, const struct vgpu_msg_header *h)
{
	static uint8_t again[VGPU_PROTO_HEADER_SIZE + VGPU_CUDA_DESCRIBED_MAX];
	static struct vgpu_cuda_desc d;
	uint32_t len;
	int rc;

	/* The calls after OPEN: a call or reply that decodes encodes back to
	 * its very header and block, with the data length its header says. */
	if (h->op >= VGPU_CUDA_OPEN && h->payload_len >= VGPU_CUDA_BLOCK) {
		bool reply = h->type == VGPU_MSG_CUDA_REPLY;
		struct vgpu_cuda_msg m;

		if (vgpu_cuda_decode(msg, reply, &m) != VGPU_OK)
			return;
		if (m.call != h->op || m.data_len != h->payload_len - VGPU_CUDA_BLOCK ||
		    m.data_len > VGPU_CUDA_MAX_DATA)
			abort();
		vgpu_cuda_encode(&m, reply, again);
		if (memcmp(again, msg, VGPU_CUDA_MSG_HEAD) != 0)
			abort();
		/* A kernel's layout and parameters within their bounds; an image's
		 * length never past its bytes (ASan sees any read beyond them). */
		if ((reply && m.call == VGPU_CUDA_GET_KERNEL && m.status == 0 &&
		     (m.v[1] > VGPU_CUDA_MAX_PARAMS || m.data_len != 8 * m.v[1] ||
		      m.v[2] > VGPU_CUDA_MAX_PARAM_BYTES)) ||
		    (!reply && m.call == VGPU_CUDA_LAUNCH && m.data_len > VGPU_CUDA_MAX_PARAM_BYTES) ||
		    (!reply && m.call == VGPU_CUDA_GET_KERNEL && m.data_len > VGPU_CUDA_MAX_NAME))
			abort();
		if (!reply && m.call == VGPU_CUDA_LIB_LOAD &&
		    vgpu_cuda_image_len(msg + VGPU_CUDA_MSG_HEAD, m.data_len) > m.data_len)
			abort();
		return;
	}
	if (h->type != VGPU_MSG_CUDA_REPLY ||
	    vgpu_cuda_described_len(msg, h->request_id, &len) != VGPU_OK)
		return;
	rc = vgpu_cuda_parse_described(msg, msg + VGPU_PROTO_HEADER_SIZE, len, &d);
	if (rc > 0 || (rc != VGPU_OK && rc != VGPU_PROTOCOL && len != 4))
		abort();
	if (rc == VGPU_PROTOCOL)
		return;
	if (d.count > VGPU_CUDA_MAX_DEVICES)
		abort();
	for (uint32_t i = 0; i < d.count; i++)
		if (d.dev[i].n_attrs > VGPU_CUDA_ATTRS || !memchr(d.dev[i].name, 0, VGPU_CUDA_NAME_LEN) ||
		    !memchr(d.dev[i].pci_bus_id, 0, VGPU_CUDA_BUS_ID_LEN))
			abort();
	/* Names are compared up to their NUL: bytes after it are not kept. */
	if (rc == VGPU_OK &&
	    vgpu_cuda_build_described(h->request_id, rc, &d, again, sizeof(again)) !=
		    VGPU_PROTO_HEADER_SIZE + len)
		abort();
}

static void one(const uint8_t *msg, size_t size, const struct vgpu_proto_limits *l)
{
	struct vgpu_msg_header h;
	uint8_t again[VGPU_PROTO_HEADER_SIZE];

	if (vgpu_proto_decode_header(msg, l, &h) != VGPU_OK)
		return;
	bool data_msg = h.type == VGPU_MSG_REQUEST || h.type == VGPU_MSG_RESPONSE;
	bool ring_msg = h.type >= VGPU_MSG_ATTACH && h.type <= VGPU_MSG_IDENTITY;
	bool cuda_msg = h.type == VGPU_MSG_CUDA || h.type == VGPU_MSG_CUDA_REPLY;

	/* Requests and responses name an op; the ring's attach messages none;
	 * CUDA messages a call. */
	if (h.payload_len > l->max_payload || (data_msg && !vgpu_op_name(h.op)) ||
	    (ring_msg && h.op != 0) || (cuda_msg && (h.op == 0 || h.op > VGPU_CUDA_CALL_MAX)) ||
	    (!data_msg && !ring_msg && !cuda_msg))
		abort();
	vgpu_proto_encode_header(&h, again);
	if (memcmp(again, msg, sizeof(again)) != 0)
		abort();
	check_head(msg, &h, size - VGPU_PROTO_HEADER_SIZE, l);
	if (h.payload_len > size - VGPU_PROTO_HEADER_SIZE)
		return;
	check_request(msg, &h, l);
	check_response(msg, &h);
	check_device(msg, &h);
	check_cuda(msg, &h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg;

	if (size < VGPU_PROTO_HEADER_SIZE)
		return 0;
	/* The decoder wants the payload 4-byte aligned, as a receiver's buffer is;
	 * an exact-size copy also lets ASan see any read past the input. */
	msg = malloc(size);
	if (!msg)
		return 0;
	memcpy(msg, data, size);
	one(msg, size, &vgpu_proto_default_limits);
	one(msg, size, &small_limits);
	free(msg);
	return 0;
}
