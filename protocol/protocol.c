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

/* CRC32C (Castagnoli) over a message's head (32 + 24 or 48 bytes, for
 * every call and reply): the SSE4.2 instruction where the CPU has it,
 * else a table, a byte at a time (the bitwise loop before cost 1.5 us
 * per call's encode and decode: bench/head-cost.c, docs/performance.md;
 * tests/protocol/test_protocol.c checks both ways against the standard
 * check value). */
static const uint32_t crc_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
								size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t vgpu_proto_crc32c(uint32_t crc, const uint8_t *p, size_t len, bool hardware)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (hardware && __builtin_cpu_supports("sse4.2"))
		return ~crc32c_sse42(crc, p, len);
#else
	(void)hardware;
#endif
	return ~crc32c_table(crc, p, len);
}

uint32_t vgpu_proto_checksum(const uint8_t header[VGPU_PROTO_HEADER_SIZE], const uint8_t *block,
			     size_t block_len)
{
	uint8_t h[VGPU_PROTO_HEADER_SIZE];

	memcpy(h, header, sizeof(h));
	put32(h + 28, 0);
	return vgpu_proto_crc32c(vgpu_proto_crc32c(0, h, sizeof(h), true), block, block_len, true);
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
