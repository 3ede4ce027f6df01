/* SPDX-License-Identifier: MIT */
/*
 * backend_internal.h - helpers shared by the executor backends (cpu, cuda),
 * not part of the interface the mediator sees.
 *
 * Never: hold state. These are pure functions over one work.
 */
#ifndef VGPU_BACKEND_INTERNAL_H
#define VGPU_BACKEND_INTERNAL_H

#include <stdint.h>

#include "backend.h"
#include "vgpu_clock.h"

/* Works a backend accepts at once when the config says 0. */
#define VGPU_BACKEND_DEFAULT_INFLIGHT 256
/* The most a config may ask for (each costs a slot allocated at init). */
#define VGPU_BACKEND_MAX_INFLIGHT 65536

/*
 * VGPU_OK when @w is a work a backend can run: a known op, non-zero sizes,
 * in_count/out_count equal to what the params imply, the inputs the op reads
 * and the output non-NULL, a priority in 0..2 and a done callback. Otherwise
 * VGPU_INVALID_PARAM. Backends check this in submit() so that no size mistake
 * of a caller ever reads or writes past a buffer.
 */
int vgpu_backend_work_check(const struct vgpu_work *w);

/* Inputs @op reads (1..3); 0 for an unknown op. */
int vgpu_backend_op_inputs(enum vgpu_op op);

#endif
