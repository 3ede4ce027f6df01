/* SPDX-License-Identifier: MIT */
/*
 * shm_api.c - libvgpu over a shared-memory window, against a real mediator
 * (test-shm.sh starts it and passes the socket as VGPU_TEST_SOCKET): arrays
 * in the window are used in place, others are staged, and every misuse of
 * the window gets its error without harming the connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "libvgpu.h"

static char uri[256];

/* A client with a window of @mib MiB. */
static vgpu_client *open_client(const char *mib)
{
	vgpu_client *c = NULL;

	setenv("VGPU_SHM_MIB", mib, 1);
	assert_int_equal(vgpu_connect(uri, &c), VGPU_OK);
	return c;
}

static float *buf(vgpu_client *c, size_t floats)
{
	void *p = NULL;

	assert_int_equal(vgpu_buffer_alloc(c, floats * sizeof(float), &p), VGPU_OK);
	assert_int_equal((uintptr_t)p % 64, 0);
	return p;
}

static void fill(float *p, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++)
		p[i] = scale * (float)((i * 7919) % 1000) / 1000.0f;
}

/* Every op with its arrays in the window, against the reference. */
static void test_ops_in_window(void **state)
{
	vgpu_client *c = open_client("1");
	const size_t n = 50000, d = 37;
	float *a = buf(c, n), *b = buf(c, n), *out = buf(c, n);
	float *ref = malloc(n * sizeof(float));
	struct vgpu_op_params p = { .n = (uint32_t)n };

	(void)state;
	assert_non_null(ref);
	fill(a, n, 1.0f);
	fill(b, n, 2.0f);
	assert_int_equal(vgpu_vector_add(c, a, b, out, n, NULL), VGPU_OK);
	vgpu_reference_run(VGPU_OP_VECTOR_ADD, &p, (const float *const[3]){ a, b, NULL }, ref);
	assert_memory_equal(out, ref, n * sizeof(float));

	/* saxpy updates y in place, in the window. */
	memcpy(out, b, n * sizeof(float));
	p.alpha = 1.5f;
	vgpu_reference_run(VGPU_OP_SAXPY, &p, (const float *const[3]){ a, b, NULL }, ref);
	assert_int_equal(vgpu_saxpy(c, 1.5f, a, out, n, NULL), VGPU_OK);
	for (size_t i = 0; i < n; i++)
		assert_float_equal(out[i], ref[i], 1e-5);

	/* sgemm works C in place. */
	float *A = buf(c, d * d), *B = buf(c, d * d), *C = buf(c, d * d);
	struct vgpu_op_params g = { .m = d, .n = d, .k = d, .alpha = 0.5f, .beta = 2.0f };

	fill(A, d * d, 1.0f);
	fill(B, d * d, 3.0f);
	fill(C, d * d, 0.25f);
	vgpu_reference_run(VGPU_OP_SGEMM, &g, (const float *const[3]){ A, B, C }, ref);
	assert_int_equal(vgpu_sgemm(c, d, d, d, 0.5f, A, B, 2.0f, C, NULL), VGPU_OK);
	for (size_t i = 0; i < d * d; i++)
		assert_float_equal(C[i], ref[i], 1e-3);

	/* reduce_sum's one-float output is a stack variable: staged. */
	struct vgpu_op_params r = { .n = (uint32_t)n };
	float sum = 0;

	assert_int_equal(vgpu_reduce_sum(c, a, n, &sum, NULL), VGPU_OK);
	vgpu_reference_run(VGPU_OP_REDUCE_SUM, &r, (const float *const[3]){ a, NULL, NULL }, ref);
	assert_float_equal(sum, ref[0], 1e-2);

	float *bufs[] = { a, b, out, A, B, C };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		assert_int_equal(vgpu_buffer_free(c, bufs[i]), VGPU_OK);
	free(ref);
	vgpu_close(c);
}

/* Ordinary memory is staged through the window, many requests at once. */
static void test_staged_pipelined(void **state)
{
	enum { N = 4096, DEPTH = 64 };
	vgpu_client *c = open_client("8");
	float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
	float *out = malloc((size_t)DEPTH * N * sizeof(float));
	uint64_t ids[DEPTH];
	struct vgpu_op_params p = { .n = N };

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(out);
	fill(a, N, 1.0f);
	fill(b, N, 2.0f);
	memset(out, 0xff, (size_t)DEPTH * N * sizeof(float));
	for (int i = 0; i < DEPTH; i++)
		assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &p, (const float *const[3]){ a, b, NULL },
					     out + (size_t)i * N, &ids[i]),
				 VGPU_OK);
	for (int i = DEPTH - 1; i >= 0; i--)
		assert_int_equal(vgpu_wait(c, ids[i], 60000, NULL), VGPU_OK);
	for (int i = 0; i < DEPTH; i++)
		for (int j = 0; j < N; j++)
			assert_true(out[(size_t)i * N + j] == a[j] + b[j]);
	free(a);
	free(b);
	free(out);
	vgpu_close(c);
}

/* Misuse of the window: each gets its error, and the client goes on. */
static void test_window_misuse(void **state)
{
	vgpu_client *c = open_client("1");
	float *a = buf(c, 1024), *b = buf(c, 1024), *out = buf(c, 1024);
	void *big = NULL;

	(void)state;
	fill(a, 1024, 1.0f);
	fill(b, 1024, 1.0f);
	/* Inside the window but not a block's start / past a block's end. */
	assert_int_equal(vgpu_vector_add(c, a + 1, b, out, 1023, NULL), VGPU_OK);
	assert_int_equal(vgpu_vector_add(c, a, b, out + 1, 1024, NULL), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_buffer_free(c, a + 1), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_buffer_free(c, NULL), VGPU_OK);
	/* Larger than the whole window; then nearly all of it, leaving no
	 * room to stage ordinary memory. */
	assert_int_equal(vgpu_buffer_alloc(c, (size_t)2 << 30, &big), VGPU_LIMIT);
	size_t room = ((size_t)1 << 20) - 3 * 4096 - 64 * 4;
	while (vgpu_buffer_alloc(c, room, &big) != VGPU_OK)
		room -= 4096;
	float *heap = malloc(65536 * sizeof(float));
	assert_non_null(heap);
	fill(heap, 65536, 1.0f);
	assert_int_equal(vgpu_vector_add(c, heap, heap, heap, 65536, NULL), VGPU_NO_MEMORY);
	/* Arrays already in the window need no room: they are used in place. */
	assert_int_equal(vgpu_vector_add(c, a, b, out, 1024, NULL), VGPU_OK);
	assert_int_equal(vgpu_buffer_free(c, big), VGPU_OK);
	/* Room again: the same call now works (staged), output aliasing input. */
	float *expect = malloc(65536 * sizeof(float));
	assert_non_null(expect);
	for (int i = 0; i < 65536; i++)
		expect[i] = heap[i] + heap[i];
	assert_int_equal(vgpu_vector_add(c, heap, heap, heap, 65536, NULL), VGPU_OK);
	assert_memory_equal(heap, expect, 65536 * sizeof(float));
	free(heap);
	free(expect);
	vgpu_close(c);
}

int main(void)
{
	const char *sock = getenv("VGPU_TEST_SOCKET");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops_in_window),
		cmocka_unit_test(test_staged_pipelined),
		cmocka_unit_test(test_window_misuse),
	};

	if (!sock) {
		fprintf(stderr, "VGPU_TEST_SOCKET is not set (run by test-shm.sh)\n");
		return 2;
	}
	snprintf(uri, sizeof(uri), "shm:%s", sock);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
