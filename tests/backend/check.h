/* SPDX-License-Identifier: MIT */
/*
 * check.h - what the backend tests and cuda-check share: one op with its
 * inputs filled with reproducible values, a work over it, and a check of
 * an output against exact (double) results within a float tolerance.
 *
 * Never: print (the caller decides how to report), or depend on a backend.
 */
#ifndef VGPU_TEST_BACKEND_CHECK_H
#define VGPU_TEST_BACKEND_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Where a case's buffers come from: a backend's host_alloc, or malloc. */
struct bt_alloc {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void *ctx;
};
extern const struct bt_alloc bt_malloc;

struct bt_case {
	enum vgpu_op op;
	struct vgpu_op_params p;
	int n_in;
	float *in[3];
	uint64_t in_count[3];
	float *out;
	uint64_t out_count;
	struct bt_alloc a;
};

/* Values in [-1, 1) from @seed; the same on every run. */
void bt_fill(float *x, uint64_t count, uint32_t seed);

/* A case with inputs filled from @seed and the output zeroed; false when
 * out of memory (nothing is left allocated). */
bool bt_case_new(struct bt_case *tc, enum vgpu_op op, uint32_t m, uint32_t n, uint32_t k,
		 float alpha, float beta, uint32_t seed, const struct bt_alloc *a);
void bt_case_free(struct bt_case *tc);

/* @w set up to run @tc at @priority, calling @done with @user. */
void bt_case_work(struct bt_case *tc, struct vgpu_work *w, int priority,
		  void (*done)(struct vgpu_work *, int, uint64_t), void *user);

/*
 * The worst |got - exact| / (rel * scale + 1e-30) over the output, where
 * exact is computed in double (or taken from @ref when not NULL) and scale
 * is the sum of the magnitudes of the terms of that element (so that
 * cancellation does not fail a correct result). At most @max_checks
 * elements are checked (spread over the output, first and last included);
 * the output passes when the result is <= 1. NaN counts as failing.
 */
double bt_case_check(const struct bt_case *tc, const float *got, const float *ref, double rel,
		     uint64_t max_checks);

#endif
