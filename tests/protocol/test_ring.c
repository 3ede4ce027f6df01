/* SPDX-License-Identifier: MIT */
/*
 * test_ring.c - the shared-memory ring's wire pieces (protocol/ring.c,
 * protocol/vgpu_ring.h): exact bytes of descriptors and completions, every
 * way vgpu_ring_check_desc() must refuse an offset (alignment, the control
 * page and the rings, the window's end, wrap-around, overlap of the output
 * with an input), and the attach handshake's messages.
 *
 * The expected checksums of the attach messages were computed with an
 * independent CRC32C (Python, checked against 0xe3069283 for "123456789"),
 * not with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cuda_desc.h"
#include "vgpu_protocol.h"
#include "vgpu_ring.h"

#define D ((uint32_t)VGPU_RING_DATA_OFFSET)
#define MIB ((uint64_t)1 << 20)
/* The window of most tests: the rings and 1 MiB of data. */
#define W (VGPU_RING_DATA_OFFSET + MIB)

static const struct vgpu_proto_limits *deflim = &vgpu_proto_default_limits;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bitsf(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static void assert_params_equal(const struct vgpu_op_params *a, const struct vgpu_op_params *b)
{
	assert_int_equal(a->vm_id, b->vm_id);
	assert_int_equal(a->m, b->m);
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->k, b->k);
	assert_int_equal(fbits(a->alpha), fbits(b->alpha));
	assert_int_equal(fbits(a->beta), fbits(b->beta));
}

/* --- descriptors ------------------------------------------------------ */

static const struct vgpu_ring_desc layout_desc = {
	.request_id = 0x0102030405060708u,
	.op = VGPU_OP_SGEMM,
	.flags = 0x0a0b,
	.params = { .vm_id = 7, .m = 2, .n = 3, .k = 4, .alpha = 1.5f, .beta = -2.0f },
	.in_off = { 0x11223344u, 0x55667788u, 0x99aabbccu },
	.out_off = 0xddeeff00u,
};

static const uint8_t layout_bytes[VGPU_RING_DESC_SIZE] = {
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* request_id */
	0x03, 0x00,                                     /* op: sgemm */
	0x0b, 0x0a,                                     /* flags */
	0x07, 0x00, 0x00, 0x00,                         /* vm_id */
	0x02, 0x00, 0x00, 0x00,                         /* m */
	0x03, 0x00, 0x00, 0x00,                         /* n */
	0x04, 0x00, 0x00, 0x00,                         /* k */
	0x00, 0x00, 0xc0, 0x3f,                         /* alpha 1.5f */
	0x00, 0x00, 0x00, 0xc0,                         /* beta -2.0f */
	0x44, 0x33, 0x22, 0x11,                         /* in_off[0] */
	0x88, 0x77, 0x66, 0x55,                         /* in_off[1] */
	0xcc, 0xbb, 0xaa, 0x99,                         /* in_off[2] */
	0x00, 0xff, 0xee, 0xdd,                         /* out_off */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,             /* reserved */
};

static void assert_desc_equal(const struct vgpu_ring_desc *a, const struct vgpu_ring_desc *b)
{
	assert_true(a->request_id == b->request_id);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->flags, b->flags);
	assert_params_equal(&a->params, &b->params);
	for (int i = 0; i < 3; i++)
		assert_int_equal(a->in_off[i], b->in_off[i]);
	assert_int_equal(a->out_off, b->out_off);
}

static void test_desc_layout(void **state)
{
	uint8_t out[VGPU_RING_DESC_SIZE];
	struct vgpu_ring_desc d;

	(void)state;
	/* The encoder writes every byte, reserved ones included. */
	memset(out, 0xff, sizeof(out));
	vgpu_ring_encode_desc(&layout_desc, out);
	assert_memory_equal(out, layout_bytes, sizeof(out));
	assert_int_equal(vgpu_ring_decode_desc(layout_bytes, &d), VGPU_OK);
	assert_desc_equal(&d, &layout_desc);
}

static void test_desc_round_trip(void **state)
{
	/* Floats go through bit for bit: -0.0, a NaN with a payload, the
	 * smallest subnormal, infinity. */
	const uint32_t floats[][2] = {
		{ 0x80000000u, 0x7fc12345u },
		{ 0x00000001u, 0xff800000u },
		{ 0x3f800000u, 0x00000000u },
	};
	const uint64_t ids[] = { 0, 1, UINT64_MAX, 0x8000000000000000u };

	(void)state;
	for (size_t t = 0; t < sizeof(floats) / sizeof(floats[0]); t++) {
		for (size_t r = 0; r < sizeof(ids) / sizeof(ids[0]); r++) {
			struct vgpu_ring_desc in = {
				.request_id = ids[r],
				.op = (uint16_t)(t * 0x5555u + r),
				.flags = (uint16_t)(0xffffu - r),
				.params = {
					.vm_id = 0xffffffffu - (uint32_t)t, .m = (uint32_t)r,
					.n = 0x80000000u, .k = 12345,
					.alpha = bitsf(floats[t][0]), .beta = bitsf(floats[t][1]),
				},
				.in_off = { 0xffffffffu, (uint32_t)t, D },
				.out_off = 0x7ffffffcu + (uint32_t)r,
			}, out;
			uint8_t buf[VGPU_RING_DESC_SIZE];

			vgpu_ring_encode_desc(&in, buf);
			for (int i = 52; i < VGPU_RING_DESC_SIZE; i++)
				assert_int_equal(buf[i], 0);
			memset(&out, 0x5a, sizeof(out));
			assert_int_equal(vgpu_ring_decode_desc(buf, &out), VGPU_OK);
			assert_desc_equal(&out, &in);
		}
	}
}

/* A reserved byte refuses the descriptor, but @ret is still filled: the
 * mediator answers a malformed descriptor under its request id. */
static void test_desc_reserved(void **state)
{
	(void)state;
	for (int i = 52; i < VGPU_RING_DESC_SIZE; i++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t buf[VGPU_RING_DESC_SIZE];
			struct vgpu_ring_desc d;

			memcpy(buf, layout_bytes, sizeof(buf));
			buf[i] = (uint8_t)(1u << bit);
			memset(&d, 0xa5, sizeof(d));
			assert_int_equal(vgpu_ring_decode_desc(buf, &d), VGPU_PROTOCOL);
			assert_desc_equal(&d, &layout_desc);
		}
	}
}

/* --- completions ------------------------------------------------------ */

static void test_cqe_layout(void **state)
{
	static const uint8_t expect[VGPU_RING_CQE_SIZE] = {
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* request_id */
		0xf2, 0xff, 0xff, 0xff,                         /* VGPU_PROTOCOL (-14) */
		0x00, 0x00, 0x00, 0x00,                         /* reserved */
		0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* queue_ns */
		0x10, 0x00, 0xf0, 0xe0, 0xd0, 0xc0, 0xb0, 0xa0, /* exec_ns */
	};
	const struct vgpu_ring_cqe e = {
		.request_id = 0x1122334455667788u,
		.status = VGPU_PROTOCOL,
		.queue_ns = 0x0000000100000002u,
		.exec_ns = 0xa0b0c0d0e0f00010u,
	};
	struct vgpu_ring_cqe d;
	uint8_t out[VGPU_RING_CQE_SIZE];

	(void)state;
	memset(out, 0xff, sizeof(out));
	vgpu_ring_encode_cqe(&e, out);
	assert_memory_equal(out, expect, sizeof(out));
	assert_int_equal(vgpu_ring_decode_cqe(expect, &d), VGPU_OK);
	assert_true(d.request_id == e.request_id);
	assert_int_equal(d.status, VGPU_PROTOCOL);
	assert_true(d.queue_ns == e.queue_ns);
	assert_true(d.exec_ns == e.exec_ns);
}

static void test_cqe_round_trip(void **state)
{
	const int32_t statuses[] = { VGPU_OK, VGPU_ERROR, VGPU_BUSY, VGPU_SHUTDOWN, INT32_MIN };

	(void)state;
	for (size_t t = 0; t < sizeof(statuses) / sizeof(statuses[0]); t++) {
		const struct vgpu_ring_cqe e = {
			.request_id = UINT64_MAX - t,
			.status = statuses[t],
			.queue_ns = t * 1000003u,
			.exec_ns = UINT64_MAX / (t + 1),
		};
		struct vgpu_ring_cqe d;
		uint8_t buf[VGPU_RING_CQE_SIZE];

		vgpu_ring_encode_cqe(&e, buf);
		memset(&d, 0x5a, sizeof(d));
		assert_int_equal(vgpu_ring_decode_cqe(buf, &d), VGPU_OK);
		assert_true(d.request_id == e.request_id);
		assert_int_equal(d.status, e.status);
		assert_true(d.queue_ns == e.queue_ns);
		assert_true(d.exec_ns == e.exec_ns);
	}
}

static void test_cqe_refused(void **state)
{
	const struct vgpu_ring_cqe e = { .request_id = 9, .status = VGPU_OK, .queue_ns = 1,
					 .exec_ns = 2 };
	const uint32_t positive[] = { 1, 2, 0x7fffffffu };
	uint8_t good[VGPU_RING_CQE_SIZE];
	struct vgpu_ring_cqe d, sentinel;

	(void)state;
	vgpu_ring_encode_cqe(&e, good);
	memset(&d, 0xa5, sizeof(d));
	memcpy(&sentinel, &d, sizeof(d));
	for (size_t t = 0; t < sizeof(positive) / sizeof(positive[0]); t++) {
		uint8_t buf[VGPU_RING_CQE_SIZE];

		memcpy(buf, good, sizeof(buf));
		put32(buf + 8, positive[t]);
		assert_int_equal(vgpu_ring_decode_cqe(buf, &d), VGPU_PROTOCOL);
		assert_memory_equal(&d, &sentinel, sizeof(d));
	}
	for (int i = 12; i < 16; i++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t buf[VGPU_RING_CQE_SIZE];

			memcpy(buf, good, sizeof(buf));
			buf[i] = (uint8_t)(1u << bit);
			assert_int_equal(vgpu_ring_decode_cqe(buf, &d), VGPU_PROTOCOL);
			assert_memory_equal(&d, &sentinel, sizeof(d));
		}
	}
}

/* --- checking descriptors against a window ---------------------------- */

/* Valid descriptors of each op, in the first KiB of the data area. */
static struct vgpu_ring_desc vadd(void)
{
	return (struct vgpu_ring_desc){
		.request_id = 1, .op = VGPU_OP_VECTOR_ADD, .params = { .n = 256 },
		.in_off = { D, D + 1024, 0 }, .out_off = D + 2048,
	};
}

static struct vgpu_ring_desc saxpy(void)
{
	return (struct vgpu_ring_desc){
		.request_id = 2, .op = VGPU_OP_SAXPY, .params = { .n = 256, .alpha = 2.5f },
		.in_off = { D, D + 1024, 0 }, .out_off = D + 1024,
	};
}

/* m=2 n=3 k=4: A 8 floats, B 12, C 6. */
static struct vgpu_ring_desc sgemm(void)
{
	return (struct vgpu_ring_desc){
		.request_id = 3, .op = VGPU_OP_SGEMM,
		.params = { .vm_id = 5, .m = 2, .n = 3, .k = 4, .alpha = 1.0f, .beta = -0.5f },
		.in_off = { D, D + 32, D + 80 }, .out_off = D + 80,
	};
}

static struct vgpu_ring_desc rsum(void)
{
	return (struct vgpu_ring_desc){
		.request_id = 4, .op = VGPU_OP_REDUCE_SUM, .params = { .n = 100 },
		.in_off = { D, 0, 0 }, .out_off = D + 400,
	};
}

/* vgpu_ring_check_desc() with a sentinel in @ret: the view must come back
 * untouched unless the answer is VGPU_OK. */
static int check(const struct vgpu_ring_desc *d, const struct vgpu_proto_limits *lim,
		 uint64_t window, struct vgpu_ring_view *ret)
{
	struct vgpu_ring_view v, sentinel;
	int rc;

	memset(&v, 0xa5, sizeof(v));
	memcpy(&sentinel, &v, sizeof(v));
	rc = vgpu_ring_check_desc(d, lim, window, &v);
	if (rc != VGPU_OK)
		assert_memory_equal(&v, &sentinel, sizeof(v));
	else if (ret)
		*ret = v;
	return rc;
}

static void assert_view(const struct vgpu_ring_view *v, const struct vgpu_ring_desc *d,
			int n_inputs, uint64_t c0, uint64_t c1, uint64_t c2, uint64_t out_count)
{
	const uint64_t counts[3] = { c0, c1, c2 };

	assert_true(v->request_id == d->request_id);
	assert_int_equal(v->op, d->op);
	assert_params_equal(&v->params, &d->params);
	assert_int_equal(v->n_inputs, n_inputs);
	for (int i = 0; i < 3; i++) {
		assert_true(v->in_count[i] == counts[i]);
		assert_true(v->in_off[i] == (i < n_inputs ? d->in_off[i] : 0));
	}
	assert_true(v->out_off == d->out_off);
	assert_true(v->out_count == out_count);
}

static void test_check_valid(void **state)
{
	struct vgpu_ring_desc d;
	struct vgpu_ring_view v;

	(void)state;
	d = vadd();
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_view(&v, &d, 2, 256, 256, 0, 256);
	d = saxpy();
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_view(&v, &d, 2, 256, 256, 0, 256);
	d = sgemm();
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_view(&v, &d, 3, 8, 12, 6, 6);
	d = rsum();
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_view(&v, &d, 1, 100, 0, 0, 1);
	/* The largest arrays that fit: three of a third of the data area. */
	d = vadd();
	d.params.n = (uint32_t)(MIB / 4 / 3);
	d.in_off[1] = D + d.params.n * 4;
	d.out_off = D + 2 * d.params.n * 4;
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_view(&v, &d, 2, MIB / 12, MIB / 12, 0, MIB / 12);
}

static void test_check_flags_and_shape(void **state)
{
	struct vgpu_ring_desc d;

	(void)state;
	d = vadd();
	d.flags = 1;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_PROTOCOL);
	d.flags = 0x8000;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_PROTOCOL);
	d = sgemm();
	d.flags = 0xffff;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_PROTOCOL);

	const uint16_t bad_ops[] = { 0, VGPU_OP_COUNT + 1, 0xffff };
	for (size_t t = 0; t < sizeof(bad_ops) / sizeof(bad_ops[0]); t++) {
		d = vadd();
		d.op = bad_ops[t];
		assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	}
	d = vadd();
	d.params.n = 0;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = rsum();
	d.params.n = 0;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = sgemm();
	d.params.k = 0;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	/* A parameter the op does not use. */
	d = vadd();
	d.params.alpha = 1.0f;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
}

/* Set offset @which (0..2 an input, 3 the output) of @d. */
static void set_off(struct vgpu_ring_desc *d, int which, uint32_t off)
{
	if (which < 3)
		d->in_off[which] = off;
	else
		d->out_off = off;
}

static uint32_t get_off(const struct vgpu_ring_desc *d, int which)
{
	return which < 3 ? d->in_off[which] : d->out_off;
}

static void test_check_offsets(void **state)
{
	/* Every used offset of every op: { op maker, which offset }. */
	struct vgpu_ring_desc (*const makers[])(void) = { vadd, saxpy, sgemm, rsum };
	const int used[][4] = {
		{ 0, 1, 3, -1 }, { 0, 1, 3, -1 }, { 0, 1, 2, 3 }, { 0, 3, -1, -1 },
	};
	const uint32_t low[] = {
		0, 4, VGPU_RING_OFF_SQ_TAIL, VGPU_RING_SQ_OFFSET, VGPU_RING_CQ_OFFSET,
		VGPU_RING_CQ_OFFSET + 4, D - 4,
	};
	const uint32_t huge[] = { 0xfffffffcu, 0xfffff000u, 0x80000000u, 0xffffff00u };

	(void)state;
	for (size_t m = 0; m < 4; m++) {
		for (int u = 0; u < 4 && used[m][u] >= 0; u++) {
			int which = used[m][u];
			struct vgpu_ring_desc d = makers[m]();
			uint32_t off = get_off(&d, which);

			/* Not a multiple of 4. */
			for (uint32_t mis = 1; mis < 4; mis++) {
				d = makers[m]();
				set_off(&d, which, off + mis);
				assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
			}
			/* In the control page or the rings. */
			for (size_t t = 0; t < sizeof(low) / sizeof(low[0]); t++) {
				d = makers[m]();
				set_off(&d, which, low[t]);
				assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
			}
			/* Far past the window, where a 32-bit sum would wrap. */
			for (size_t t = 0; t < sizeof(huge) / sizeof(huge[0]); t++) {
				d = makers[m]();
				set_off(&d, which, huge[t]);
				assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
			}
		}
	}
}

static void test_check_window_end(void **state)
{
	struct vgpu_ring_desc d;
	struct vgpu_ring_view v;
	uint64_t end;

	(void)state;
	/* An input that ends exactly at the window's end, then one byte
	 * short of room. */
	d = vadd();
	d.in_off[1] = (uint32_t)(W - 256 * 4);
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_true(v.in_off[1] + v.in_count[1] * 4 == W);
	assert_int_equal(check(&d, deflim, W - 1, NULL), VGPU_INVALID_PARAM);
	d.in_off[1] += 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* The output likewise. */
	d = vadd();
	d.out_off = (uint32_t)(W - 256 * 4);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	assert_int_equal(check(&d, deflim, W - 1, NULL), VGPU_INVALID_PARAM);
	d.out_off += 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* sgemm's C, in and out, in the last 24 bytes. */
	d = sgemm();
	d.in_off[2] = d.out_off = (uint32_t)(W - 24);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	assert_int_equal(check(&d, deflim, W - 1, NULL), VGPU_INVALID_PARAM);

	/* reduce_sum's one output float in the very last 4 bytes. */
	d = rsum();
	d.out_off = (uint32_t)(W - 4);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	assert_int_equal(check(&d, deflim, W - 1, NULL), VGPU_INVALID_PARAM);
	d.out_off = (uint32_t)W;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* A window with no data area at all, or smaller than the rings. */
	d = rsum();
	assert_int_equal(check(&d, deflim, VGPU_RING_DATA_OFFSET, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(check(&d, deflim, 0, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(check(&d, deflim, VGPU_RING_PAGE, NULL), VGPU_INVALID_PARAM);

	/* An array as long as the whole data area, exactly. */
	d = rsum();
	d.params.n = (uint32_t)(MIB / 4);
	d.out_off = (uint32_t)W;
	end = W + 4;
	assert_int_equal(check(&d, deflim, end, &v), VGPU_OK);
	assert_true(v.in_count[0] == MIB / 4);
	assert_int_equal(check(&d, deflim, end - 1, NULL), VGPU_INVALID_PARAM);
	/* The largest offset a descriptor can name, in a window big enough
	 * for it: no wrap either way. */
	d = rsum();
	d.params.n = 1;
	d.in_off[0] = 0xfffffff8u;
	d.out_off = 0xfffffffcu;
	assert_int_equal(check(&d, deflim, (uint64_t)1 << 32, NULL), VGPU_OK);
	assert_int_equal(check(&d, deflim, ((uint64_t)1 << 32) - 1, NULL), VGPU_INVALID_PARAM);
	/* Two floats from the last offset end at 2^32 + 4: past the window,
	 * though 32 bits would make that 4. */
	d.params.n = 2;
	d.in_off[0] = 0xfffffffcu;
	d.out_off = 0xfffffff8u;
	assert_int_equal(check(&d, deflim, (uint64_t)1 << 32, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(check(&d, deflim, ((uint64_t)1 << 32) + 4, NULL), VGPU_OK);
}

static void test_check_unused_offsets(void **state)
{
	struct vgpu_ring_desc d;

	(void)state;
	d = vadd();
	d.in_off[2] = D + 4096;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.in_off[2] = 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = saxpy();
	d.in_off[2] = D + 1024;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = rsum();
	d.in_off[1] = D + 8192;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = rsum();
	d.in_off[2] = 0x80000000u;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = rsum();
	d.in_off[1] = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
}

static void test_check_overlap(void **state)
{
	struct vgpu_ring_desc d;

	(void)state;
	/* vector_add: the output may touch no input. */
	d = vadd();
	d.out_off = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[0] + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1] + 1020;   /* the last float of b */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1] + 1024;   /* right after b */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d = vadd();
	d.in_off[0] = D + 4096;
	d.in_off[1] = D + 8192;
	d.out_off = D + 4096 - 1024;      /* right before a */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d.out_off += 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* saxpy: y in place, exactly; never over x, never shifted. */
	d = saxpy();
	assert_int_equal(d.out_off, d.in_off[1]);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d.out_off = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1] + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1] - 4;      /* also over x's last float */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = saxpy();
	d.in_off[1] = D + 4096;
	d.out_off = D + 4096 + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = D + 4096 - 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = D + 8192;             /* apart from both: fine */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	/* x and y the same array, written in place: the output is then also
	 * x, which is not its role. */
	d = saxpy();
	d.in_off[0] = d.in_off[1] = d.out_off = D;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* sgemm: C in place, exactly; never over A or B. */
	d = sgemm();
	assert_int_equal(d.out_off, d.in_off[2]);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d.out_off = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[1];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[2] + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[2] - 4;      /* B's last float */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[2] + 24;     /* apart from C: fine */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	/* In place over C, but C itself lying over B: the output overlaps B. */
	d = sgemm();
	d.in_off[2] = d.out_off = d.in_off[1] + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);

	/* reduce_sum: the one output float not inside x. */
	d = rsum();
	d.out_off = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[0] + 396;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d.out_off = d.in_off[0] + 400;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
}

static void test_check_inputs_may_overlap(void **state)
{
	struct vgpu_ring_desc d;
	struct vgpu_ring_view v;

	(void)state;
	d = vadd();
	d.in_off[1] = d.in_off[0];
	assert_int_equal(check(&d, deflim, W, &v), VGPU_OK);
	assert_true(v.in_off[0] == v.in_off[1]);
	d.in_off[1] = d.in_off[0] + 4;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d = saxpy();
	d.in_off[0] = d.in_off[1] - 512;  /* x half over y, y in place */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_INVALID_PARAM);
	d = saxpy();
	d.in_off[1] = d.out_off = D + 4096;
	d.in_off[0] = D + 4096 + 8192;    /* x apart from y */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d = sgemm();
	d.in_off[1] = d.in_off[0];        /* A and B the same floats */
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
	d.in_off[1] = d.in_off[0] + 8;
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);
}

static void test_check_limits(void **state)
{
	const struct vgpu_proto_limits small = {
		.max_payload = 512u << 20, .max_elems = 1000, .max_dim = 16,
	};
	const struct vgpu_proto_limits tiny_payload = {
		.max_payload = 24 + 2 * 256 * 4 - 4, .max_elems = 1u << 20, .max_dim = 16,
	};
	struct vgpu_ring_desc d;
	struct vgpu_ring_view v;

	(void)state;
	d = vadd();
	d.params.n = 1000;
	d.in_off[1] = D + 4000;
	d.out_off = D + 8000;
	assert_int_equal(check(&d, &small, W, &v), VGPU_OK);
	assert_true(v.out_count == 1000);
	d.params.n = 1001;
	d.in_off[1] = D + 4004;
	d.out_off = D + 8008;
	assert_int_equal(check(&d, &small, W, NULL), VGPU_LIMIT);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);

	d = rsum();
	d.params.n = 1001;
	assert_int_equal(check(&d, &small, W, NULL), VGPU_LIMIT);

	d = sgemm();
	d.params.m = 17;
	assert_int_equal(check(&d, &small, W, NULL), VGPU_LIMIT);
	d = sgemm();
	d.params.k = 16;
	d.params.m = 16;
	d.params.n = 16;                  /* each array 256 floats */
	d.in_off[1] = D + 1024;
	d.in_off[2] = d.out_off = D + 2048;
	assert_int_equal(check(&d, &small, W, NULL), VGPU_OK);

	/* The payload limit, as a request over the socket would count it. */
	d = vadd();
	assert_int_equal(check(&d, &tiny_payload, W, NULL), VGPU_LIMIT);
	assert_int_equal(check(&d, deflim, W, NULL), VGPU_OK);

	/* Default limits: 64 Mi floats per array. */
	d = rsum();
	d.params.n = (64u << 20) + 1;
	assert_int_equal(check(&d, deflim, (uint64_t)1 << 32, NULL), VGPU_LIMIT);
}

/* --- the attach handshake --------------------------------------------- */

/* Recompute the checksum of @msg (header and 24-byte block) so that a test
 * reaches the check it means and not the checksum, and decode its header. */
static void resign(uint8_t *msg, struct vgpu_msg_header *h)
{
	put32(msg + 28, vgpu_proto_checksum(msg, msg + VGPU_PROTO_HEADER_SIZE,
					    VGPU_PROTO_PARAMS_SIZE));
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, h), VGPU_OK);
}

static int parse_attach(const uint8_t *msg, uint64_t *ret)
{
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(msg, deflim, &h);

	if (rc != VGPU_OK)
		return rc;
	return vgpu_ring_parse_attach(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, ret);
}

static int parse_attached(const uint8_t *msg, int32_t *ret_status, uint64_t *ret_window)
{
	struct vgpu_msg_header h;
	int rc = vgpu_proto_decode_header(msg, deflim, &h);

	if (rc != VGPU_OK)
		return rc;
	return vgpu_ring_parse_attached(msg, &h, msg + VGPU_PROTO_HEADER_SIZE, ret_status,
					ret_window);
}

static void test_attach_bytes(void **state)
{
	static const uint8_t expect[VGPU_RING_ATTACH_MSG] = {
		0x56, 0x47, 0x50, 0x55, 0x01, 0x00,             /* magic, version */
		0x03, 0x00,                                     /* type: attach */
		0, 0, 0, 0, 0, 0, 0, 0,                         /* request_id */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* op, reserved, flags */
		0x18, 0x00, 0x00, 0x00,                         /* payload_len 24 */
		0x10, 0x29, 0x3c, 0x9f,                         /* CRC32C 0x9f3c2910 */
		0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, /* 64 MiB */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t msg[VGPU_RING_ATTACH_MSG];
	struct vgpu_msg_header h;
	uint64_t bytes = 0;

	(void)state;
	memset(msg, 0xff, sizeof(msg));
	vgpu_ring_encode_attach(64 * MIB, msg);
	assert_memory_equal(msg, expect, sizeof(msg));
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(h.type, VGPU_MSG_ATTACH);
	assert_int_equal(h.op, 0);
	assert_int_equal(h.payload_len, VGPU_PROTO_PARAMS_SIZE);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_OK);
	assert_true(bytes == 64 * MIB);
}

static void test_attach_round_trip(void **state)
{
	const uint64_t sizes[] = { 0, 1, MIB, VGPU_RING_MAX_DATA, 0x0123456789abcdefu, UINT64_MAX };

	(void)state;
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		uint8_t msg[VGPU_RING_ATTACH_MSG];
		uint64_t bytes = ~sizes[t];

		vgpu_ring_encode_attach(sizes[t], msg);
		assert_int_equal(parse_attach(msg, &bytes), VGPU_OK);
		assert_true(bytes == sizes[t]);
	}
}

static void test_attach_corrupt(void **state)
{
	uint8_t good[VGPU_RING_ATTACH_MSG], msg[VGPU_RING_ATTACH_MSG];
	struct vgpu_msg_header h;
	uint64_t bytes = 42;

	(void)state;
	vgpu_ring_encode_attach(3 * MIB, good);
	/* Any flipped bit anywhere: the header refuses it, or the parser does
	 * (the checksum when nothing else). */
	for (size_t i = 0; i < sizeof(good); i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			memcpy(msg, good, sizeof(msg));
			msg[i] ^= (uint8_t)(1u << bit);
			rc = vgpu_proto_decode_header(msg, deflim, &h);
			if (rc == VGPU_OK)
				assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes),
						 VGPU_PROTOCOL);
			else
				assert_true(rc == VGPU_PROTOCOL || rc == VGPU_LIMIT);
			assert_true(bytes == 42);
		}
	}
	/* Where only the checksum can tell: the request id and the size. */
	memcpy(msg, good, sizeof(msg));
	msg[8] ^= 0x80;
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	memcpy(msg, good, sizeof(msg));
	msg[32] ^= 0x01;
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	msg[28] ^= 0x01;                  /* a checksum right for neither */
	assert_int_equal(vgpu_proto_decode_header(msg, deflim, &h), VGPU_OK);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	assert_true(bytes == 42);
	/* Re-signed, a non-zero request id is still refused: attach messages
	 * carry id 0 (found by fuzz_ring: it made the encoding ambiguous). */
	memcpy(msg, good, sizeof(msg));
	msg[8] ^= 0x80;
	resign(msg, &h);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	assert_true(bytes == 42);
}

static void test_attach_refused(void **state)
{
	uint8_t good[VGPU_RING_ATTACH_MSG], msg[VGPU_RING_ATTACH_MSG];
	struct vgpu_msg_header h;
	uint64_t bytes = 42;

	(void)state;
	vgpu_ring_encode_attach(3 * MIB, good);
	/* Bytes 8..23 of the block are reserved. */
	for (int i = 8; i < VGPU_PROTO_PARAMS_SIZE; i++) {
		memcpy(msg, good, sizeof(msg));
		msg[32 + i] = 0x01;
		resign(msg, &h);
		assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
		msg[32 + i] = 0x80;
		resign(msg, &h);
		assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	}
	assert_true(bytes == 42);
	/* A payload_len other than the block's. */
	const uint32_t lens[] = { 0, 23, 25, 48 };
	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		memcpy(msg, good, sizeof(msg));
		put32(msg + 24, lens[t]);
		resign(msg, &h);
		assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	}
	/* Another type's message, properly signed. */
	vgpu_ring_encode_attached(VGPU_OK, VGPU_RING_DATA_OFFSET + 64 * MIB, msg);
	assert_int_equal(parse_attach(msg, &bytes), VGPU_PROTOCOL);
	memcpy(msg, good, sizeof(msg));
	msg[6] = VGPU_MSG_ATTACHED;
	resign(msg, &h);
	assert_int_equal(vgpu_ring_parse_attach(msg, &h, msg + 32, &bytes), VGPU_PROTOCOL);
	assert_true(bytes == 42);
}

static void test_attached_bytes(void **state)
{
	static const uint8_t ok[VGPU_RING_ATTACH_MSG] = {
		0x56, 0x47, 0x50, 0x55, 0x01, 0x00,
		0x04, 0x00,                                     /* type: attached */
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0x18, 0x00, 0x00, 0x00,
		0x80, 0xd6, 0xc4, 0x33,                         /* CRC32C 0x33c4d680 */
		0x00, 0x00, 0x00, 0x00,                         /* VGPU_OK */
		0x00, 0x04, 0x00, 0x00,                         /* 1024 entries */
		0x00, 0x90, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, /* window 0x4019000 */
		0, 0, 0, 0, 0, 0, 0, 0,
	};
	static const uint8_t limit[VGPU_RING_ATTACH_MSG] = {
		0x56, 0x47, 0x50, 0x55, 0x01, 0x00,
		0x04, 0x00,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0x18, 0x00, 0x00, 0x00,
		0x37, 0xbd, 0xfb, 0x5c,                         /* CRC32C 0x5cfbbd37 */
		0xf3, 0xff, 0xff, 0xff,                         /* VGPU_LIMIT (-13) */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,             /* no entries, no window */
		0, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t msg[VGPU_RING_ATTACH_MSG];
	int32_t status = 1;
	uint64_t window = 1;

	(void)state;
	assert_int_equal(VGPU_RING_DATA_OFFSET + 64 * MIB, 0x4019000u);
	memset(msg, 0xff, sizeof(msg));
	vgpu_ring_encode_attached(VGPU_OK, VGPU_RING_DATA_OFFSET + 64 * MIB, msg);
	assert_memory_equal(msg, ok, sizeof(msg));
	assert_int_equal(parse_attached(msg, &status, &window), VGPU_OK);
	assert_int_equal(status, VGPU_OK);
	assert_true(window == VGPU_RING_DATA_OFFSET + 64 * MIB);

	/* An error carries no window, whatever the caller passed. */
	memset(msg, 0xff, sizeof(msg));
	vgpu_ring_encode_attached(VGPU_LIMIT, 12345, msg);
	assert_memory_equal(msg, limit, sizeof(msg));
	vgpu_ring_encode_attached(VGPU_LIMIT, 0, msg);
	assert_memory_equal(msg, limit, sizeof(msg));
	assert_int_equal(parse_attached(msg, &status, &window), VGPU_OK);
	assert_int_equal(status, VGPU_LIMIT);
	assert_true(window == 0);
}

static void test_attached_round_trip(void **state)
{
	const uint64_t windows[] = {
		VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA,
		VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA + VGPU_RING_PAGE,
		VGPU_RING_DATA_OFFSET + 64 * MIB,
		VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA,
	};
	const int32_t errors[] = { VGPU_ERROR, VGPU_NO_MEMORY, VGPU_DENIED, INT32_MIN };

	(void)state;
	for (size_t t = 0; t < sizeof(windows) / sizeof(windows[0]); t++) {
		uint8_t msg[VGPU_RING_ATTACH_MSG];
		int32_t status = 1;
		uint64_t window = 0;

		vgpu_ring_encode_attached(VGPU_OK, windows[t], msg);
		assert_int_equal(parse_attached(msg, &status, &window), VGPU_OK);
		assert_int_equal(status, VGPU_OK);
		assert_true(window == windows[t]);
	}
	for (size_t t = 0; t < sizeof(errors) / sizeof(errors[0]); t++) {
		uint8_t msg[VGPU_RING_ATTACH_MSG];
		int32_t status = 1;
		uint64_t window = 1;

		vgpu_ring_encode_attached(errors[t], 0, msg);
		assert_int_equal(parse_attached(msg, &status, &window), VGPU_OK);
		assert_int_equal(status, errors[t]);
		assert_true(window == 0);
	}
}

/* An attached message with these fields, signed, its header decoded. */
static void craft_attached(uint8_t msg[VGPU_RING_ATTACH_MSG], struct vgpu_msg_header *h,
			   uint32_t status, uint32_t entries, uint64_t window, uint64_t tail)
{
	vgpu_ring_encode_attached(VGPU_OK, VGPU_RING_DATA_OFFSET + 64 * MIB, msg);
	put32(msg + 32, status);
	put32(msg + 36, entries);
	put64(msg + 40, window);
	put64(msg + 48, tail);
	resign(msg, h);
}

static void test_attached_refused(void **state)
{
	const uint64_t good_window = VGPU_RING_DATA_OFFSET + 64 * MIB;
	const uint64_t bad_windows[] = {
		good_window + 1, good_window + 4, good_window - 2048, good_window + 4095,
		0, VGPU_RING_PAGE, VGPU_RING_DATA_OFFSET,
		VGPU_RING_DATA_OFFSET + VGPU_RING_MIN_DATA - VGPU_RING_PAGE,
		VGPU_RING_DATA_OFFSET + VGPU_RING_MAX_DATA + VGPU_RING_PAGE,
		(uint64_t)1 << 40, UINT64_MAX - 4095,
	};
	const uint32_t bad_entries[] = { 0, 1, 512, 1023, 1025, 2048, 0xffffffffu };
	const uint32_t positive[] = { 1, 13, 0x7fffffffu };
	uint8_t msg[VGPU_RING_ATTACH_MSG];
	struct vgpu_msg_header h;
	int32_t status = 77;
	uint64_t window = 77;

	(void)state;
	/* The crafting itself yields an accepted message. */
	craft_attached(msg, &h, VGPU_OK, VGPU_RING_ENTRIES, good_window, 0);
	assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window), VGPU_OK);
	assert_true(window == good_window);
	status = 77;
	window = 77;

	for (size_t t = 0; t < sizeof(bad_windows) / sizeof(bad_windows[0]); t++) {
		craft_attached(msg, &h, VGPU_OK, VGPU_RING_ENTRIES, bad_windows[t], 0);
		assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
				 VGPU_PROTOCOL);
	}
	for (size_t t = 0; t < sizeof(bad_entries) / sizeof(bad_entries[0]); t++) {
		craft_attached(msg, &h, VGPU_OK, bad_entries[t], good_window, 0);
		assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
				 VGPU_PROTOCOL);
	}
	for (size_t t = 0; t < sizeof(positive) / sizeof(positive[0]); t++) {
		craft_attached(msg, &h, positive[t], VGPU_RING_ENTRIES, good_window, 0);
		assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
				 VGPU_PROTOCOL);
		craft_attached(msg, &h, positive[t], 0, 0, 0);
		assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
				 VGPU_PROTOCOL);
	}
	/* An error with a window or entries. */
	craft_attached(msg, &h, (uint32_t)VGPU_BUSY, VGPU_RING_ENTRIES, 0, 0);
	assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
			 VGPU_PROTOCOL);
	craft_attached(msg, &h, (uint32_t)VGPU_BUSY, 0, good_window, 0);
	assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
			 VGPU_PROTOCOL);
	/* The reserved bytes 16..23, each. */
	for (int i = 0; i < 8; i++) {
		craft_attached(msg, &h, VGPU_OK, VGPU_RING_ENTRIES, good_window,
			       (uint64_t)0x01 << (8 * i));
		assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
				 VGPU_PROTOCOL);
	}
	/* A good one with a wrong checksum, or of the other type. */
	craft_attached(msg, &h, VGPU_OK, VGPU_RING_ENTRIES, good_window, 0);
	msg[40] ^= 0x10;
	assert_int_equal(vgpu_ring_parse_attached(msg, &h, msg + 32, &status, &window),
			 VGPU_PROTOCOL);
	vgpu_ring_encode_attach(64 * MIB, msg);
	assert_int_equal(parse_attached(msg, &status, &window), VGPU_PROTOCOL);
	assert_int_equal(status, 77);
	assert_true(window == 77);
}

static void test_header_types(void **state)
{
	struct vgpu_msg_header h, dec;
	uint8_t raw[VGPU_PROTO_HEADER_SIZE];

	(void)state;
	for (uint16_t type = 0; type < 12; type++) {
		for (uint16_t op = 0; op <= VGPU_OP_COUNT + 1; op++) {
			int expect;

			h = (struct vgpu_msg_header){ .type = type, .op = op, .request_id = 5,
						      .payload_len = 24 };

			if (type >= VGPU_MSG_ATTACH && type <= VGPU_MSG_IDENTITY)
				expect = op == 0 ? VGPU_OK : VGPU_PROTOCOL;
			else if (type == VGPU_MSG_REQUEST || type == VGPU_MSG_RESPONSE)
				expect = op >= 1 && op <= VGPU_OP_COUNT ? VGPU_OK : VGPU_PROTOCOL;
			else if (type == VGPU_MSG_CUDA || type == VGPU_MSG_CUDA_REPLY)
				expect = op >= 1 && op <= VGPU_CUDA_CALL_MAX ? VGPU_OK : VGPU_PROTOCOL;
			else
				expect = VGPU_PROTOCOL;
			vgpu_proto_encode_header(&h, raw);
			memset(&dec, 0xa5, sizeof(dec));
			assert_int_equal(vgpu_proto_decode_header(raw, deflim, &dec), expect);
			if (expect == VGPU_OK) {
				assert_int_equal(dec.type, type);
				assert_int_equal(dec.op, op);
				assert_int_equal(dec.payload_len, 24);
			}
		}
	}
	/* Attach types with a large op, and with flags. */
	h = (struct vgpu_msg_header){ .type = VGPU_MSG_ATTACH, .op = 0xffff };
	vgpu_proto_encode_header(&h, raw);
	assert_int_equal(vgpu_proto_decode_header(raw, deflim, &dec), VGPU_PROTOCOL);
	h = (struct vgpu_msg_header){ .type = VGPU_MSG_ATTACHED, .flags = 1 };
	vgpu_proto_encode_header(&h, raw);
	assert_int_equal(vgpu_proto_decode_header(raw, deflim, &dec), VGPU_PROTOCOL);
	h = (struct vgpu_msg_header){ .type = VGPU_MSG_IDENTITY + 1, .op = 0 };
	vgpu_proto_encode_header(&h, raw);
	assert_int_equal(vgpu_proto_decode_header(raw, deflim, &dec), VGPU_PROTOCOL);
}

/* Streams: an open's page and rings within the data area, a close by
 * index alone; everything else refused, the view untouched. */
static struct vgpu_ring_desc stream_open(uint64_t ctl, uint32_t ring)
{
	return (struct vgpu_ring_desc){ .request_id = 9, .op = VGPU_RING_OP_STREAM,
					.flags = VGPU_STREAM_OPEN, .params = { .m = 3, .n = ring },
					.in_off = { (uint32_t)ctl, 0, 0 } };
}

static int check_stream(const struct vgpu_ring_desc *d, uint64_t window,
			struct vgpu_stream_view *ret)
{
	struct vgpu_stream_view v, sentinel;
	int rc;

	memset(&v, 0xa5, sizeof(v));
	memcpy(&sentinel, &v, sizeof(v));
	rc = vgpu_ring_check_stream(d, window, &v);
	if (rc != VGPU_OK)
		assert_memory_equal(&v, &sentinel, sizeof(v));
	else
		*ret = v;
	return rc;
}

static void test_stream_check(void **state)
{
	const uint64_t win = D + (16u << 20);
	struct vgpu_stream_view v;
	struct vgpu_ring_desc d = stream_open(D, 1u << 20);

	(void)state;
	assert_int_equal(check_stream(&d, win, &v), VGPU_OK);
	assert_true(v.open);
	assert_int_equal(v.index, 3);
	assert_true(v.ctl_off == D && v.ring_bytes == (1u << 20));
	/* The last page and rings that fit, exactly. */
	d = stream_open(win - VGPU_STREAM_CTL - (8u << 20), 4u << 20);
	assert_int_equal(check_stream(&d, win, &v), VGPU_OK);
	d = stream_open(win - VGPU_STREAM_CTL - (8u << 20) + 4096, 4u << 20);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	/* Into the rings, unaligned, rings not a power of two or out of range. */
	d = stream_open(VGPU_RING_CQ_OFFSET, 4096);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	d = stream_open(D + 64, 4096);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	d = stream_open(D, 12288);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	d = stream_open(D, 2048);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	d = stream_open(D, 32u << 20);
	assert_int_equal(check_stream(&d, D + (128u << 20), &v), VGPU_INVALID_PARAM);
	d = stream_open(D, 0);
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	/* The index. */
	d = stream_open(D, 4096);
	d.params.m = VGPU_STREAMS_MAX;
	assert_int_equal(check_stream(&d, win, &v), VGPU_INVALID_PARAM);
	/* Fields that must be 0, and flags. */
	d = stream_open(D, 4096);
	d.params.k = 1;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d = stream_open(D, 4096);
	d.out_off = D;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d = stream_open(D, 4096);
	d.in_off[2] = D;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d = stream_open(D, 4096);
	d.params.alpha = 1.0f;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d = stream_open(D, 4096);
	d.flags = VGPU_STREAM_OPEN | VGPU_STREAM_CLOSE;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d.flags = 0;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	/* A close names the index alone. */
	d = (struct vgpu_ring_desc){ .op = VGPU_RING_OP_STREAM, .flags = VGPU_STREAM_CLOSE,
				     .params = { .m = 7 } };
	assert_int_equal(check_stream(&d, win, &v), VGPU_OK);
	assert_false(v.open);
	assert_int_equal(v.index, 7);
	d.params.n = 4096;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	d.params.n = 0;
	d.in_off[0] = D;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
	/* Not a stream's op at all. */
	d = stream_open(D, 4096);
	d.op = VGPU_OP_VECTOR_ADD;
	assert_int_equal(check_stream(&d, win, &v), VGPU_PROTOCOL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desc_layout),
		cmocka_unit_test(test_desc_round_trip),
		cmocka_unit_test(test_desc_reserved),
		cmocka_unit_test(test_cqe_layout),
		cmocka_unit_test(test_cqe_round_trip),
		cmocka_unit_test(test_cqe_refused),
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_flags_and_shape),
		cmocka_unit_test(test_check_offsets),
		cmocka_unit_test(test_check_window_end),
		cmocka_unit_test(test_check_unused_offsets),
		cmocka_unit_test(test_check_overlap),
		cmocka_unit_test(test_check_inputs_may_overlap),
		cmocka_unit_test(test_check_limits),
		cmocka_unit_test(test_attach_bytes),
		cmocka_unit_test(test_attach_round_trip),
		cmocka_unit_test(test_attach_corrupt),
		cmocka_unit_test(test_attach_refused),
		cmocka_unit_test(test_attached_bytes),
		cmocka_unit_test(test_attached_round_trip),
		cmocka_unit_test(test_attached_refused),
		cmocka_unit_test(test_header_types),
		cmocka_unit_test(test_stream_check),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
