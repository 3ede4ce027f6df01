/* SPDX-License-Identifier: MIT */
/*
 * submit.h - the workload half of vgpu-submit: deterministic inputs, the
 * CPU reference and the comparison of results (submit_check.c).
 */
#ifndef VGPU_GUEST_SUBMIT_H
#define VGPU_GUEST_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvgpu.h"

/* One op's inputs and, when verifying, its expected output. */
struct submit_work {
	int op;                       /* enum vgpu_op */
	struct vgpu_op_params params;
	int n_inputs;
	uint64_t in_count[3], out_count;
	float *in[3];                 /* the inputs; saxpy's y and sgemm's C are copied per request */
	float *ref;                   /* expected output (out_count), or NULL */
	float *tol;                   /* sgemm: allowed error per element, or NULL */
	float ref_tol;                /* the others: allowed error scale (see submit_check.c) */
};

/* Fill @w's inputs from @seed (params, op and counts already set). */
int submit_work_init(struct submit_work *w, uint64_t seed);
/* Compute @w's expected output on the CPU. */
int submit_work_reference(struct submit_work *w);
/* Index of the first element of @out (out_count floats) off the reference,
 * or -1 when every one is within tolerance. */
int64_t submit_work_check(const struct submit_work *w, const float *out);
void submit_work_free(struct submit_work *w);

#endif
