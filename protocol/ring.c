/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the shared-memory ring's descriptors, completions and attach
 * messages (see vgpu_ring.h and docs/protocol.md).
 *
 * Must never: decode from memory the other side can still change (callers
 * pass private copies), or let an offset plus a size wrap or leave the
 * window's data area.
 */
#include <stdbool.h>

#include "le.h"
#include "vgpu_ring.h"

void vgpu_ring_encode_desc(const struct vgpu_ring_desc *d, uint8_t out[VGPU_RING_DESC_SIZE])
{
	memset(out, 0, VGPU_RING_DESC_SIZE);
	put64(out, d->request_id);
	put16(out + 8, d->op);
	put16(out + 10, d->flags);
	vgpu_proto_encode_params(&d->params, out + 12);
	for (int i = 0; i < 3; i++)
		put32(out + 36 + 4 * i, d->in_off[i]);
	put32(out + 48, d->out_off);
	/* 52..63 reserved, zero */
}

int vgpu_ring_decode_desc(const uint8_t in[VGPU_RING_DESC_SIZE], struct vgpu_ring_desc *ret)
{
	ret->request_id = get64(in);
	ret->op = get16(in + 8);
	ret->flags = get16(in + 10);
	vgpu_proto_decode_params(in + 12, &ret->params);
	for (int i = 0; i < 3; i++)
		ret->in_off[i] = get32(in + 36 + 4 * i);
	ret->out_off = get32(in + 48);
	/* Checked last: a malformed descriptor is still answered by its id. */
	for (int i = 52; i < VGPU_RING_DESC_SIZE; i++)
		if (in[i])
			return VGPU_PROTOCOL;
	return VGPU_OK;
}

void vgpu_ring_encode_cqe(const struct vgpu_ring_cqe *e, uint8_t out[VGPU_RING_CQE_SIZE])
{
	put64(out, e->request_id);
	vgpu_proto_encode_status(e->status, e->queue_ns, e->exec_ns, out + 8);
}

int vgpu_ring_decode_cqe(const uint8_t in[VGPU_RING_CQE_SIZE], struct vgpu_ring_cqe *ret)
{
	struct vgpu_ring_cqe e = { .request_id = get64(in) };

	if (vgpu_proto_decode_status(in + 8, &e.status, &e.queue_ns, &e.exec_ns) != VGPU_OK)
		return VGPU_PROTOCOL;
	*ret = e;
	return VGPU_OK;
}

/* Whether [a, a + an) and [b, b + bn) share a byte. */
static bool overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return a < b + bn && b < a + an;
}

int vgpu_ring_check_stream(const struct vgpu_ring_desc *d, uint64_t window,
			   struct vgpu_stream_view *ret)
{
	const struct vgpu_op_params *p = &d->params;
	struct vgpu_stream_view v = { .index = p->m, .open = d->flags == VGPU_STREAM_OPEN };

	if (d->op != VGPU_RING_OP_STREAM ||
	    (d->flags != VGPU_STREAM_OPEN && d->flags != VGPU_STREAM_CLOSE) || p->k ||
	    p->alpha != 0.0f || p->beta != 0.0f || d->in_off[1] || d->in_off[2] || d->out_off)
		return VGPU_PROTOCOL;
	if (!v.open && (p->n || d->in_off[0]))
		return VGPU_PROTOCOL;
	if (v.index >= VGPU_STREAMS_MAX)
		return VGPU_INVALID_PARAM;
	if (v.open) {
		v.ctl_off = d->in_off[0];
		v.ring_bytes = p->n;
		/* Offsets below 2^32, rings at most 16 MiB: no wrap. */
		if (v.ctl_off % VGPU_STREAM_CTL || v.ctl_off < VGPU_RING_DATA_OFFSET ||
		    v.ring_bytes < VGPU_STREAM_RING_MIN || v.ring_bytes > VGPU_STREAM_RING_MAX ||
		    (v.ring_bytes & (v.ring_bytes - 1)) ||
		    v.ctl_off + VGPU_STREAM_CTL + 2 * v.ring_bytes > window)
			return VGPU_INVALID_PARAM;
	}
	*ret = v;
	return VGPU_OK;
}

int vgpu_ring_check_desc(const struct vgpu_ring_desc *d, const struct vgpu_proto_limits *limits,
			 uint64_t window, struct vgpu_ring_view *ret)
{
	struct vgpu_ring_view v = { .request_id = d->request_id, .op = (enum vgpu_op)d->op,
				    .params = d->params };
	int rc;

	if (d->flags != 0)
		return VGPU_PROTOCOL;
	rc = vgpu_proto_op_shape(d->op, &d->params, limits, &v.n_inputs, v.in_count, &v.out_count);
	if (rc != VGPU_OK)
		return rc;
	for (int i = 0; i < 3; i++) {
		uint64_t off = d->in_off[i];

		if (i >= v.n_inputs) {
			if (off)
				return VGPU_INVALID_PARAM;
			continue;
		}
		/* Sizes are below 2^32 floats and offsets below 2^32: no wrap. */
		if (off % sizeof(float) || off < VGPU_RING_DATA_OFFSET ||
		    off + v.in_count[i] * sizeof(float) > window)
			return VGPU_INVALID_PARAM;
		v.in_off[i] = off;
	}
	v.out_off = d->out_off;
	if (v.out_off % sizeof(float) || v.out_off < VGPU_RING_DATA_OFFSET ||
	    v.out_off + v.out_count * sizeof(float) > window)
		return VGPU_INVALID_PARAM;
	/* The output is written while inputs are still read: it may only be
	 * the very input it updates (saxpy's y, sgemm's C), or apart. */
	int inplace = vgpu_proto_inplace_input(v.op);

	for (int i = 0; i < v.n_inputs; i++) {
		if (i == inplace && v.in_off[i] == v.out_off)
			continue;
		if (overlap(v.in_off[i], v.in_count[i] * sizeof(float), v.out_off,
			    v.out_count * sizeof(float)))
			return VGPU_INVALID_PARAM;
	}
	*ret = v;
	return VGPU_OK;
}

/* A header plus 24-byte block of @type, checksummed. */
static void encode_small(uint16_t type, uint8_t out[VGPU_RING_ATTACH_MSG])
{
	struct vgpu_msg_header h = { .type = type, .payload_len = VGPU_PROTO_PARAMS_SIZE };

	vgpu_proto_encode_header(&h, out);
	put32(out + 28, vgpu_proto_checksum(out, out + VGPU_PROTO_HEADER_SIZE,
					   VGPU_PROTO_PARAMS_SIZE));
}

static bool small_ok(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
		     const struct vgpu_msg_header *h, const uint8_t *block, uint16_t type)
{
	return h->type == type && h->payload_len == VGPU_PROTO_PARAMS_SIZE && h->op == 0 &&
	       h->request_id == 0 &&
	       vgpu_proto_checksum(raw_header, block, VGPU_PROTO_PARAMS_SIZE) == h->checksum;
}

void vgpu_ring_encode_attach(uint64_t data_bytes, uint8_t out[VGPU_RING_ATTACH_MSG])
{
	uint8_t *block = out + VGPU_PROTO_HEADER_SIZE;

	memset(block, 0, VGPU_PROTO_PARAMS_SIZE);
	put64(block, data_bytes);
	encode_small(VGPU_MSG_ATTACH, out);
}

int vgpu_ring_parse_attach(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			   const struct vgpu_msg_header *h, const uint8_t *block,
			   uint64_t *ret_data_bytes)
{
	if (!small_ok(raw_header, h, block, VGPU_MSG_ATTACH) || get64(block + 8) ||
	    get64(block + 16))
		return VGPU_PROTOCOL;
	*ret_data_bytes = get64(block);
	return VGPU_OK;
}

void vgpu_ring_encode_attached(int32_t status, uint64_t window, uint8_t out[VGPU_RING_ATTACH_MSG])
{
	uint8_t *block = out + VGPU_PROTO_HEADER_SIZE;

	memset(block, 0, VGPU_PROTO_PARAMS_SIZE);
	put32(block, (uint32_t)status);
	put32(block + 4, status == VGPU_OK ? VGPU_RING_ENTRIES : 0);
	put64(block + 8, status == VGPU_OK ? window : 0);
	encode_small(VGPU_MSG_ATTACHED, out);
}

int vgpu_ring_parse_attached(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_msg_header *h, const uint8_t *block,
			     int32_t *ret_status, uint64_t *ret_window)
{
	int32_t status = (int32_t)get32(block);
	uint64_t window = get64(block + 8);

	if (!small_ok(raw_header, h, block, VGPU_MSG_ATTACHED) || status > 0 ||
	    get64(block + 16))
		return VGPU_PROTOCOL;
	if (status == VGPU_OK &&
	    (get32(block + 4) != VGPU_RING_ENTRIES || window % VGPU_RING_PAGE ||
	     window < VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA ||
	     window > VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA))
		return VGPU_PROTOCOL;
	if (status != VGPU_OK && (get32(block + 4) || window))
		return VGPU_PROTOCOL;
	*ret_status = status;
	*ret_window = window;
	return VGPU_OK;
}
