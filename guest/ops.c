/* SPDX-License-Identifier: MIT */
/*
 * ops.c - the blocking ops of libvgpu: each is vgpu_submit() then
 * vgpu_wait() without a deadline.
 *
 * Must never: narrow a size silently (a size_t past 32 bits is VGPU_LIMIT,
 * not a smaller request), or write *ret_sum unless the op succeeded.
 */
#include <stdint.h>

#include "libvgpu.h"

static int run(vgpu_client *c, int op, const struct vgpu_op_params *p, const float *in0,
	       const float *in1, const float *in2, float *out, struct vgpu_timing *ret_timing)
{
	const float *const in[3] = { in0, in1, in2 };
	uint64_t id;
	int rc = vgpu_submit(c, op, p, in, out, &id);

	return rc == VGPU_OK ? vgpu_wait(c, id, -1, ret_timing) : rc;
}

int vgpu_vector_add(vgpu_client *c, const float *a, const float *b, float *out, size_t n,
		    struct vgpu_timing *ret_timing)
{
	struct vgpu_op_params p = { .n = (uint32_t)n };

	if (n > UINT32_MAX)
		return VGPU_LIMIT;
	return run(c, VGPU_OP_VECTOR_ADD, &p, a, b, NULL, out, ret_timing);
}

int vgpu_saxpy(vgpu_client *c, float alpha, const float *x, float *y, size_t n,
	       struct vgpu_timing *ret_timing)
{
	struct vgpu_op_params p = { .n = (uint32_t)n, .alpha = alpha };

	if (n > UINT32_MAX)
		return VGPU_LIMIT;
	return run(c, VGPU_OP_SAXPY, &p, x, y, NULL, y, ret_timing);
}

int vgpu_sgemm(vgpu_client *c, size_t m, size_t n, size_t k, float alpha, const float *A,
	       const float *B, float beta, float *C, struct vgpu_timing *ret_timing)
{
	struct vgpu_op_params p = {
		.m = (uint32_t)m, .n = (uint32_t)n, .k = (uint32_t)k, .alpha = alpha, .beta = beta,
	};

	if (m > UINT32_MAX || n > UINT32_MAX || k > UINT32_MAX)
		return VGPU_LIMIT;
	return run(c, VGPU_OP_SGEMM, &p, A, B, C, C, ret_timing);
}

int vgpu_reduce_sum(vgpu_client *c, const float *x, size_t n, float *ret_sum,
		    struct vgpu_timing *ret_timing)
{
	struct vgpu_op_params p = { .n = (uint32_t)n };
	float sum = 0;
	int rc;

	if (!ret_sum)
		return VGPU_INVALID_PARAM;
	if (n > UINT32_MAX)
		return VGPU_LIMIT;
	rc = run(c, VGPU_OP_REDUCE_SUM, &p, x, NULL, NULL, &sum, ret_timing);
	if (rc == VGPU_OK)
		*ret_sum = sum;
	return rc;
}
