/* SPDX-License-Identifier: MIT */
/*
 * cpu_ops.c - the CPU backend's kernels (see cpu_ops.h).
 *
 * Vector ops and reduce_sum are cut into ranges of at least 1 Mi elements;
 * sgemm into ranges of rows of C, computed in tiles of B so that a tile
 * stays in cache while every row of the range uses it. sgemm accumulates in
 * float (C starts as beta * C, or 0 when beta == 0, BLAS-style), reduce_sum
 * in double; the tests hold both to vgpu_reference_run() within float
 * tolerance. The output may be the last input's buffer (y, C).
 *
 * Never: allocate, or touch memory outside the work's buffers.
 */
#include <stddef.h>

#include "cpu_ops.h"

#define PART_ELEMS ((uint64_t)1 << 20)
#define PART_MACS ((uint64_t)1 << 24) /* sgemm multiply-adds per part, at least */
#define TILE_J 512
#define TILE_L 128

static uint32_t clamp_parts(uint64_t want, uint64_t most)
{
	if (want > most)
		want = most;
	if (want > VGPU_CPU_MAX_PARTS)
		want = VGPU_CPU_MAX_PARTS;
	return want ? (uint32_t)want : 1;
}

uint32_t vgpu_cpu_op_parts(const struct vgpu_work *w)
{
	const struct vgpu_op_params *p = &w->params;

	if (w->op == VGPU_OP_SGEMM) {
		uint64_t macs = (uint64_t)p->m * p->n * p->k;

		return clamp_parts((macs + PART_MACS - 1) / PART_MACS, p->m);
	}
	return clamp_parts((p->n + PART_ELEMS - 1) / PART_ELEMS, p->n);
}

/* o[j] += a * b[j]: restrict lets the compiler vectorize it. */
static void axpy_row(float *restrict o, const float *restrict b, float a, size_t len)
{
	for (size_t j = 0; j < len; j++)
		o[j] += a * b[j];
}

static void sgemm_rows(const struct vgpu_work *w, uint64_t i0, uint64_t i1)
{
	const struct vgpu_op_params *p = &w->params;
	const float *a = w->in[0], *b = w->in[1], *c = w->in[2];
	uint64_t n = p->n, k = p->k;
	float *out = w->out;

	for (uint64_t i = i0; i < i1; i++) {
		for (uint64_t j = 0; j < n; j++)
			out[i * n + j] = p->beta == 0.0f ? 0.0f : p->beta * c[i * n + j];
	}
	for (uint64_t j0 = 0; j0 < n; j0 += TILE_J) {
		size_t len = (size_t)(n - j0 < TILE_J ? n - j0 : TILE_J);

		for (uint64_t l0 = 0; l0 < k; l0 += TILE_L) {
			uint64_t l1 = k - l0 < TILE_L ? k : l0 + TILE_L;

			for (uint64_t i = i0; i < i1; i++) {
				for (uint64_t l = l0; l < l1; l++)
					axpy_row(out + i * n + j0, b + l * n + j0,
						 p->alpha * a[i * k + l], len);
			}
		}
	}
}

double vgpu_cpu_op_run_part(const struct vgpu_work *w, uint32_t part, uint32_t parts)
{
	const struct vgpu_op_params *p = &w->params;
	uint64_t total = w->op == VGPU_OP_SGEMM ? p->m : p->n;
	uint64_t i0 = total * part / parts, i1 = total * (part + 1) / parts;
	const float *x = w->in[0], *y = w->in[1];
	float *out = w->out;
	double sum = 0.0;

	switch (w->op) {
	case VGPU_OP_VECTOR_ADD:
		for (uint64_t i = i0; i < i1; i++)
			out[i] = x[i] + y[i];
		break;
	case VGPU_OP_SAXPY:
		for (uint64_t i = i0; i < i1; i++)
			out[i] = p->alpha * x[i] + y[i];
		break;
	case VGPU_OP_REDUCE_SUM:
		for (uint64_t i = i0; i < i1; i++)
			sum += x[i];
		break;
	case VGPU_OP_SGEMM:
		sgemm_rows(w, i0, i1);
		break;
	}
	return sum;
}
