/* SPDX-License-Identifier: MIT */
/*
 * test_reference.c - vgpu_reference_run(), the oracle of every backend
 * test, against results worked out by hand: each op on tiny inputs, sgemm's
 * row-major layout and alpha/beta (beta == 0 ignores NaN in C, BLAS-style),
 * output aliasing the last input, and reduce_sum's double accumulation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "backend.h"

static void vector_ops(void **state)
{
	const float a[3] = { 1.0f, -2.5f, 0x1p100f }, b[3] = { 2.0f, 0.5f, 0x1p100f };
	const float *in[3] = { a, b, NULL };
	struct vgpu_op_params p = { .n = 3 };
	float out[3];

	(void)state;
	vgpu_reference_run(VGPU_OP_VECTOR_ADD, &p, in, out);
	assert_true(out[0] == 3.0f && out[1] == -2.0f && out[2] == 0x1p101f);

	p.alpha = 2.0f;
	vgpu_reference_run(VGPU_OP_SAXPY, &p, in, out);
	assert_true(out[0] == 4.0f && out[1] == -4.5f && out[2] == 0x1.8p101f);

	/* y may be the output. */
	float y[2] = { 1.0f, 2.0f };
	const float x[2] = { 3.0f, 4.0f };
	const float *in2[3] = { x, y, NULL };

	p.n = 2;
	p.alpha = -1.0f;
	vgpu_reference_run(VGPU_OP_SAXPY, &p, in2, y);
	assert_true(y[0] == -2.0f && y[1] == -2.0f);
}

static void reduce_sum(void **state)
{
	/* In float, 1e8 + 1 + ... loses every 1; in double it does not. */
	static float x[1001];
	const float *in[3] = { x, NULL, NULL };
	struct vgpu_op_params p = { .n = 1001 };
	float out = 0.0f;

	(void)state;
	x[0] = 1e8f;
	for (int i = 1; i < 1001; i++)
		x[i] = 1.0f;
	vgpu_reference_run(VGPU_OP_REDUCE_SUM, &p, in, &out);
	assert_true(out == 100001000.0f);

	p.n = 1;
	x[0] = -7.25f;
	vgpu_reference_run(VGPU_OP_REDUCE_SUM, &p, in, &out);
	assert_true(out == -7.25f);
}

static void sgemm_row_major(void **state)
{
	/* A 2x3, B 3x2, row-major: A*B = [[58, 64], [139, 154]]. */
	const float a[6] = { 1, 2, 3, 4, 5, 6 };
	const float b[6] = { 7, 8, 9, 10, 11, 12 };
	float c[4] = { 1, 2, 3, 4 };
	const float *in[3] = { a, b, c };
	struct vgpu_op_params p = { .m = 2, .n = 2, .k = 3, .alpha = 1.0f, .beta = 0.0f };
	float out[4];

	(void)state;
	vgpu_reference_run(VGPU_OP_SGEMM, &p, in, out);
	assert_true(out[0] == 58 && out[1] == 64 && out[2] == 139 && out[3] == 154);

	p.alpha = 0.5f;
	p.beta = -2.0f;
	vgpu_reference_run(VGPU_OP_SGEMM, &p, in, out);
	assert_true(out[0] == 27 && out[1] == 28 && out[2] == 63.5f && out[3] == 69);

	/* beta == 0: C is not read, so NaN in it does not reach the output. */
	c[0] = NAN;
	p.alpha = 1.0f;
	p.beta = 0.0f;
	vgpu_reference_run(VGPU_OP_SGEMM, &p, in, out);
	assert_true(out[0] == 58);

	/* C may be the output. */
	c[0] = 1;
	p.beta = 1.0f;
	vgpu_reference_run(VGPU_OP_SGEMM, &p, in, c);
	assert_true(c[0] == 59 && c[1] == 66 && c[2] == 142 && c[3] == 158);
}

static void sgemm_non_square(void **state)
{
	/* m=1, k=2, n=3: [1 2] * [[1 2 3], [4 5 6]] = [9 12 15]. */
	const float a[2] = { 1, 2 };
	const float b[6] = { 1, 2, 3, 4, 5, 6 };
	const float c[3] = { 0, 0, 0 };
	const float *in[3] = { a, b, c };
	struct vgpu_op_params p = { .m = 1, .n = 3, .k = 2, .alpha = 1.0f };
	float out[3];

	(void)state;
	vgpu_reference_run(VGPU_OP_SGEMM, &p, in, out);
	assert_true(out[0] == 9 && out[1] == 12 && out[2] == 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vector_ops),
		cmocka_unit_test(reduce_sum),
		cmocka_unit_test(sgemm_row_major),
		cmocka_unit_test(sgemm_non_square),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
