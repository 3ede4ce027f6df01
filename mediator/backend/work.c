/* SPDX-License-Identifier: MIT */
/*
 * work.c - the checks every backend makes on a work before accepting it,
 * and its size in bytes.
 *
 * Never: trust a size in a work without recomputing it from the params.
 */

#include "backend_internal.h"

int vgpu_backend_op_inputs(enum vgpu_op op)
{
	switch (op) {
	case VGPU_OP_VECTOR_ADD:
	case VGPU_OP_SAXPY:
		return 2;
	case VGPU_OP_SGEMM:
		return 3;
	case VGPU_OP_REDUCE_SUM:
		return 1;
	}
	return 0;
}

uint64_t vgpu_work_bytes(const struct vgpu_work *w)
{
	return (w->in_count[0] + w->in_count[1] + w->in_count[2] + w->out_count) * sizeof(float);
}

int vgpu_backend_work_check(const struct vgpu_work *w)
{
	const struct vgpu_op_params *p;
	uint64_t in[3] = { 0, 0, 0 }, out;
	int n_in;

	if (!w || !w->done || !w->out || w->priority < 0 || w->priority >= VGPU_PRIORITY_LEVELS)
		return VGPU_INVALID_PARAM;
	p = &w->params;
	n_in = vgpu_backend_op_inputs(w->op);
	if (n_in == 0 || p->n == 0)
		return VGPU_INVALID_PARAM;
	switch (w->op) {
	case VGPU_OP_SGEMM:
		if (p->m == 0 || p->k == 0)
			return VGPU_INVALID_PARAM;
		in[0] = (uint64_t)p->m * p->k;
		in[1] = (uint64_t)p->k * p->n;
		in[2] = out = (uint64_t)p->m * p->n;
		break;
	case VGPU_OP_REDUCE_SUM:
		in[0] = p->n;
		out = 1;
		break;
	default:
		in[0] = in[1] = out = p->n;
		break;
	}
	for (int i = 0; i < 3; i++) {
		if (i < n_in && !w->in[i])
			return VGPU_INVALID_PARAM;
		if (w->in_count[i] != in[i] && i < n_in)
			return VGPU_INVALID_PARAM;
	}
	return w->out_count == out ? VGPU_OK : VGPU_INVALID_PARAM;
}
