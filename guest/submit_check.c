/* SPDX-License-Identifier: MIT */
/*
 * submit_check.c - vgpu-submit's inputs and their CPU reference.
 *
 * Inputs are uniform in [-1, 1) from a splitmix64 stream, so one seed gives
 * the same bytes on every machine. The reference is computed in double.
 * A result passes when every element is within 1e-4 relative of its scale:
 *   vector-add, saxpy  max(1, |expected|)
 *   sgemm              max(1, |alpha| * sum_l |A_il B_lj| + |beta C_ij|),
 *                      which grows with k as rounding error does
 *   reduce-sum         max(1, sum |x_i|), which grows with n
 * so that any summation order (and cuBLAS) passes and a wrong element does
 * not.
 *
 * Must never: call a result correct that contains NaN, or trust the
 * output buffer to be anything but what the mediator sent.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "submit.h"

#define REL_TOL 1e-4

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

int submit_work_init(struct submit_work *w, uint64_t seed)
{
	uint64_t state = seed;

	for (int i = 0; i < w->n_inputs; i++) {
		w->in[i] = malloc(w->in_count[i] * sizeof(float));
		if (!w->in[i])
			return VGPU_NO_MEMORY;
		for (uint64_t j = 0; j < w->in_count[i]; j++)
			w->in[i][j] = (float)(splitmix64(&state) >> 40) * 0x1p-23f - 1.0f;
	}
	return VGPU_OK;
}

static void reference_sgemm(struct submit_work *w, double *acc, double *mag)
{
	const struct vgpu_op_params *p = &w->params;
	const float *A = w->in[0], *B = w->in[1], *C = w->in[2];

	for (uint64_t i = 0; i < p->m; i++) {
		memset(acc, 0, p->n * sizeof(*acc));
		memset(mag, 0, p->n * sizeof(*mag));
		for (uint64_t l = 0; l < p->k; l++) {
			double a = A[i * p->k + l];
			const float *b = B + l * p->n;

			for (uint64_t j = 0; j < p->n; j++) {
				double t = a * b[j];

				acc[j] += t;
				mag[j] += fabs(t);
			}
		}
		for (uint64_t j = 0; j < p->n; j++) {
			double c = C[i * p->n + j];

			w->ref[i * p->n + j] = (float)(p->alpha * acc[j] + p->beta * c);
			w->tol[i * p->n + j] = (float)(REL_TOL * fmax(1.0, fabs(p->alpha) * mag[j] +
									  fabs(p->beta * c)));
		}
	}
}

int submit_work_reference(struct submit_work *w)
{
	const struct vgpu_op_params *p = &w->params;

	w->ref = malloc(w->out_count * sizeof(float));
	if (!w->ref)
		return VGPU_NO_MEMORY;
	switch (w->op) {
	case VGPU_OP_VECTOR_ADD:
		for (uint64_t i = 0; i < p->n; i++)
			w->ref[i] = (float)((double)w->in[0][i] + w->in[1][i]);
		break;
	case VGPU_OP_SAXPY:
		for (uint64_t i = 0; i < p->n; i++)
			w->ref[i] = (float)((double)p->alpha * w->in[0][i] + w->in[1][i]);
		break;
	case VGPU_OP_REDUCE_SUM: {
		double sum = 0, mag = 0;

		for (uint64_t i = 0; i < p->n; i++) {
			sum += w->in[0][i];
			mag += fabs(w->in[0][i]);
		}
		w->ref[0] = (float)sum;
		w->ref_tol = (float)(REL_TOL * fmax(1.0, mag));
		break;
	}
	case VGPU_OP_SGEMM: {
		double *acc = malloc(p->n * sizeof(double)), *mag = malloc(p->n * sizeof(double));

		w->tol = malloc(w->out_count * sizeof(float));
		if (!acc || !mag || !w->tol) {
			free(acc);
			free(mag);
			return VGPU_NO_MEMORY;
		}
		reference_sgemm(w, acc, mag);
		free(acc);
		free(mag);
		break;
	}
	default:
		return VGPU_INVALID_PARAM;
	}
	return VGPU_OK;
}

int64_t submit_work_check(const struct submit_work *w, const float *out)
{
	for (uint64_t i = 0; i < w->out_count; i++) {
		double want = w->ref[i], tol;

		if (w->tol)
			tol = w->tol[i];
		else if (w->op == VGPU_OP_REDUCE_SUM)
			tol = w->ref_tol;
		else
			tol = REL_TOL * fmax(1.0, fabs(want));
		/* Written so that NaN fails. */
		if (!(fabs((double)out[i] - want) <= tol))
			return (int64_t)i;
	}
	return -1;
}

void submit_work_free(struct submit_work *w)
{
	for (int i = 0; i < 3; i++)
		free(w->in[i]);
	free(w->ref);
	free(w->tol);
	memset(w, 0, sizeof(*w));
}
