/* SPDX-License-Identifier: MIT */
/*
 * check.c - test cases and float-tolerance checks shared by the backend
 * tests and cuda-check (see check.h).
 *
 * Never: print, or call a backend.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void *m_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size ? size : 1);
}

static void m_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)size;
	free(ptr);
}

const struct bt_alloc bt_malloc = { m_alloc, m_free, NULL };

void bt_fill(float *x, uint64_t count, uint32_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (uint64_t i = 0; i < count; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((int32_t)(s >> 32)) / 2147483648.0f;
	}
}

bool bt_case_new(struct bt_case *tc, enum vgpu_op op, uint32_t m, uint32_t n, uint32_t k,
		 float alpha, float beta, uint32_t seed, const struct bt_alloc *a)
{
	memset(tc, 0, sizeof(*tc));
	tc->op = op;
	tc->a = *a;
	tc->p.n = n;
	switch (op) {
	case VGPU_OP_VECTOR_ADD:
	case VGPU_OP_SAXPY:
		tc->n_in = 2;
		tc->in_count[0] = tc->in_count[1] = tc->out_count = n;
		tc->p.alpha = op == VGPU_OP_SAXPY ? alpha : 0.0f;
		break;
	case VGPU_OP_REDUCE_SUM:
		tc->n_in = 1;
		tc->in_count[0] = n;
		tc->out_count = 1;
		break;
	case VGPU_OP_SGEMM:
		tc->n_in = 3;
		tc->p.m = m;
		tc->p.k = k;
		tc->p.alpha = alpha;
		tc->p.beta = beta;
		tc->in_count[0] = (uint64_t)m * k;
		tc->in_count[1] = (uint64_t)k * n;
		tc->in_count[2] = tc->out_count = (uint64_t)m * n;
		break;
	}
	for (int i = 0; i < tc->n_in; i++) {
		tc->in[i] = a->alloc(a->ctx, tc->in_count[i] * sizeof(float));
		if (!tc->in[i]) {
			bt_case_free(tc);
			return false;
		}
		bt_fill(tc->in[i], tc->in_count[i], seed * 3 + (uint32_t)i);
	}
	tc->out = a->alloc(a->ctx, tc->out_count * sizeof(float));
	if (!tc->out) {
		bt_case_free(tc);
		return false;
	}
	memset(tc->out, 0, tc->out_count * sizeof(float));
	return true;
}

void bt_case_free(struct bt_case *tc)
{
	for (int i = 0; i < 3; i++) {
		if (tc->in[i])
			tc->a.free(tc->a.ctx, tc->in[i], tc->in_count[i] * sizeof(float));
		tc->in[i] = NULL;
	}
	if (tc->out)
		tc->a.free(tc->a.ctx, tc->out, tc->out_count * sizeof(float));
	tc->out = NULL;
}

void bt_case_work(struct bt_case *tc, struct vgpu_work *w, int priority,
		  void (*done)(struct vgpu_work *, int, uint64_t), void *user)
{
	memset(w, 0, sizeof(*w));
	w->op = tc->op;
	w->params = tc->p;
	for (int i = 0; i < tc->n_in; i++) {
		w->in[i] = tc->in[i];
		w->in_count[i] = tc->in_count[i];
	}
	w->out = tc->out;
	w->out_count = tc->out_count;
	w->priority = priority;
	w->done = done;
	w->user = user;
}

/* The exact value of element @i and the magnitude of its terms. */
static void exact(const struct bt_case *tc, uint64_t i, double *ret_value, double *ret_scale)
{
	const struct vgpu_op_params *p = &tc->p;
	double v = 0.0, s = 0.0;

	switch (tc->op) {
	case VGPU_OP_VECTOR_ADD:
		v = (double)tc->in[0][i] + tc->in[1][i];
		s = fabs(tc->in[0][i]) + fabs(tc->in[1][i]);
		break;
	case VGPU_OP_SAXPY:
		v = (double)p->alpha * tc->in[0][i] + tc->in[1][i];
		s = fabs((double)p->alpha * tc->in[0][i]) + fabs(tc->in[1][i]);
		break;
	case VGPU_OP_REDUCE_SUM:
		for (uint64_t j = 0; j < p->n; j++) {
			v += tc->in[0][j];
			s += fabs(tc->in[0][j]);
		}
		break;
	case VGPU_OP_SGEMM: {
		uint64_t r = i / p->n, c = i % p->n;

		for (uint64_t l = 0; l < p->k; l++) {
			double t = (double)tc->in[0][r * p->k + l] * tc->in[1][l * p->n + c];

			v += t;
			s += fabs(t);
		}
		v *= p->alpha;
		s *= fabs(p->alpha);
		if (p->beta != 0.0f) {
			v += (double)p->beta * tc->in[2][i];
			s += fabs((double)p->beta * tc->in[2][i]);
		}
		break;
	}
	}
	*ret_value = v;
	*ret_scale = s;
}

double bt_case_check(const struct bt_case *tc, const float *got, const float *ref, double rel,
		     uint64_t max_checks)
{
	uint64_t count = tc->out_count, checks = count < max_checks ? count : max_checks;
	double worst = 0.0;

	if (checks == 0)
		checks = 1;
	for (uint64_t c = 0; c < checks; c++) {
		/* Spread evenly, last one exactly at the end. */
		uint64_t i = checks == 1 ? 0 : (uint64_t)((double)c * (double)(count - 1) / (double)(checks - 1));
		double value, scale, err;

		exact(tc, i, &value, &scale);
		if (ref)
			value = ref[i];
		err = fabs((double)got[i] - value) / (rel * scale + 1e-30);
		if (isnan(err) || isnan(got[i]))
			return INFINITY;
		if (err > worst)
			worst = err;
	}
	return worst;
}
