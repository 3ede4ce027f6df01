/* SPDX-License-Identifier: MIT */
/*
 * cost.c - estimates of a work's GPU time (see cost.h).
 *
 * The starting values are about what the H200 measured
 * (docs/performance.md): a large vector_add moves 12 bytes per element at
 * about 3 TB/s (4 ps per element), sgemm runs at about 40 TFLOP/s (0.05 ps
 * per m x n x k). They only set the first decisions; every finished work
 * moves them. Kept in femtoseconds per unit, so that sgemm's fraction of a
 * picosecond is not rounded away.
 */
#include "cost.h"

#define MEASURED_MAX_NS 1000000000000ull /* 1000 s: anything longer is a bad clock */

static const uint64_t start_fs[VGPU_OP_COUNT + 1] = {
	[VGPU_OP_VECTOR_ADD] = 4000000,
	[VGPU_OP_SAXPY] = 4000000,
	[VGPU_OP_SGEMM] = 50000,
	[VGPU_OP_REDUCE_SUM] = 1500000,
};

uint64_t vgpu_cost_units(int op, const struct vgpu_op_params *p)
{
	uint64_t u = p->n;

	if (op == VGPU_OP_SGEMM &&
	    (__builtin_mul_overflow((uint64_t)p->m, (uint64_t)p->n, &u) ||
	     __builtin_mul_overflow(u, (uint64_t)p->k, &u)))
		u = UINT64_MAX;
	return u ? u : 1;
}

void vgpu_cost_init(struct vgpu_cost *c)
{
	for (int op = 0; op <= VGPU_OP_COUNT; op++)
		c->fs_per_unit[op] = start_fs[op] ? start_fs[op] : 1000000;
}

uint64_t vgpu_cost_estimate(const struct vgpu_cost *c, int op, uint64_t units)
{
	unsigned __int128 ns;

	if (op < 0 || op > VGPU_OP_COUNT)
		return VGPU_COST_MIN_NS;
	ns = (unsigned __int128)units * c->fs_per_unit[op] / 1000000u;
	if (ns > MEASURED_MAX_NS)
		return MEASURED_MAX_NS;
	return ns < VGPU_COST_MIN_NS ? VGPU_COST_MIN_NS : (uint64_t)ns;
}

void vgpu_cost_learn(struct vgpu_cost *c, int op, uint64_t units, uint64_t measured_ns)
{
	uint64_t fs;

	if (op < 0 || op > VGPU_OP_COUNT || units == 0 || measured_ns > MEASURED_MAX_NS)
		return;
	fs = measured_ns * 1000000u / units; /* 10^12 x 10^6 < 2^64 */
	c->fs_per_unit[op] = c->fs_per_unit[op] - c->fs_per_unit[op] / 8 + fs / 8;
}
