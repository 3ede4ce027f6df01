/* SPDX-License-Identifier: MIT */
/*
 * device.c - the messages between the vgpu-stub device and the mediator
 * (vgpu_device.h; docs/specs/vgpu-stub-1.1.md).
 *
 * Must never: read a table entry the count does not cover, let a sum or an
 * end address wrap, or accept a region or extent that is not whole pages.
 */
#include <stdbool.h>
#include <string.h>

#include "le.h"
#include "vgpu_device.h"
#include "vgpu_ring.h"

#define PAGE_MASK ((uint64_t)VGPU_RING_PAGE - 1)
#define XEN_DOMID_MAX 0x7fefu /* DOMID_FIRST_RESERVED - 1 */

/* Header, then @payload_len bytes already at out + 32; checksummed over both. */
static size_t finish(uint16_t type, uint64_t seq, size_t payload_len, uint8_t *out)
{
	struct vgpu_msg_header h = { .type = type, .request_id = seq,
				     .payload_len = (uint32_t)payload_len };

	vgpu_proto_encode_header(&h, out);
	put32(out + 28, vgpu_proto_checksum(out, out + VGPU_PROTO_HEADER_SIZE, payload_len));
	return VGPU_PROTO_HEADER_SIZE + payload_len;
}

size_t vgpu_dev_encode_hello(uint64_t seq, const struct vgpu_dev_hello *h, uint8_t *out)
{
	uint8_t *p = out + VGPU_PROTO_HEADER_SIZE;
	uint32_t n = h->n_regions <= VGPU_DEV_MAX_REGIONS ? h->n_regions : VGPU_DEV_MAX_REGIONS;

	memset(p, 0, VGPU_DEV_BLOCK);
	put32(p, h->version);
	put32(p + 4, h->memory);
	put32(p + 8, h->domid);
	put32(p + 12, n);
	p += VGPU_DEV_BLOCK;
	for (uint32_t i = 0; i < n; i++, p += VGPU_DEV_REGION_SIZE) {
		put64(p, h->regions[i].gpa);
		put64(p + 8, h->regions[i].size);
		put64(p + 16, h->regions[i].fd_offset);
	}
	return finish(VGPU_MSG_DEVICE, seq, VGPU_DEV_BLOCK + n * VGPU_DEV_REGION_SIZE, out);
}

size_t vgpu_dev_encode_window(uint64_t seq, const struct vgpu_dev_window *w, uint8_t *out)
{
	uint8_t *p = out + VGPU_PROTO_HEADER_SIZE;
	uint32_t n = w->n_extents <= VGPU_DEV_MAX_EXTENTS ? w->n_extents : VGPU_DEV_MAX_EXTENTS;

	memset(p, 0, VGPU_DEV_BLOCK);
	put32(p, w->action);
	put32(p + 4, n);
	put64(p + 8, w->bytes);
	p += VGPU_DEV_BLOCK;
	for (uint32_t i = 0; i < n; i++, p += VGPU_DEV_EXTENT_SIZE) {
		put64(p, w->extents[i].gpa);
		put64(p + 8, w->extents[i].len);
	}
	return finish(VGPU_MSG_WINDOW, seq, VGPU_DEV_BLOCK + n * VGPU_DEV_EXTENT_SIZE, out);
}

void vgpu_dev_encode_reply(uint64_t seq, uint16_t answered, int32_t status, uint64_t window,
			   uint8_t out[VGPU_DEV_REPLY_MSG])
{
	uint8_t *p = out + VGPU_PROTO_HEADER_SIZE;

	memset(p, 0, VGPU_DEV_BLOCK);
	put32(p, (uint32_t)status);
	put32(p + 4, answered);
	put64(p + 8, status == VGPU_OK ? window : 0);
	finish(VGPU_MSG_DEVICE_REPLY, seq, VGPU_DEV_BLOCK, out);
}

void vgpu_dev_encode_identity(uint64_t seq, const struct vgpu_dev_identity *id,
			      uint8_t out[VGPU_DEV_IDENTITY_MSG])
{
	uint8_t *p = out + VGPU_PROTO_HEADER_SIZE;

	memset(p, 0, VGPU_DEV_BLOCK);
	put32(p, id->pool);
	put32(p + 4, id->priority);
	finish(VGPU_MSG_IDENTITY, seq, VGPU_DEV_BLOCK, out);
}

bool vgpu_dev_header_ok(const struct vgpu_msg_header *h, uint16_t type)
{
	if (h->type != type || h->op != 0 || h->payload_len < VGPU_DEV_BLOCK)
		return false;
	if (type == VGPU_MSG_DEVICE_REPLY || type == VGPU_MSG_IDENTITY)
		return h->payload_len == VGPU_DEV_BLOCK;
	return (type == VGPU_MSG_DEVICE || type == VGPU_MSG_WINDOW) &&
	       h->payload_len <= VGPU_DEV_MAX_PAYLOAD;
}

static bool intact(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
		   const struct vgpu_msg_header *h, const uint8_t *payload, uint16_t type)
{
	return vgpu_dev_header_ok(h, type) &&
	       vgpu_proto_checksum(raw_header, payload, h->payload_len) == h->checksum;
}

/* [a, a + len) whole pages, non-empty, not wrapping. */
static bool pages_ok(uint64_t a, uint64_t len)
{
	return len != 0 && !(a & PAGE_MASK) && !(len & PAGE_MASK) && a + len > a;
}

int vgpu_dev_parse_hello(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			 const struct vgpu_msg_header *h, const uint8_t *payload,
			 struct vgpu_dev_hello *ret)
{
	struct vgpu_dev_hello v;

	if (!intact(raw_header, h, payload, VGPU_MSG_DEVICE) || get64(payload + 16))
		return VGPU_PROTOCOL;
	v.version = get32(payload);
	v.memory = get32(payload + 4);
	v.domid = get32(payload + 8);
	v.n_regions = get32(payload + 12);
	if (v.n_regions > VGPU_DEV_MAX_REGIONS ||
	    h->payload_len != VGPU_DEV_BLOCK + v.n_regions * VGPU_DEV_REGION_SIZE)
		return VGPU_PROTOCOL;
	if (v.version != VGPU_DEV_VERSION)
		return VGPU_INVALID_PARAM;
	if (v.memory == VGPU_DEV_MEM_MEMFD) {
		if (v.domid != 0 || v.n_regions == 0)
			return VGPU_INVALID_PARAM;
	} else if (v.memory == VGPU_DEV_MEM_XEN) {
		if (v.domid == 0 || v.domid > XEN_DOMID_MAX || v.n_regions != 0)
			return VGPU_INVALID_PARAM;
	} else {
		return VGPU_INVALID_PARAM;
	}
	const uint8_t *p = payload + VGPU_DEV_BLOCK;
	for (uint32_t i = 0; i < v.n_regions; i++, p += VGPU_DEV_REGION_SIZE) {
		struct vgpu_dev_region *r = &v.regions[i];

		r->gpa = get64(p);
		r->size = get64(p + 8);
		r->fd_offset = get64(p + 16);
		if (!pages_ok(r->gpa, r->size) || !pages_ok(r->fd_offset, r->size))
			return VGPU_INVALID_PARAM;
		for (uint32_t j = 0; j < i; j++) {
			const struct vgpu_dev_region *o = &v.regions[j];

			if (r->gpa < o->gpa + o->size && o->gpa < r->gpa + r->size)
				return VGPU_INVALID_PARAM;
		}
	}
	*ret = v;
	return VGPU_OK;
}

int vgpu_dev_parse_window(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			  const struct vgpu_msg_header *h, const uint8_t *payload,
			  struct vgpu_dev_window *ret)
{
	uint32_t action, n;
	uint64_t sum = 0;

	if (!intact(raw_header, h, payload, VGPU_MSG_WINDOW) || get64(payload + 16))
		return VGPU_PROTOCOL;
	action = get32(payload);
	n = get32(payload + 4);
	if (n > VGPU_DEV_MAX_EXTENTS || h->payload_len != VGPU_DEV_BLOCK + n * VGPU_DEV_EXTENT_SIZE)
		return VGPU_PROTOCOL;
	if (action == VGPU_DEV_UNREGISTER) {
		if (n != 0 || get64(payload + 8))
			return VGPU_INVALID_PARAM;
		ret->action = action;
		ret->n_extents = 0;
		ret->bytes = 0;
		return VGPU_OK;
	}
	if (action != VGPU_DEV_REGISTER || n == 0)
		return VGPU_INVALID_PARAM;
	const uint8_t *p = payload + VGPU_DEV_BLOCK;
	for (uint32_t i = 0; i < n; i++, p += VGPU_DEV_EXTENT_SIZE) {
		uint64_t gpa = get64(p), len = get64(p + 8);

		/* Each extent is below 2^64 and the sum stays below 2^33: no wrap. */
		if (!pages_ok(gpa, len) || len > VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA)
			return VGPU_INVALID_PARAM;
		sum += len;
		if (sum > VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA)
			return VGPU_INVALID_PARAM;
	}
	if (sum < VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA || get64(payload + 8) != sum)
		return VGPU_INVALID_PARAM;
	/* No page twice: the rings and the data of one window are distinct
	 * memory, as in a window the mediator makes. */
	for (uint32_t i = 1; i < n; i++) {
		const uint8_t *a = payload + VGPU_DEV_BLOCK + i * VGPU_DEV_EXTENT_SIZE;

		for (uint32_t j = 0; j < i; j++) {
			const uint8_t *b = payload + VGPU_DEV_BLOCK + j * VGPU_DEV_EXTENT_SIZE;

			if (get64(a) < get64(b) + get64(b + 8) && get64(b) < get64(a) + get64(a + 8))
				return VGPU_INVALID_PARAM;
		}
	}
	ret->action = action;
	ret->n_extents = n;
	ret->bytes = sum;
	p = payload + VGPU_DEV_BLOCK;
	for (uint32_t i = 0; i < n; i++, p += VGPU_DEV_EXTENT_SIZE) {
		ret->extents[i].gpa = get64(p);
		ret->extents[i].len = get64(p + 8);
	}
	return VGPU_OK;
}

int vgpu_dev_parse_reply(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			 const struct vgpu_msg_header *h, const uint8_t *payload,
			 uint16_t *ret_answered, int32_t *ret_status, uint64_t *ret_window)
{
	if (!intact(raw_header, h, payload, VGPU_MSG_DEVICE_REPLY))
		return VGPU_PROTOCOL;
	int32_t status = (int32_t)get32(payload);
	uint32_t answered = get32(payload + 4);
	uint64_t window = get64(payload + 8);

	if (get64(payload + 16) || status > 0 ||
	    (answered != VGPU_MSG_DEVICE && answered != VGPU_MSG_WINDOW) ||
	    (status != VGPU_OK && window))
		return VGPU_PROTOCOL;
	*ret_answered = (uint16_t)answered;
	*ret_status = status;
	*ret_window = window;
	return VGPU_OK;
}

int vgpu_dev_parse_identity(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			    const struct vgpu_msg_header *h, const uint8_t *payload,
			    struct vgpu_dev_identity *ret)
{
	uint32_t pool, priority;

	if (!intact(raw_header, h, payload, VGPU_MSG_IDENTITY) || get64(payload + 8) ||
	    get64(payload + 16))
		return VGPU_PROTOCOL;
	pool = get32(payload);
	priority = get32(payload + 4);
	if (pool < 'A' || pool > 'Z' || priority > VGPU_DEV_MAX_PRIORITY)
		return VGPU_INVALID_PARAM;
	ret->pool = pool;
	ret->priority = priority;
	return VGPU_OK;
}
