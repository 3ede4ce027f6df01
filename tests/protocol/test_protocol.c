/* SPDX-License-Identifier: MIT */
/*
 * test_protocol.c - the wire format (protocol/protocol.c) against its
 * specification, docs/protocol.md: exact bytes, round trips of every op,
 * and each way a message can be malformed.
 *
 * The expected checksums below were computed with an independent CRC32C
 * (Python, checked against the standard value 0xe3069283 of "123456789"),
 * not with the code under test.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vgpu_protocol.h"

static const struct vgpu_proto_limits *deflim = &vgpu_proto_default_limits;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recompute the checksum of @msg (header and 24-byte fixed block), so that
 * a test reaches the check it means and not the checksum. */
static void resign(uint8_t *msg)
{
	put32(msg + 28, vgpu_proto_checksum(msg, msg + VGPU_PROTO_HEADER_SIZE, 24));
}

/* The sgemm request of the byte-layout tests: m=2 n=3 k=4, vm_id 7,
 * alpha 1.5, beta -2, request id 0x0102030405060708. */
static const uint8_t sgemm_prefix[56] = {
	0x56, 0x47, 0x50, 0x55,                         /* magic "VGPU" */
	0x01, 0x00,                                     /* version 1 */
	0x01, 0x00,                                     /* type: request */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* request id */
	0x03, 0x00,                                     /* op: sgemm */
	0x00, 0x00,                                     /* reserved */
	0x00, 0x00, 0x00, 0x00,                         /* flags */
	0x80, 0x00, 0x00, 0x00,                         /* payload_len 24 + 26 * 4 */
	0x1d, 0xf9, 0xdd, 0x04,                         /* CRC32C 0x04ddf91d */
	0x07, 0x00, 0x00, 0x00,                         /* vm_id 7 */
	0x02, 0x00, 0x00, 0x00,                         /* m */
	0x03, 0x00, 0x00, 0x00,                         /* n */
	0x04, 0x00, 0x00, 0x00,                         /* k */
	0x00, 0x00, 0xc0, 0x3f,                         /* alpha 1.5f */
	0x00, 0x00, 0x00, 0xc0,                         /* beta -2.0f */
};

static const struct vgpu_op_params sgemm_params = {
	.vm_id = 7, .m = 2, .n = 3, .k = 4, .alpha = 1.5f, .beta = -2.0f,
};

static float A24[26];

static uint8_t *build(int op, const struct vgpu_op_params *p, size_t *len)
{
	const float *in[3] = { A24, A24, A24 };
	uint8_t *msg = NULL;

	assert_int_equal(vgpu_proto_build_request(0x0102030405060708u, op, p, in, deflim, &msg,
						  len),
			 VGPU_OK);
	return msg;
}

/* The instruction and the table give the standard check value, and the
 * same CRC as each other for every length and alignment up to 100 bytes
 * (continued from a previous CRC too). */
static void test_crc32c_ways(void **state)
{
	const uint8_t check[] = "123456789";
	uint8_t buf[128];

	(void)state;
	assert_int_equal(vgpu_proto_crc32c(0, check, 9, false), 0xe3069283u);
	assert_int_equal(vgpu_proto_crc32c(0, check, 9, true), 0xe3069283u);
	assert_int_equal(vgpu_proto_crc32c(vgpu_proto_crc32c(0, check, 4, true), check + 4, 5, false),
			 0xe3069283u);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 100; len++)
			assert_int_equal(vgpu_proto_crc32c(0x1234u, buf + off, len, true),
					 vgpu_proto_crc32c(0x1234u, buf + off, len, false));
}

static void test_header_layout(void **state)
{
	struct vgpu_msg_header h = {
		.type = VGPU_MSG_REQUEST, .op = VGPU_OP_SGEMM, .request_id = 0x0102030405060708u,
		.payload_len = 128, .checksum = 0x04ddf91du,
	}, d;
	uint8_t out[32];

	(void)state;
	vgpu_proto_encode_header(&h, out);
	assert_memory_equal(out, sgemm_prefix, 32);
	assert_int_equal(vgpu_proto_decode_header(out, deflim, &d), VGPU_OK);
	assert_int_equal(d.type, VGPU_MSG_REQUEST);
	assert_int_equal(d.op, VGPU_OP_SGEMM);
	assert_int_equal(d.flags, 0);
	assert_true(d.request_id == 0x0102030405060708u);
	assert_int_equal(d.payload_len, 128);
	assert_int_equal(d.checksum, 0x04ddf91du);
	assert_int_equal(vgpu_proto_checksum(sgemm_prefix, sgemm_prefix + 32, 24), 0x04ddf91du);
}

static void test_request_bytes(void **state)
{
	size_t len;
	uint8_t *msg;

	(void)state;
	for (int i = 0; i < 26; i++)
		A24[i] = (float)i - 10.5f;
	msg = build(VGPU_OP_SGEMM, &sgemm_params, &len);
	assert_int_equal(len, 32 + 128);
	assert_memory_equal(msg, sgemm_prefix, sizeof(sgemm_prefix));
	/* A (8 floats), B (12), C (6), little-endian, straight after the block. */
	assert_memory_equal(msg + 56, A24, 8 * 4);
	assert_memory_equal(msg + 56 + 32, A24, 12 * 4);
	assert_memory_equal(msg + 56 + 80, A24, 6 * 4);
	assert_int_equal(get32(msg + 56), 0xc1280000u); /* -10.5f */
	free(msg);
}

static void test_response_bytes(void **state)
{
	static const uint8_t ok[56] = {
		0x56, 0x47, 0x50, 0x55, 0x01, 0x00, 0x02, 0x00,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x30, 0x00, 0x00, 0x00,                         /* 24 + 6 * 4 */
		0x70, 0xb8, 0xef, 0x0e,                         /* CRC32C 0x0eefb870 */
		0x00, 0x00, 0x00, 0x00,                         /* status VGPU_OK */
		0x00, 0x00, 0x00, 0x00,                         /* reserved */
		0xe8, 0x03, 0, 0, 0, 0, 0, 0,                   /* queue_ns 1000 */
		0xd0, 0x07, 0, 0, 0, 0, 0, 0,                   /* exec_ns 2000 */
	};
	static const uint8_t busy[56] = {
		0x56, 0x47, 0x50, 0x55, 0x01, 0x00, 0x02, 0x00,
		42, 0, 0, 0, 0, 0, 0, 0,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x18, 0x00, 0x00, 0x00,                         /* no data */
		0x3c, 0xdf, 0x0b, 0x4a,                         /* CRC32C 0x4a0bdf3c */
		0xf7, 0xff, 0xff, 0xff,                         /* VGPU_BUSY (-9) */
		0x00, 0x00, 0x00, 0x00,
		5, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t out[56];

	(void)state;
	vgpu_proto_encode_response(0x0102030405060708u, VGPU_OP_SGEMM, VGPU_OK, 1000, 2000, 6,
				   out);
	assert_memory_equal(out, ok, 56);
	/* An error response carries no data, whatever out_count says. */
	vgpu_proto_encode_response(42, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 5, 0, 1000, out);
	assert_memory_equal(out, busy, 56);
}

/* Each op with its smallest interesting sizes. */
static const struct {
	int op;
	struct vgpu_op_params p;
	int n_inputs;
	uint64_t in[3], out;
} shapes[] = {
	{ VGPU_OP_VECTOR_ADD, { .n = 5 }, 2, { 5, 5, 0 }, 5 },
	{ VGPU_OP_SAXPY, { .n = 3, .alpha = -0.25f }, 2, { 3, 3, 0 }, 3 },
	{ VGPU_OP_SGEMM, { .m = 2, .n = 3, .k = 4, .alpha = 1, .beta = 0.5f }, 3, { 8, 12, 6 }, 6 },
	{ VGPU_OP_REDUCE_SUM, { .vm_id = 9, .n = 7 }, 1, { 7, 0, 0 }, 1 },
	{ VGPU_OP_VECTOR_ADD, { .n = 1 }, 2, { 1, 1, 0 }, 1 },
	{ VGPU_OP_SGEMM, { .m = 1, .n = 1, .k = 1 }, 3, { 1, 1, 1 }, 1 },
};

static void test_request_round_trip(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
		float in[3][16];
		const float *inp[3] = { in[0], in[1], in[2] };
		struct vgpu_request_view v;
		struct vgpu_msg_header h;
		uint8_t *msg;
		size_t len;

		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 16; j++)
				in[i][j] = (float)(100 * i + j) + 0.25f;
		assert_int_equal(vgpu_proto_build_request(1000 + t, shapes[t].op, &shapes[t].p, inp,
							  deflim, &msg, &len),
				 VGPU_OK);
		assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
		assert_int_equal(h.type, VGPU_MSG_REQUEST);
		assert_int_equal(h.op, shapes[t].op);
		assert_true(h.request_id == 1000 + t);
		assert_int_equal(h.payload_len + 32, len);
		assert_int_equal(vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &v), VGPU_OK);
		assert_int_equal(v.op, shapes[t].op);
		assert_memory_equal(&v.params, &shapes[t].p, sizeof(v.params));
		assert_true(v.out_count == shapes[t].out);
		const uint8_t *p = msg + 56;
		for (int i = 0; i < 3; i++) {
			assert_true(v.in_count[i] == shapes[t].in[i]);
			if (i >= shapes[t].n_inputs) {
				assert_null(v.in[i]);
				continue;
			}
			assert_ptr_equal(v.in[i], p);
			assert_memory_equal(v.in[i], in[i], v.in_count[i] * 4);
			p += v.in_count[i] * 4;
		}
		assert_ptr_equal(p, msg + len);
		free(msg);
	}
}

static void test_response_round_trip(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
		_Alignas(8) uint8_t msg[56 + 64];
		struct vgpu_response_view v;
		struct vgpu_msg_header h;
		uint64_t n = shapes[t].out;

		vgpu_proto_encode_response(77 + t, shapes[t].op, VGPU_OK, 123 + t, 456 + t, n, msg);
		for (uint64_t i = 0; i < n; i++) {
			float f = (float)i * 1.5f;

			memcpy(msg + 56 + 4 * i, &f, 4);
		}
		assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
		assert_int_equal(h.type, VGPU_MSG_RESPONSE);
		assert_int_equal(h.op, shapes[t].op);
		assert_true(h.request_id == 77 + t);
		assert_int_equal(h.payload_len, 24 + 4 * n);
		assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_OK);
		assert_int_equal(v.status, VGPU_OK);
		assert_true(v.queue_ns == 123 + t);
		assert_true(v.exec_ns == 456 + t);
		assert_true(v.out_count == n);
		assert_ptr_equal(v.out, msg + 56);
		for (uint64_t i = 0; i < n; i++)
			assert_true(v.out[i] == (float)i * 1.5f);
	}
	/* Error responses: the status, no data. */
	for (int status = VGPU_ERROR; status >= VGPU_SHUTDOWN; status--) {
		_Alignas(8) uint8_t msg[56];
		struct vgpu_response_view v;
		struct vgpu_msg_header h;

		vgpu_proto_encode_response(5, VGPU_OP_SAXPY, status, 1, 0, 10, msg);
		assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
		assert_int_equal(h.payload_len, 24);
		assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_OK);
		assert_int_equal(v.status, status);
		assert_true(v.out_count == 0);
		assert_null(v.out);
	}
}

/* A valid header's bytes with one field changed must be refused, and the
 * output left as it was. */
static void expect_header(const uint8_t in[32], const struct vgpu_proto_limits *l, int want)
{
	struct vgpu_msg_header h, before;

	memset(&h, 0xa5, sizeof(h));
	before = h;
	assert_int_equal(vgpu_proto_decode_header(in, l, &h), want);
	if (want != VGPU_OK)
		assert_memory_equal(&h, &before, sizeof(h));
}

static void mutate16(uint8_t *hdr, size_t off, uint16_t v)
{
	hdr[off] = (uint8_t)v;
	hdr[off + 1] = (uint8_t)(v >> 8);
}

static void test_malformed_headers(void **state)
{
	static const uint16_t bad_versions[] = { 0, 2, 0x100, 0xffff };
	static const uint16_t bad_types[] = { 0, 3, 0x101, 0xffff };
	static const uint16_t bad_ops[] = { 0, 5, 0x100, 0xffff };
	static const uint32_t bad_flags[] = { 1, 2, 0x100, 0x80000000u, 0xffffffffu };
	uint8_t hdr[32];

	(void)state;
	expect_header(sgemm_prefix, deflim, VGPU_OK);
	for (size_t i = 0; i < 4; i++) {
		memcpy(hdr, sgemm_prefix, 32);
		hdr[i] ^= 0x20; /* "vGPU", ... */
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		memcpy(hdr, sgemm_prefix, 32);
		mutate16(hdr, 4, bad_versions[i]);
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		memcpy(hdr, sgemm_prefix, 32);
		mutate16(hdr, 6, bad_types[i]);
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
		memcpy(hdr, sgemm_prefix, 32);
		mutate16(hdr, 16, bad_ops[i]);
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	for (size_t off = 18; off < 20; off++) {
		memcpy(hdr, sgemm_prefix, 32);
		hdr[off] = 1;
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		memcpy(hdr, sgemm_prefix, 32);
		put32(hdr + 20, bad_flags[i]);
		expect_header(hdr, deflim, VGPU_PROTOCOL);
	}
	/* payload_len: up to the limit, not one byte more. */
	memcpy(hdr, sgemm_prefix, 32);
	put32(hdr + 24, deflim->max_payload);
	expect_header(hdr, deflim, VGPU_OK);
	put32(hdr + 24, deflim->max_payload + 1);
	expect_header(hdr, deflim, VGPU_LIMIT);
	put32(hdr + 24, 0xffffffffu);
	expect_header(hdr, deflim, VGPU_LIMIT);
	/* A deployment limit above the protocol's ceiling does not lift it. */
	struct vgpu_proto_limits wide = { UINT32_MAX, UINT32_MAX, UINT32_MAX };
	put32(hdr + 24, VGPU_PROTO_MAX_PAYLOAD);
	expect_header(hdr, &wide, VGPU_OK);
	put32(hdr + 24, VGPU_PROTO_MAX_PAYLOAD + 1);
	expect_header(hdr, &wide, VGPU_LIMIT);
	/* A smaller deployment limit is enforced. */
	struct vgpu_proto_limits small = { 100, 10, 4 };
	put32(hdr + 24, 101);
	expect_header(hdr, &small, VGPU_LIMIT);
	/* Zero payload and any checksum pass the header check: the parse
	 * functions judge those. */
	put32(hdr + 24, 0);
	put32(hdr + 28, 0xdeadbeefu);
	expect_header(hdr, deflim, VGPU_OK);
}

/* Flipping any bit of the header or the parameter block must be caught:
 * by the header check or by the checksum. */
static void test_checksum_request(void **state)
{
	struct vgpu_request_view v;
	struct vgpu_msg_header h;
	size_t len;
	uint8_t *msg = build(VGPU_OP_SGEMM, &sgemm_params, &len);

	(void)state;
	for (size_t byte = 0; byte < 56; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			msg[byte] ^= (uint8_t)(1u << bit);
			int rc = vgpu_proto_decode_header(msg, deflim, &h);

			if (rc == VGPU_OK)
				rc = vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &v);
			if (rc == VGPU_OK)
				fail_msg("flipped bit %d of byte %zu went unnoticed", bit, byte);
			msg[byte] ^= (uint8_t)(1u << bit);
		}
	}
	/* The bulk data is not covered (docs/protocol.md says why). */
	msg[100] ^= 0xff;
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &v), VGPU_OK);
	free(msg);
}

static void test_checksum_response(void **state)
{
	_Alignas(8) uint8_t msg[56 + 8];
	struct vgpu_response_view v;
	struct vgpu_msg_header h;

	(void)state;
	vgpu_proto_encode_response(9, VGPU_OP_VECTOR_ADD, VGPU_OK, 10, 20, 2, msg);
	memset(msg + 56, 0, 8);
	for (size_t byte = 0; byte < 56; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			msg[byte] ^= (uint8_t)(1u << bit);
			int rc = vgpu_proto_decode_header(msg, deflim, &h);

			if (rc == VGPU_OK)
				rc = vgpu_proto_parse_response(msg, &h, msg + 32, &v);
			if (rc == VGPU_OK)
				fail_msg("flipped bit %d of byte %zu went unnoticed", bit, byte);
			msg[byte] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_OK);
}

/* Parse @msg after changing its payload_len to @payload_len (re-signed). */
static int parse_with_len(uint8_t *msg, uint32_t payload_len)
{
	struct vgpu_request_view v;
	struct vgpu_msg_header h;
	int rc;

	put32(msg + 24, payload_len);
	resign(msg);
	rc = vgpu_proto_decode_header(msg, deflim, &h);
	return rc == VGPU_OK ? vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &v) : rc;
}

static void test_size_mismatch(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
		size_t len;
		uint8_t *msg = build(shapes[t].op, &shapes[t].p, &len);
		uint8_t *big = calloc(1, len + 8);
		uint32_t good = (uint32_t)(len - 32);

		assert_non_null(big);
		memcpy(big, msg, len);
		assert_int_equal(parse_with_len(big, good), VGPU_OK);
		assert_int_equal(parse_with_len(big, good - 4), VGPU_PROTOCOL); /* a float short */
		assert_int_equal(parse_with_len(big, good + 4), VGPU_PROTOCOL); /* a float long */
		assert_int_equal(parse_with_len(big, good - 1), VGPU_PROTOCOL);
		assert_int_equal(parse_with_len(big, good + 1), VGPU_PROTOCOL);
		assert_int_equal(parse_with_len(big, 24), VGPU_PROTOCOL);       /* params only */
		free(big);
		free(msg);
	}
}

static void test_short_fixed_block(void **state)
{
	_Alignas(8) uint8_t msg[56];
	struct vgpu_request_view rv;
	struct vgpu_response_view sv;
	struct vgpu_msg_header h;

	(void)state;
	memcpy(msg, sgemm_prefix, 56);
	for (uint32_t len = 0; len < 24; len++) {
		put32(msg + 24, len);
		resign(msg);
		assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
		assert_int_equal(vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &rv),
				 VGPU_PROTOCOL);
	}
	vgpu_proto_encode_response(1, VGPU_OP_SAXPY, VGPU_BUSY, 0, 0, 0, msg);
	for (uint32_t len = 0; len < 24; len++) {
		put32(msg + 24, len);
		resign(msg);
		assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
		assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &sv), VGPU_PROTOCOL);
	}
}

/* op_shape and a (re-signed) message must both refuse @p for @op with @want. */
static void expect_params(int op, struct vgpu_op_params p, const struct vgpu_proto_limits *l,
			  int want)
{
	_Alignas(8) uint8_t msg[56];
	struct vgpu_msg_header h = { .type = VGPU_MSG_REQUEST, .op = (uint16_t)op,
				     .request_id = 3, .payload_len = 24 };
	struct vgpu_request_view v;
	uint64_t in[3] = { 11, 12, 13 }, out = 14;
	uint32_t a, b;
	int n_inputs = -1;

	assert_int_equal(vgpu_proto_op_shape(op, &p, l, &n_inputs, in, &out), want);
	assert_int_equal(n_inputs, -1); /* nothing written on failure */
	assert_true(in[0] == 11 && in[1] == 12 && in[2] == 13 && out == 14);
	vgpu_proto_encode_header(&h, msg);
	memcpy(&a, &p.alpha, 4);
	memcpy(&b, &p.beta, 4);
	put32(msg + 32, p.vm_id);
	put32(msg + 36, p.m);
	put32(msg + 40, p.n);
	put32(msg + 44, p.k);
	put32(msg + 48, a);
	put32(msg + 52, b);
	resign(msg);
	assert_int_equal(vgpu_proto_decode_header(msg, l, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_request(msg, &h, msg + 32, l, &v), want);
}

static void test_unused_params(void **state)
{
	(void)state;
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 4, .m = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 4, .k = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 4, .alpha = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 4, .alpha = -0.0f },
		      deflim, VGPU_INVALID_PARAM); /* non-zero bits */
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 4, .beta = 2 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_SAXPY, (struct vgpu_op_params){ .n = 4, .beta = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_SAXPY, (struct vgpu_op_params){ .n = 4, .m = 2 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_REDUCE_SUM, (struct vgpu_op_params){ .n = 4, .alpha = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_REDUCE_SUM, (struct vgpu_op_params){ .n = 4, .k = 4 }, deflim,
		      VGPU_INVALID_PARAM);
}

static void test_zero_sizes(void **state)
{
	(void)state;
	for (int op = 1; op <= VGPU_OP_COUNT; op++)
		expect_params(op, (struct vgpu_op_params){ .m = 1, .k = 1 }, deflim,
			      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = 0, .n = 1, .k = 1 }, deflim,
		      VGPU_INVALID_PARAM);
	expect_params(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = 1, .n = 1, .k = 0 }, deflim,
		      VGPU_INVALID_PARAM);
	/* Unknown ops. */
	struct vgpu_op_params p = { .n = 1 };
	int n_inputs;
	uint64_t in[3], out;
	assert_int_equal(vgpu_proto_op_shape(0, &p, deflim, &n_inputs, in, &out),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_proto_op_shape(5, &p, deflim, &n_inputs, in, &out),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_proto_op_shape(-1, &p, deflim, &n_inputs, in, &out),
			 VGPU_INVALID_PARAM);
}

static int shape(int op, struct vgpu_op_params p, const struct vgpu_proto_limits *l)
{
	int n_inputs;
	uint64_t in[3], out;

	return vgpu_proto_op_shape(op, &p, l, &n_inputs, in, &out);
}

static void test_limits(void **state)
{
	const uint32_t e = deflim->max_elems, d = deflim->max_dim;
	const uint32_t pay = deflim->max_payload;

	(void)state;
	assert_int_equal(e, 64u << 20);
	assert_int_equal(d, 8192);
	assert_int_equal(pay, 512u << 20);
	/* max_elems: one array of exactly max_elems fits, one more does not. */
	assert_int_equal(shape(VGPU_OP_REDUCE_SUM, (struct vgpu_op_params){ .n = e }, deflim),
			 VGPU_OK);
	assert_int_equal(shape(VGPU_OP_REDUCE_SUM, (struct vgpu_op_params){ .n = e + 1 }, deflim),
			 VGPU_LIMIT);
	/* max_payload: two arrays of (max_payload - 24) / 8 floats fit. */
	uint32_t vmax = (pay - 24) / 8;
	assert_int_equal(shape(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = vmax }, deflim),
			 VGPU_OK);
	assert_int_equal(shape(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = vmax + 1 }, deflim),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SAXPY,
			       (struct vgpu_op_params){ .n = vmax + 1, .alpha = 1 }, deflim),
			 VGPU_LIMIT);
	/* max_dim, each of m, n, k. */
	assert_int_equal(shape(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = d, .n = 1, .k = 1 },
			       deflim),
			 VGPU_OK);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = d + 1, .n = 1, .k = 1 }, deflim),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = 1, .n = d + 1, .k = 1 }, deflim),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = 1, .n = 1, .k = d + 1 }, deflim),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = 4096, .n = 4096, .k = 4096 }, deflim),
			 VGPU_OK);
	/* 3 x 64 Mi floats is past 512 MiB. */
	assert_int_equal(shape(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = d, .n = d, .k = d },
			       deflim),
			 VGPU_LIMIT);
	/* Products that would wrap in 32 bits: 65536 * 65536 = 2^32 must not
	 * become 0, nor 2^30 floats * 4 bytes. */
	struct vgpu_proto_limits wide = { UINT32_MAX, UINT32_MAX, UINT32_MAX };
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = 65536, .n = 1, .k = 65536 }, &wide),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = 65536, .n = 65536, .k = 65536 },
			       &wide),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 1u << 30 },
			       &wide),
			 VGPU_LIMIT);
	assert_int_equal(shape(VGPU_OP_SGEMM,
			       (struct vgpu_op_params){ .m = UINT32_MAX, .n = UINT32_MAX,
							.k = UINT32_MAX },
			       &wide),
			 VGPU_LIMIT);
	/* ... and as messages whose 32-bit wrapped sizes would add up. */
	expect_params(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = 65536, .n = 65536, .k = 65536 },
		      &wide, VGPU_LIMIT);
	expect_params(VGPU_OP_VECTOR_ADD, (struct vgpu_op_params){ .n = 1u << 30 }, &wide,
		      VGPU_LIMIT);
	expect_params(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = 65536, .n = 1, .k = 65536 },
		      deflim, VGPU_LIMIT);
	/* The output counts too: a response must fit max_payload. */
	struct vgpu_proto_limits tight = { 24 + 4 * 16, 1000, 1000 };
	assert_int_equal(shape(VGPU_OP_SGEMM, (struct vgpu_op_params){ .m = 4, .n = 4, .k = 1 },
			       &tight),
			 VGPU_LIMIT); /* inputs 4 + 4 + 16 floats */
	assert_int_equal(shape(VGPU_OP_REDUCE_SUM, (struct vgpu_op_params){ .n = 16 }, &tight),
			 VGPU_OK);
}

static void test_build_errors(void **state)
{
	const float x[4] = { 1, 2, 3, 4 };
	const float *in[3] = { x, NULL, NULL };
	struct vgpu_op_params p = { .n = 4 };
	uint8_t *msg = (uint8_t *)1;
	size_t len = 7;

	(void)state;
	assert_int_equal(vgpu_proto_build_request(1, VGPU_OP_VECTOR_ADD, &p, in, deflim, &msg, &len),
			 VGPU_INVALID_PARAM); /* b missing */
	assert_int_equal(vgpu_proto_build_request(1, 0, &p, in, deflim, &msg, &len),
			 VGPU_INVALID_PARAM);
	p.n = deflim->max_elems + 1;
	assert_int_equal(vgpu_proto_build_request(1, VGPU_OP_REDUCE_SUM, &p, in, deflim, &msg, &len),
			 VGPU_LIMIT);
	assert_ptr_equal(msg, (uint8_t *)1);
	assert_int_equal(len, 7);
}

static void test_response_checks(void **state)
{
	_Alignas(8) uint8_t msg[56 + 16];
	struct vgpu_response_view v;
	struct vgpu_msg_header h;

	(void)state;
	/* A failed request with data. */
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, VGPU_BACKEND, 0, 0, 0, msg);
	put32(msg + 24, 24 + 8);
	resign(msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_PROTOCOL);
	/* A positive status. */
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, 1, 0, 0, 0, msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_PROTOCOL);
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, INT32_MAX, 0, 0, 0, msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_PROTOCOL);
	/* Data that is not whole floats. */
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, VGPU_OK, 0, 0, 2, msg);
	put32(msg + 24, 24 + 7);
	resign(msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_PROTOCOL);
	/* The reserved word of the status block. */
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, VGPU_OK, 0, 0, 2, msg);
	put32(msg + 36, 1);
	resign(msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_PROTOCOL);
	/* A request is no response, and a response no request. */
	size_t len;
	uint8_t *req = build(VGPU_OP_SGEMM, &sgemm_params, &len);
	struct vgpu_request_view rv;
	assert_int_equal(vgpu_proto_decode_header(req, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(req, &h, req + 32, &v), VGPU_PROTOCOL);
	free(req);
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, VGPU_OK, 0, 0, 4, msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_request(msg, &h, msg + 32, deflim, &rv), VGPU_PROTOCOL);
	/* An empty OK response is well-formed here; the client checks its count. */
	vgpu_proto_encode_response(1, VGPU_OP_VECTOR_ADD, VGPU_OK, 0, 0, 0, msg);
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_proto_parse_response(msg, &h, msg + 32, &v), VGPU_OK);
	assert_true(v.out_count == 0);
	assert_null(v.out);
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(vgpu_op_name(VGPU_OP_VECTOR_ADD), "vector_add");
	assert_string_equal(vgpu_op_name(VGPU_OP_SAXPY), "saxpy");
	assert_string_equal(vgpu_op_name(VGPU_OP_SGEMM), "sgemm");
	assert_string_equal(vgpu_op_name(VGPU_OP_REDUCE_SUM), "reduce_sum");
	assert_null(vgpu_op_name(0));
	assert_null(vgpu_op_name(5));
	assert_null(vgpu_op_name(-1));
	assert_int_equal(vgpu_op_from_name("vector-add"), VGPU_OP_VECTOR_ADD);
	assert_int_equal(vgpu_op_from_name("vector_add"), VGPU_OP_VECTOR_ADD);
	assert_int_equal(vgpu_op_from_name("saxpy"), VGPU_OP_SAXPY);
	assert_int_equal(vgpu_op_from_name("sgemm"), VGPU_OP_SGEMM);
	assert_int_equal(vgpu_op_from_name("reduce-sum"), VGPU_OP_REDUCE_SUM);
	assert_int_equal(vgpu_op_from_name("reduce_sum"), VGPU_OP_REDUCE_SUM);
	static const char *const bad[] = {
		"", "vector", "vector-add-", "vector-addx", "Vector-Add", "VECTOR_ADD", "vector add",
		"vector-_add", "vector--add", "reduce", "sgemm ", " sgemm", "-", "_",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vgpu_op_from_name(bad[i]), 0);
	assert_int_equal(vgpu_op_from_name(NULL), 0);
	/* Every name maps back to its op. */
	for (int op = 1; op <= VGPU_OP_COUNT; op++)
		assert_int_equal(vgpu_op_from_name(vgpu_op_name(op)), op);
}

/* A whole message from a file: 0 when it decodes and parses completely. */
static int parse_file(const char *path, bool *ret_is_request)
{
	_Alignas(8) uint8_t buf[4096];
	struct vgpu_msg_header h;
	struct vgpu_request_view rv;
	struct vgpu_response_view sv;
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n < 32)
		return VGPU_PROTOCOL;
	rc = vgpu_proto_decode_header(buf, deflim, &h);
	if (rc != VGPU_OK)
		return rc;
	if (h.payload_len != n - 32)
		return VGPU_PROTOCOL;
	*ret_is_request = h.type == VGPU_MSG_REQUEST;
	if (h.type == VGPU_MSG_REQUEST)
		return vgpu_proto_parse_request(buf, &h, buf + 32, deflim, &rv);
	return vgpu_proto_parse_response(buf, &h, buf + 32, &sv);
}

/*
 * The fuzz seeds were written by tests/fuzz/gen_protocol_corpus.py, an
 * encoder independent of protocol.c: those named req-* and resp-* must be
 * accepted as they are, every other one refused.
 */
static void test_corpus_cross_check(void **state)
{
	const char *dir = getenv("VGPU_PROTOCOL_CORPUS");

	if (!dir || !*dir)
		dir = PROTOCOL_CORPUS; /* the source tree's, set by meson */
	struct dirent *e;
	DIR *d;
	int valid = 0, broken = 0;

	(void)state;
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[4096];
		bool is_request = false;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int rc = parse_file(path, &is_request);
		if (strncmp(e->d_name, "req-", 4) == 0 || strncmp(e->d_name, "resp-", 5) == 0) {
			if (rc != VGPU_OK || is_request != (e->d_name[2] == 'q'))
				fail_msg("%s: refused (%d)", e->d_name, rc);
			valid++;
		} else {
			if (rc == VGPU_OK)
				fail_msg("%s: accepted", e->d_name);
			broken++;
		}
	}
	closedir(d);
	assert_true(valid >= 8 && broken >= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_ways),
		cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_request_bytes),
		cmocka_unit_test(test_response_bytes),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_response_round_trip),
		cmocka_unit_test(test_malformed_headers),
		cmocka_unit_test(test_checksum_request),
		cmocka_unit_test(test_checksum_response),
		cmocka_unit_test(test_size_mismatch),
		cmocka_unit_test(test_short_fixed_block),
		cmocka_unit_test(test_unused_params),
		cmocka_unit_test(test_zero_sizes),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_response_checks),
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_corpus_cross_check),
	};

	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
