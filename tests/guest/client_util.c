/* SPDX-License-Identifier: MIT */
/*
 * client_util.c - see client_util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "client_util.h"

vgpu_client *tc_connect(const char *uri)
{
	vgpu_client *c = NULL;

	assert_int_equal(vgpu_connect(uri, &c), VGPU_OK);
	assert_non_null(c);
	return c;
}

uint64_t tc_submit_add(vgpu_client *c, const float *a, const float *b, float *out, uint32_t n)
{
	struct vgpu_op_params p = { .n = n };
	const float *in[3] = { a, b, NULL };
	uint64_t id = 0;

	assert_int_equal(vgpu_submit(c, VGPU_OP_VECTOR_ADD, &p, in, out, &id), VGPU_OK);
	assert_true(id != 0);
	return id;
}

void tc_log_cb(void *opaque, const char *msg)
{
	struct log_seen *l = opaque;

	l->count++;
	snprintf(l->last, sizeof(l->last), "%s", msg);
}
