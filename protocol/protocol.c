/* SPDX-License-Identifier: MIT */
/*
 * protocol.c - encoding and checking vgpu messages (see vgpu_protocol.h and
 * docs/protocol.md).
 *
 * Must never: read past a length it has not checked, compute a size that can
 * overflow (all sizes are 64-bit products of 32-bit fields, checked against
 * limits before use), or accept a field it does not understand.
 */
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "vgpu_protocol.h"

const struct vgpu_proto_limits vgpu_proto_default_limits = {
	.max_payload = 512u << 20,
	.max_elems = 64u << 20,
	.max_dim = 8192,
};

static const char *const op_names[VGPU_OP_COUNT + 1] = {
	NULL, "vector_add", "saxpy", "sgemm", "reduce_sum",
};

const char *vgpu_op_name(int op)
{
	return op >= 1 && op <= VGPU_OP_COUNT ? op_names[op] : NULL;
}

int vgpu_op_from_name(const char *name)
{
	for (int op = 1; name && op <= VGPU_OP_COUNT; op++) {
		const char *a = op_names[op], *b = name;

		while (*a && (*a == *b || (*a == '_' && *b == '-'))) {
			a++;
			b++;
		}
		if (!*a && !*b)
			return op;
	}
	return 0;
}

/* CRC32C (Castagnoli), bitwise: it only ever covers 32 + 24 bytes. */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

uint32_t vgpu_proto_checksum(const uint8_t header[VGPU_PROTO_HEADER_SIZE], const uint8_t *block,
			     size_t block_len)
{
	uint8_t h[VGPU_PROTO_HEADER_SIZE];

	memcpy(h, header, sizeof(h));
	put32(h + 28, 0);
	return crc32c(crc32c(0, h, sizeof(h)), block, block_len);
}

void vgpu_proto_encode_header(const struct vgpu_msg_header *h, uint8_t out[VGPU_PROTO_HEADER_SIZE])
{
	put32(out, VGPU_PROTO_MAGIC);
	put16(out + 4, VGPU_PROTO_VERSION);
	put16(out + 6, h->type);
	put64(out + 8, h->request_id);
	put16(out + 16, h->op);
	put16(out + 18, 0);
	put32(out + 20, h->flags);
	put32(out + 24, h->payload_len);
	put32(out + 28, h->checksum);
}

int vgpu_proto_decode_header(const uint8_t in[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_proto_limits *limits, struct vgpu_msg_header *ret)
{
	struct vgpu_msg_header h;

	if (get32(in) != VGPU_PROTO_MAGIC || get16(in + 4) != VGPU_PROTO_VERSION)
		return VGPU_PROTOCOL;
	h.type = get16(in + 6);
	h.request_id = get64(in + 8);
	h.op = get16(in + 16);
	h.flags = get32(in + 20);
	h.payload_len = get32(in + 24);
	h.checksum = get32(in + 28);
	if (get16(in + 18) != 0 || h.flags != 0)
		return VGPU_PROTOCOL;
	switch (h.type) {
	case VGPU_MSG_REQUEST:
	case VGPU_MSG_RESPONSE:
		if (!vgpu_op_name(h.op))
			return VGPU_PROTOCOL;
		break;
	case VGPU_MSG_ATTACH:
	case VGPU_MSG_ATTACHED:
	case VGPU_MSG_DEVICE:
	case VGPU_MSG_WINDOW:
	case VGPU_MSG_DEVICE_REPLY:
	case VGPU_MSG_IDENTITY:
		if (h.op != 0)
			return VGPU_PROTOCOL;
		break;
	case VGPU_MSG_CUDA:
	case VGPU_MSG_CUDA_REPLY:
		if (h.op == 0 || h.op > VGPU_CUDA_CALL_MAX)
			return VGPU_PROTOCOL;
		break;
	default:
		return VGPU_PROTOCOL;
	}
	if (h.payload_len > limits->max_payload || h.payload_len > VGPU_PROTO_MAX_PAYLOAD)
		return VGPU_LIMIT;
	*ret = h;
	return VGPU_OK;
}

int vgpu_proto_op_shape(int op, const struct vgpu_op_params *p,
			const struct vgpu_proto_limits *limits, int *ret_n_inputs,
			uint64_t ret_in_count[3], uint64_t *ret_out_count)
{
	uint64_t in[3] = { 0, 0, 0 }, out;
	int n_inputs;
	bool uses_mk = op == VGPU_OP_SGEMM;
	bool uses_alpha = op == VGPU_OP_SAXPY || op == VGPU_OP_SGEMM;
	bool uses_beta = op == VGPU_OP_SGEMM;

	if (!vgpu_op_name(op) || p->n == 0 || (uses_mk && (p->m == 0 || p->k == 0)) ||
	    (!uses_mk && (p->m || p->k)) || (!uses_alpha && float_bits(p->alpha)) ||
	    (!uses_beta && float_bits(p->beta)))
		return VGPU_INVALID_PARAM;
	switch (op) {
	case VGPU_OP_VECTOR_ADD:
	case VGPU_OP_SAXPY:
		n_inputs = 2;
		in[0] = in[1] = out = p->n;
		break;
	case VGPU_OP_REDUCE_SUM:
		n_inputs = 1;
		in[0] = p->n;
		out = 1;
		break;
	default: /* VGPU_OP_SGEMM */
		if (p->m > limits->max_dim || p->n > limits->max_dim || p->k > limits->max_dim)
			return VGPU_LIMIT;
		n_inputs = 3;
		in[0] = (uint64_t)p->m * p->k;
		in[1] = (uint64_t)p->k * p->n;
		in[2] = out = (uint64_t)p->m * p->n;
		break;
	}
	uint64_t bytes = VGPU_PROTO_PARAMS_SIZE;
	for (int i = 0; i < n_inputs; i++) {
		if (in[i] > limits->max_elems)
			return VGPU_LIMIT;
		bytes += in[i] * sizeof(float);
	}
	if (out > limits->max_elems || bytes > limits->max_payload ||
	    VGPU_PROTO_STATUS_SIZE + out * sizeof(float) > limits->max_payload)
		return VGPU_LIMIT;
	*ret_n_inputs = n_inputs;
	memcpy(ret_in_count, in, sizeof(in));
	*ret_out_count = out;
	return VGPU_OK;
}

void vgpu_proto_encode_params(const struct vgpu_op_params *p, uint8_t out[VGPU_PROTO_PARAMS_SIZE])
{
	put32(out, p->vm_id);
	put32(out + 4, p->m);
	put32(out + 8, p->n);
	put32(out + 12, p->k);
	put32(out + 16, float_bits(p->alpha));
	put32(out + 20, float_bits(p->beta));
}

void vgpu_proto_decode_params(const uint8_t in[VGPU_PROTO_PARAMS_SIZE], struct vgpu_op_params *ret)
{
	ret->vm_id = get32(in);
	ret->m = get32(in + 4);
	ret->n = get32(in + 8);
	ret->k = get32(in + 12);
	ret->alpha = bits_float(get32(in + 16));
	ret->beta = bits_float(get32(in + 20));
}

int vgpu_proto_build_request(uint64_t request_id, int op, const struct vgpu_op_params *params,
			     const float *const in[3], const struct vgpu_proto_limits *limits,
			     uint8_t **ret_msg, size_t *ret_len)
{
	uint64_t in_count[3], out_count, len = VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE;
	struct vgpu_msg_header h = { .type = VGPU_MSG_REQUEST, .request_id = request_id };
	int n_inputs, rc;
	uint8_t *msg, *p;

	rc = vgpu_proto_op_shape(op, params, limits, &n_inputs, in_count, &out_count);
	if (rc != VGPU_OK)
		return rc;
	for (int i = 0; i < n_inputs; i++) {
		if (!in[i])
			return VGPU_INVALID_PARAM;
		len += in_count[i] * sizeof(float);
	}
	msg = malloc(len);
	if (!msg)
		return VGPU_NO_MEMORY;
	h.op = (uint16_t)op;
	h.payload_len = (uint32_t)(len - VGPU_PROTO_HEADER_SIZE);
	vgpu_proto_encode_header(&h, msg);
	vgpu_proto_encode_params(params, msg + VGPU_PROTO_HEADER_SIZE);
	p = msg + VGPU_PROTO_HEADER_SIZE + VGPU_PROTO_PARAMS_SIZE;
	for (int i = 0; i < n_inputs; i++) {
		memcpy(p, in[i], in_count[i] * sizeof(float));
		p += in_count[i] * sizeof(float);
	}
	put32(msg + 28, vgpu_proto_checksum(msg, msg + VGPU_PROTO_HEADER_SIZE,
					   VGPU_PROTO_PARAMS_SIZE));
	*ret_msg = msg;
	*ret_len = (size_t)len;
	return VGPU_OK;
}

int vgpu_proto_check_request_head(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
				  const struct vgpu_msg_header *h,
				  const uint8_t params[VGPU_PROTO_PARAMS_SIZE],
				  const struct vgpu_proto_limits *limits, struct vgpu_request_view *ret)
{
	struct vgpu_request_view v;
	int n_inputs, rc;

	if (h->type != VGPU_MSG_REQUEST || h->payload_len < VGPU_PROTO_PARAMS_SIZE ||
	    vgpu_proto_checksum(raw_header, params, VGPU_PROTO_PARAMS_SIZE) != h->checksum)
		return VGPU_PROTOCOL;
	memset(&v, 0, sizeof(v));
	v.op = (enum vgpu_op)h->op;
	vgpu_proto_decode_params(params, &v.params);
	rc = vgpu_proto_op_shape(h->op, &v.params, limits, &n_inputs, v.in_count, &v.out_count);
	if (rc != VGPU_OK)
		return rc;
	uint64_t expect = VGPU_PROTO_PARAMS_SIZE;
	for (int i = 0; i < n_inputs; i++)
		expect += v.in_count[i] * sizeof(float);
	if (expect != h->payload_len)
		return VGPU_PROTOCOL;
	*ret = v;
	return VGPU_OK;
}

int vgpu_proto_parse_request(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			     const struct vgpu_msg_header *h, const uint8_t *payload,
			     const struct vgpu_proto_limits *limits, struct vgpu_request_view *ret)
{
	struct vgpu_request_view v;

	if (h->payload_len < VGPU_PROTO_PARAMS_SIZE)
		return VGPU_PROTOCOL;
	int rc = vgpu_proto_check_request_head(raw_header, h, payload, limits, &v);
	if (rc != VGPU_OK)
		return rc;
	vgpu_proto_request_inputs(&v, payload);
	*ret = v;
	return VGPU_OK;
}

void vgpu_proto_request_inputs(struct vgpu_request_view *v, const uint8_t *payload)
{
	const uint8_t *p = payload + VGPU_PROTO_PARAMS_SIZE;

	for (int i = 0; i < 3 && v->in_count[i]; i++) {
		v->in[i] = (const float *)(const void *)p;
		p += v->in_count[i] * sizeof(float);
	}
}

void vgpu_proto_encode_status(int32_t status, uint64_t queue_ns, uint64_t exec_ns,
			      uint8_t out[VGPU_PROTO_STATUS_SIZE])
{
	put32(out, (uint32_t)status);
	put32(out + 4, 0);
	put64(out + 8, queue_ns);
	put64(out + 16, exec_ns);
}

int vgpu_proto_decode_status(const uint8_t in[VGPU_PROTO_STATUS_SIZE], int32_t *ret_status,
			     uint64_t *ret_queue_ns, uint64_t *ret_exec_ns)
{
	int32_t status = (int32_t)get32(in);

	if (status > 0 || get32(in + 4) != 0)
		return VGPU_PROTOCOL;
	*ret_status = status;
	*ret_queue_ns = get64(in + 8);
	*ret_exec_ns = get64(in + 16);
	return VGPU_OK;
}

void vgpu_proto_encode_response(uint64_t request_id, int op, int32_t status, uint64_t queue_ns,
				uint64_t exec_ns, uint64_t out_count,
				uint8_t out[VGPU_PROTO_RESPONSE_PREFIX])
{
	struct vgpu_msg_header h = {
		.type = VGPU_MSG_RESPONSE,
		.op = (uint16_t)op,
		.request_id = request_id,
		.payload_len = (uint32_t)(VGPU_PROTO_STATUS_SIZE +
					  (status == VGPU_OK ? out_count * sizeof(float) : 0)),
	};
	uint8_t *block = out + VGPU_PROTO_HEADER_SIZE;

	vgpu_proto_encode_header(&h, out);
	vgpu_proto_encode_status(status, queue_ns, exec_ns, block);
	put32(out + 28, vgpu_proto_checksum(out, block, VGPU_PROTO_STATUS_SIZE));
}

int vgpu_proto_parse_response(const uint8_t raw_header[VGPU_PROTO_HEADER_SIZE],
			      const struct vgpu_msg_header *h, const uint8_t *payload,
			      struct vgpu_response_view *ret)
{
	struct vgpu_response_view v;
	uint32_t data;

	if (h->type != VGPU_MSG_RESPONSE || h->payload_len < VGPU_PROTO_STATUS_SIZE ||
	    vgpu_proto_checksum(raw_header, payload, VGPU_PROTO_STATUS_SIZE) != h->checksum ||
	    vgpu_proto_decode_status(payload, &v.status, &v.queue_ns, &v.exec_ns) != VGPU_OK)
		return VGPU_PROTOCOL;
	data = h->payload_len - VGPU_PROTO_STATUS_SIZE;
	if (data % sizeof(float) || (v.status != VGPU_OK && data))
		return VGPU_PROTOCOL;
	v.out_count = data / sizeof(float);
	v.out = v.out_count ? (const float *)(const void *)(payload + VGPU_PROTO_STATUS_SIZE) : NULL;
	*ret = v;
	return VGPU_OK;
}
