/* SPDX-License-Identifier: MIT */
/*
 * cost.h - what a work will cost on the GPU, learnt from what works cost:
 * per op, an average of the GPU time per unit of work (elements for the
 * vector ops, m x n x k for sgemm), each measurement weighing 1/8. The
 * scheduler charges the estimate when a work starts and the measured time
 * when it ends (scheduler.h), so an estimate that is off costs fairness only
 * between those two moments.
 *
 * Not thread-safe (queue.c holds its lock around every call).
 */
#ifndef VGPU_COST_H
#define VGPU_COST_H

#include <stdint.h>

#include "vgpu_protocol.h"

#define VGPU_COST_MIN_NS 1000u /* no work is estimated below 1 us */

struct vgpu_cost {
	uint64_t fs_per_unit[VGPU_OP_COUNT + 1]; /* indexed by op; femtoseconds */
};

/* Units of work of @op with @params (at least 1). */
uint64_t vgpu_cost_units(int op, const struct vgpu_op_params *params);
void vgpu_cost_init(struct vgpu_cost *c);
uint64_t vgpu_cost_estimate(const struct vgpu_cost *c, int op, uint64_t units);
void vgpu_cost_learn(struct vgpu_cost *c, int op, uint64_t units, uint64_t measured_ns);

#endif
