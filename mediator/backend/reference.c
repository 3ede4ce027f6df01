/* SPDX-License-Identifier: MIT */
/*
 * reference.c - vgpu_reference_run(): the plain, single-threaded definition
 * of every op, which the tests hold both backends to.
 *
 * Plain loops on purpose: this is the oracle, so it is written to be
 * obviously right, not fast. Sums (reduce_sum, and each sgemm dot product)
 * are accumulated in double and rounded to float once at the end, so the
 * reference is at least as accurate as any float implementation it checks.
 * sgemm follows BLAS: with beta == 0 the old C is not read (NaN in it does
 * not propagate). @out may be the same buffer as the last input (y, C).
 *
 * Never: allocate, fail, or read past the sizes vgpu_proto_op_shape() gives.
 */
#include "backend.h"

void vgpu_reference_run(enum vgpu_op op, const struct vgpu_op_params *p, const float *const in[3],
			float *out)
{
	uint64_t n = p->n;

	switch (op) {
	case VGPU_OP_VECTOR_ADD:
		for (uint64_t i = 0; i < n; i++)
			out[i] = in[0][i] + in[1][i];
		break;
	case VGPU_OP_SAXPY:
		for (uint64_t i = 0; i < n; i++)
			out[i] = p->alpha * in[0][i] + in[1][i];
		break;
	case VGPU_OP_REDUCE_SUM: {
		double sum = 0.0;

		for (uint64_t i = 0; i < n; i++)
			sum += in[0][i];
		out[0] = (float)sum;
		break;
	}
	case VGPU_OP_SGEMM: {
		uint64_t m = p->m, k = p->k;

		for (uint64_t i = 0; i < m; i++) {
			for (uint64_t j = 0; j < n; j++) {
				double dot = 0.0;

				for (uint64_t l = 0; l < k; l++)
					dot += (double)in[0][i * k + l] * in[1][l * n + j];
				dot *= p->alpha;
				if (p->beta != 0.0f)
					dot += (double)p->beta * in[2][i * n + j];
				out[i * n + j] = (float)dot;
			}
		}
		break;
	}
	}
}
