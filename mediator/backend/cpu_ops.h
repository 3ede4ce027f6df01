/* SPDX-License-Identifier: MIT */
/*
 * cpu_ops.h - the CPU backend's kernels: each op cut into parts that
 * workers run independently (disjoint output ranges), so that one large
 * work spreads over every core and a high-priority work waits at most one
 * part behind a low-priority one.
 *
 * Never: allocate, or write outside the part's own range of the output.
 */
#ifndef VGPU_CPU_OPS_H
#define VGPU_CPU_OPS_H

#include <stdint.h>

#include "backend.h"

#define VGPU_CPU_MAX_PARTS 64

/* How many parts @w (already checked) is cut into: 1..VGPU_CPU_MAX_PARTS. */
uint32_t vgpu_cpu_op_parts(const struct vgpu_work *w);

/*
 * Run part @part of @parts of @w. For reduce_sum this writes nothing and
 * returns the part's sum (the caller adds the parts in order, so the result
 * does not depend on which thread ran what); for the other ops it writes the
 * part's range of the output and returns 0.
 */
double vgpu_cpu_op_run_part(const struct vgpu_work *w, uint32_t part, uint32_t parts);

#endif
