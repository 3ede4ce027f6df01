/* SPDX-License-Identifier: MIT */
/*
 * test_client.c - libvgpu at the protocol level: what the client does with
 * each response a peer can send (out of order, unknown id, wrong op or
 * size, truncated, garbage, nothing at all), its bounds, and how it frames
 * requests. The peer is scripted (peer.h): these tests make no claim about
 * the client against the real mediator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_util.h"
#include "libvgpu.h"
#include "peer.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}





/* --- Responses in completion order, matched by id ------------------------ */

static void script_reverse(struct peer *p, int fd)
{
	struct peer_req r1, r2;

	if (peer_read_request(p, fd, &r1) < 0)
		return;
	if (peer_read_request(p, fd, &r2) == 0) {
		if (r1.h.request_id == r2.h.request_id)
			p->failure = "two requests with one id";
		peer_answer(fd, &r2);
		peer_answer(fd, &r1);
		peer_free_request(&r2);
	}
	peer_free_request(&r1);
	/* Then wait for the client to go away. */
	peer_read_request(p, fd, &r1);
}

static void test_out_of_order(void **state)
{
	float a[4] = { 1, 2, 3, 4 }, b[4] = { 10, 20, 30, 40 }, b2[4] = { 100, 200, 300, 400 };
	float out1[4] = { 0 }, out2[4] = { 0 };
	struct vgpu_timing t = { 0 };
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_reverse);
	c = tc_connect(p.uri);
	uint64_t id1 = tc_submit_add(c, a, b, out1, 4);
	uint64_t id2 = tc_submit_add(c, a, b2, out2, 4);
	/* Waiting for the first reads the second's response first and keeps it. */
	assert_int_equal(vgpu_wait(c, id1, 5000, &t), VGPU_OK);
	assert_true(t.queue_ns == 111 && t.exec_ns == 222);
	assert_true(out1[0] == 11 && out1[3] == 44);
	assert_true(out2[0] == 101 && out2[3] == 404);
	assert_int_equal(vgpu_wait(c, id2, 0, &t), VGPU_OK);
	/* Each id is answered once. */
	assert_int_equal(vgpu_wait(c, id1, 0, NULL), VGPU_NOT_FOUND);
	assert_int_equal(vgpu_wait(c, id2, 0, NULL), VGPU_NOT_FOUND);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Responses the client must refuse ------------------------------------ */

enum bad_kind {
	BAD_UNKNOWN_ID, BAD_OP, BAD_COUNT_SHORT, BAD_COUNT_LONG, BAD_CHECKSUM, BAD_GARBAGE,
	BAD_TRUNCATED_PREFIX, BAD_TRUNCATED_DATA, BAD_POSITIVE_STATUS, BAD_TYPE, BAD_TWICE,
	BAD_COUNT_ON_ERROR,
};

/* Which misbehaviour script_bad acts out; read by the peer thread only after
 * pthread_create(), which orders it. */
static enum bad_kind bad_kind;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void resign(uint8_t *m)
{
	put32(m + 28, vgpu_proto_checksum(m, m + 32, 24));
}

static void script_bad(struct peer *p, int fd)
{
	struct peer_req r;
	uint8_t m[VGPU_PROTO_RESPONSE_PREFIX + 64];
	float data[16] = { 0 };
	uint64_t id;

	if (peer_read_request(p, fd, &r) < 0)
		return;
	id = r.h.request_id;
	switch (bad_kind) {
	case BAD_UNKNOWN_ID:
		peer_respond(fd, id + 1000, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 4);
		break;
	case BAD_OP:
		peer_respond(fd, id, VGPU_OP_SAXPY, VGPU_OK, data, 4);
		break;
	case BAD_COUNT_SHORT:
		peer_respond(fd, id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 3);
		break;
	case BAD_COUNT_LONG:
		peer_respond(fd, id, VGPU_OP_VECTOR_ADD, VGPU_OK, data, 5);
		break;
	case BAD_CHECKSUM:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, 1, 2, 4, m);
		m[40] ^= 1; /* queue_ns, covered by the checksum */
		peer_send(fd, m, 56);
		peer_send(fd, data, 16);
		break;
	case BAD_GARBAGE:
		memset(m, 0x41, 32); /* one bad header, then nothing: must not hang */
		peer_send(fd, m, 32);
		break;
	case BAD_TRUNCATED_PREFIX:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, 1, 2, 4, m);
		peer_send(fd, m, 40);
		peer_free_request(&r);
		return; /* closed: end of stream */
	case BAD_TRUNCATED_DATA:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_OK, 1, 2, 4, m);
		peer_send(fd, m, 56);
		peer_send(fd, data, 10);
		peer_free_request(&r);
		return;
	case BAD_POSITIVE_STATUS:
		peer_respond(fd, id, VGPU_OP_VECTOR_ADD, 5, NULL, 0);
		break;
	case BAD_TYPE:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 1, 2, 0, m);
		m[6] = VGPU_MSG_REQUEST;
		resign(m);
		peer_send(fd, m, 56);
		break;
	case BAD_TWICE:
		peer_respond(fd, id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, NULL, 0);
		peer_respond(fd, id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, NULL, 0);
		break;
	case BAD_COUNT_ON_ERROR:
		vgpu_proto_encode_response(id, VGPU_OP_VECTOR_ADD, VGPU_BUSY, 1, 2, 0, m);
		put32(m + 24, 24 + 16);
		resign(m);
		peer_send(fd, m, 56);
		peer_send(fd, data, 16);
		break;
	}
	peer_free_request(&r);
	/* Keep the connection open until the client closes it: the client must
	 * notice by itself. */
	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void expect_bad(enum bad_kind kind, int want, const char *log_part)
{
	float a[4] = { 1, 2, 3, 4 }, out[4] = { 0 };
	struct log_seen seen = { 0 };
	struct vgpu_timing t = { 7, 7, 7 };
	struct peer p;
	vgpu_client *c;
	uint64_t id, id2;

	bad_kind = kind;
	peer_start(&p, script_bad);
	c = tc_connect(p.uri);
	vgpu_client_set_log(c, tc_log_cb, &seen);
	id = tc_submit_add(c, a, a, out, 4);
	if (kind == BAD_TWICE) {
		/* The first answer is fine and kept; the second names a request that
		 * is already answered. */
		id2 = tc_submit_add(c, a, a, out, 4);
		assert_int_equal(vgpu_wait(c, id2, 5000, &t), want);
		assert_int_equal(vgpu_wait(c, id, 0, &t), VGPU_BUSY);
	} else {
		assert_int_equal(vgpu_wait(c, id, 5000, &t), want);
	}
	assert_true(t.queue_ns == 7); /* not written on failure */
	assert_int_equal(seen.count, 1);
	if (!strstr(seen.last, log_part))
		fail_msg("log '%s' lacks '%s'", seen.last, log_part);
	/* The connection stays failed. */
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &(struct vgpu_op_params){ .n = 4 },
				     (const float *const[3]){ a, a, NULL }, out, &id),
			 want);
	vgpu_close(c);
	peer_finish(&p);
}

static void test_unknown_request_id(void **state)
{
	(void)state;
	expect_bad(BAD_UNKNOWN_ID, VGPU_PROTOCOL, "unknown request");
}

static void test_wrong_op(void **state)
{
	(void)state;
	expect_bad(BAD_OP, VGPU_PROTOCOL, "op");
}

static void test_wrong_out_count(void **state)
{
	(void)state;
	expect_bad(BAD_COUNT_SHORT, VGPU_PROTOCOL, "carries 3 floats, not 4");
	expect_bad(BAD_COUNT_LONG, VGPU_PROTOCOL, "carries 5 floats, not 4");
}

static void test_bad_checksum(void **state)
{
	(void)state;
	expect_bad(BAD_CHECKSUM, VGPU_PROTOCOL, "malformed response");
}

static void test_garbage_header(void **state)
{
	(void)state;
	expect_bad(BAD_GARBAGE, VGPU_PROTOCOL, "malformed response header");
	expect_bad(BAD_TYPE, VGPU_PROTOCOL, "malformed response header");
}

static void test_truncated_then_eof(void **state)
{
	(void)state;
	expect_bad(BAD_TRUNCATED_PREFIX, VGPU_IO_ERROR, "broke inside a response");
	expect_bad(BAD_TRUNCATED_DATA, VGPU_IO_ERROR, "broke inside a response");
}

static void test_bad_status_block(void **state)
{
	(void)state;
	expect_bad(BAD_POSITIVE_STATUS, VGPU_PROTOCOL, "malformed response");
	expect_bad(BAD_COUNT_ON_ERROR, VGPU_PROTOCOL, "malformed response");
}

static void test_answered_twice(void **state)
{
	(void)state;
	expect_bad(BAD_TWICE, VGPU_PROTOCOL, "unknown request");
}

/* --- End of stream with requests outstanding ----------------------------- */

static void script_read_two_close(struct peer *p, int fd)
{
	struct peer_req r;

	for (int i = 0; i < 2 && peer_read_request(p, fd, &r) == 0; i++)
		peer_free_request(&r);
}

static void test_eof_fails_all(void **state)
{
	float a[4] = { 1, 2, 3, 4 }, out1[4], out2[4];
	struct log_seen seen = { 0 };
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_read_two_close);
	c = tc_connect(p.uri);
	vgpu_client_set_log(c, tc_log_cb, &seen);
	uint64_t id1 = tc_submit_add(c, a, a, out1, 4);
	uint64_t id2 = tc_submit_add(c, a, a, out2, 4);
	assert_int_equal(vgpu_wait(c, id2, 5000, NULL), VGPU_IO_ERROR);
	assert_int_equal(vgpu_wait(c, id1, 0, NULL), VGPU_IO_ERROR);
	assert_int_equal(vgpu_wait(c, id1, 0, NULL), VGPU_NOT_FOUND);
	assert_int_equal(seen.count, 1);
	assert_non_null(strstr(seen.last, "closed"));
	uint64_t id3;
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &(struct vgpu_op_params){ .n = 4 },
				     (const float *const[3]){ a, a, NULL }, out1, &id3),
			 VGPU_IO_ERROR);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Error statuses leave the connection usable -------------------------- */

static void script_busy_then_ok(struct peer *p, int fd)
{
	struct peer_req r;

	if (peer_read_request(p, fd, &r) < 0)
		return;
	peer_respond(fd, r.h.request_id, r.v.op, VGPU_BUSY, NULL, 0);
	peer_free_request(&r);
	if (peer_read_request(p, fd, &r) < 0)
		return;
	if (r.v.params.vm_id != 0)
		p->failure = "the blocking op sent a vm_id";
	peer_answer(fd, &r);
	peer_free_request(&r);
	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void test_error_status(void **state)
{
	float a[3] = { 1, 2, 3 }, out[3] = { 0 };
	struct vgpu_timing t = { 0 };
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_busy_then_ok);
	c = tc_connect(p.uri);
	assert_int_equal(vgpu_vector_add(c, a, a, out, 3, &t), VGPU_BUSY);
	assert_int_equal(vgpu_vector_add(c, a, a, out, 3, &t), VGPU_OK);
	assert_true(out[0] == 2 && out[2] == 6);
	assert_true(t.queue_ns == 111 && t.exec_ns == 222 && t.total_ns > 0);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Timeouts ------------------------------------------------------------ */

static void script_delayed(struct peer *p, int fd)
{
	struct peer_req r;

	if (peer_read_request(p, fd, &r) < 0)
		return;
	peer_wait_go(p);
	peer_answer(fd, &r);
	peer_free_request(&r);
	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void test_timeout(void **state)
{
	float x[5] = { 1, 2, 3, 4, 5 }, sum = -1;
	struct vgpu_op_params prm = { .n = 5 };
	struct peer p;
	vgpu_client *c;
	uint64_t id, t0;

	(void)state;
	peer_start(&p, script_delayed);
	c = tc_connect(p.uri);
	assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &prm,
				     (const float *const[3]){ x, NULL, NULL }, &sum, &id),
			 VGPU_OK);
	assert_int_equal(vgpu_wait(c, id, 0, NULL), VGPU_TIMEOUT);
	t0 = now_ms();
	assert_int_equal(vgpu_wait(c, id, 60, NULL), VGPU_TIMEOUT);
	assert_true(now_ms() - t0 >= 60);
	assert_int_equal(vgpu_wait(c, id, -2, NULL), VGPU_INVALID_PARAM);
	peer_go(&p);
	assert_int_equal(vgpu_wait(c, id, -1, NULL), VGPU_OK);
	assert_true(sum == 15);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Short reads --------------------------------------------------------- */

static void script_dribble(struct peer *p, int fd)
{
	struct peer_req r;
	uint8_t m[VGPU_PROTO_RESPONSE_PREFIX + 3 * sizeof(float)];
	const float out[3] = { 5, 6, 7 };

	if (peer_read_request(p, fd, &r) < 0)
		return;
	vgpu_proto_encode_response(r.h.request_id, r.v.op, VGPU_OK, 3, 4, 3, m);
	memcpy(m + VGPU_PROTO_RESPONSE_PREFIX, out, sizeof(out));
	for (size_t i = 0; i < sizeof(m); i++) {
		peer_send(fd, m + i, 1);
		usleep(500);
	}
	peer_free_request(&r);
	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void test_byte_by_byte(void **state)
{
	float x[3] = { 1, 1, 1 }, y[3] = { 0, 0, 0 };
	struct vgpu_timing t;
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_dribble);
	c = tc_connect(p.uri);
	assert_int_equal(vgpu_saxpy(c, 2.0f, x, y, 3, &t), VGPU_OK);
	assert_true(y[0] == 5 && y[1] == 6 && y[2] == 7);
	assert_true(t.queue_ns == 3 && t.exec_ns == 4);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- The outstanding-request bound --------------------------------------- */

static void script_hold_all(struct peer *p, int fd)
{
	static struct peer_req reqs[VGPU_CLIENT_MAX_OUTSTANDING];
	struct peer_req r;
	int n = 0;

	for (; n < VGPU_CLIENT_MAX_OUTSTANDING; n++)
		if (peer_read_request(p, fd, &reqs[n]) < 0)
			break;
	peer_wait_go(p);
	while (n--) {
		peer_answer(fd, &reqs[n]);
		peer_free_request(&reqs[n]);
	}
	while (peer_read_request(p, fd, &r) == 0) {
		peer_answer(fd, &r);
		peer_free_request(&r);
	}
}

static void test_outstanding_limit(void **state)
{
	static float x[VGPU_CLIENT_MAX_OUTSTANDING], sums[VGPU_CLIENT_MAX_OUTSTANDING];
	static uint64_t ids[VGPU_CLIENT_MAX_OUTSTANDING];
	struct vgpu_op_params prm = { .n = 1 };
	struct peer p;
	vgpu_client *c;
	uint64_t extra;
	float s;

	(void)state;
	peer_start(&p, script_hold_all);
	c = tc_connect(p.uri);
	for (int i = 0; i < VGPU_CLIENT_MAX_OUTSTANDING; i++) {
		x[i] = (float)i;
		assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &prm,
					     (const float *const[3]){ &x[i], NULL, NULL }, &sums[i],
					     &ids[i]),
				 VGPU_OK);
	}
	assert_int_equal(vgpu_submit(c, VGPU_OP_REDUCE_SUM, &prm,
				     (const float *const[3]){ &x[0], NULL, NULL }, &s, &extra),
			 VGPU_LIMIT);
	peer_go(&p);
	for (int i = 0; i < VGPU_CLIENT_MAX_OUTSTANDING; i += 2)
		assert_int_equal(vgpu_wait(c, ids[i], 5000, NULL), VGPU_OK);
	/* Freed slots take new requests while others are still unread. */
	assert_int_equal(vgpu_reduce_sum(c, &x[7], 1, &s, NULL), VGPU_OK);
	assert_true(s == 7);
	for (int i = 1; i < VGPU_CLIENT_MAX_OUTSTANDING; i += 2)
		assert_int_equal(vgpu_wait(c, ids[i], 5000, NULL), VGPU_OK);
	for (int i = 0; i < VGPU_CLIENT_MAX_OUTSTANDING; i++)
		assert_true(sums[i] == (float)i);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Writing while the peer writes --------------------------------------- */

#define BIG (1u << 20) /* floats: far more than a socket buffer holds */

/* Answers the first request completely before reading anything more: a
 * client that does not read while it writes would deadlock here. */
static void script_answer_first(struct peer *p, int fd)
{
	struct peer_req r;

	while (peer_read_request(p, fd, &r) == 0) {
		peer_answer(fd, &r);
		peer_free_request(&r);
	}
}

static void test_reads_while_writing(void **state)
{
	float *a = malloc(BIG * sizeof(float)), *b = malloc(BIG * sizeof(float));
	float *out1 = malloc(BIG * sizeof(float)), *out2 = malloc(BIG * sizeof(float));
	struct peer p;
	vgpu_client *c;

	(void)state;
	assert_true(a && b && out1 && out2);
	for (uint32_t i = 0; i < BIG; i++) {
		a[i] = (float)(i % 1000);
		b[i] = 0.5f;
	}
	peer_start(&p, script_answer_first);
	c = tc_connect(p.uri);
	uint64_t id1 = tc_submit_add(c, a, b, out1, BIG);
	uint64_t id2 = tc_submit_add(c, b, b, out2, BIG);
	assert_int_equal(vgpu_wait(c, id2, 10000, NULL), VGPU_OK);
	assert_int_equal(vgpu_wait(c, id1, 10000, NULL), VGPU_OK);
	for (uint32_t i = 0; i < BIG; i += 4099)
		assert_true(out1[i] == a[i] + 0.5f && out2[i] == 1.0f);
	assert_true(out1[BIG - 1] == a[BIG - 1] + 0.5f);
	vgpu_close(c);
	peer_finish(&p);
	free(a);
	free(b);
	free(out1);
	free(out2);
}

/* --- How requests are framed --------------------------------------------- */

static void script_check_sgemm(struct peer *p, int fd)
{
	struct peer_req r;

	if (peer_read_request(p, fd, &r) < 0)
		return;
	const struct vgpu_op_params *q = &r.v.params;
	if (r.v.op != VGPU_OP_SGEMM || q->m != 2 || q->n != 3 || q->k != 1 || q->alpha != 2.0f ||
	    q->beta != 0.5f || q->vm_id != 0 || r.v.in[2][5] != 60.0f)
		p->failure = "sgemm request fields differ";
	peer_answer(fd, &r);
	peer_free_request(&r);
	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void test_sgemm_framing(void **state)
{
	const float A[2] = { 1, 2 }, B[3] = { 1, 2, 3 };
	float C[6] = { 10, 20, 30, 40, 50, 60 };
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_check_sgemm);
	c = tc_connect(p.uri);
	assert_int_equal(vgpu_sgemm(c, 2, 3, 1, 2.0f, A, B, 0.5f, C, NULL), VGPU_OK);
	/* C = 2 * A B + 0.5 * C, in place. */
	assert_true(C[0] == 7 && C[2] == 21 && C[3] == 24 && C[5] == 42);
	vgpu_close(c);
	peer_finish(&p);
}

/* --- Arguments ----------------------------------------------------------- */

static void script_drain(struct peer *p, int fd)
{
	struct peer_req r;

	while (peer_read_request(p, fd, &r) == 0)
		peer_free_request(&r);
}

static void test_bad_arguments(void **state)
{
	float x[4] = { 0 }, out[4], s = 3;
	const float *in[3] = { x, x, NULL };
	struct vgpu_op_params prm = { .n = 4 };
	struct peer p;
	vgpu_client *c;
	uint64_t id = 99;

	(void)state;
	peer_start(&p, script_drain);
	c = tc_connect(p.uri);
	assert_int_equal(vgpu_submit(NULL, VGPU_OP_VECTOR_ADD, &prm, in, out, &id),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, NULL, in, out, &id),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &prm, NULL, out, &id),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &prm, in, NULL, &id),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &prm, in, out, NULL),
			 VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, VGPU_OP_SGEMM, &prm, in, out, &id), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, 0, &prm, in, out, &id), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_submit(c, 5, &prm, in, out, &id), VGPU_INVALID_PARAM);
	prm.alpha = 1; /* unused by vector_add */
	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &prm, in, out, &id),
			 VGPU_INVALID_PARAM);
	assert_int_equal(id, 99);
	assert_int_equal(vgpu_vector_add(c, x, NULL, out, 4, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_vector_add(c, x, x, out, 0, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_reduce_sum(c, x, 4, NULL, NULL), VGPU_INVALID_PARAM);
	/* Past the protocol's ceiling, and past 32 bits. */
	assert_int_equal(vgpu_reduce_sum(c, x, VGPU_PROTO_MAX_PAYLOAD / 4, &s, NULL), VGPU_LIMIT);
	assert_int_equal(vgpu_vector_add(c, x, x, out, (size_t)1 << 32, NULL), VGPU_LIMIT);
	assert_int_equal(vgpu_sgemm(c, 65536, 65536, 1, 1, x, x, 0, out, NULL), VGPU_LIMIT);
	assert_true(s == 3);
	assert_int_equal(vgpu_wait(NULL, 1, 0, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_wait(c, 0, 0, NULL), VGPU_NOT_FOUND);
	assert_int_equal(vgpu_wait(c, 12345, 0, NULL), VGPU_NOT_FOUND);
	vgpu_client_set_log(NULL, NULL, NULL);
	vgpu_close(c);
	vgpu_close(NULL);
	peer_finish(&p);
}

/* Closing with requests outstanding abandons them. */
static void test_close_outstanding(void **state)
{
	float a[2] = { 1, 2 }, out[2];
	struct peer p;
	vgpu_client *c;

	(void)state;
	peer_start(&p, script_drain);
	c = tc_connect(p.uri);
	tc_submit_add(c, a, a, out, 2);
	tc_submit_add(c, a, a, out, 2);
	vgpu_close(c);
	peer_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_unknown_request_id),
		cmocka_unit_test(test_wrong_op),
		cmocka_unit_test(test_wrong_out_count),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_garbage_header),
		cmocka_unit_test(test_truncated_then_eof),
		cmocka_unit_test(test_bad_status_block),
		cmocka_unit_test(test_answered_twice),
		cmocka_unit_test(test_eof_fails_all),
		cmocka_unit_test(test_error_status),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_outstanding_limit),
		cmocka_unit_test(test_reads_while_writing),
		cmocka_unit_test(test_sgemm_framing),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_close_outstanding),
	};

	return cmocka_run_group_tests_name("guest-client", tests, NULL, NULL);
}
