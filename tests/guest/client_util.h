/* SPDX-License-Identifier: MIT */
/*
 * client_util.h - small steps of the guest tests, shared by test_client.c
 * (socket, scripted peer) and test_spool.c (spool directory): connect,
 * submit a vector_add, and collect what the client logs. Each asserts with
 * cmocka, so call them from the test's own thread only.
 */
#ifndef VGPU_TEST_CLIENT_UTIL_H
#define VGPU_TEST_CLIENT_UTIL_H

#include <stdint.h>

#include "libvgpu.h"

/* vgpu_connect(@uri), asserting success. */
vgpu_client *tc_connect(const char *uri);

/* vgpu_submit() of a vector_add of @n floats, asserting success; the id. */
uint64_t tc_submit_add(vgpu_client *c, const float *a, const float *b, float *out, uint32_t n);

/* What the client logged: install with vgpu_client_set_log(c, tc_log_cb, &seen). */
struct log_seen {
	int count;
	char last[256];
};
void tc_log_cb(void *opaque, const char *msg);

#endif
