/* SPDX-License-Identifier: MIT */
/*
 * select.c - vgpu_backend_select(): the backend a name asks for.
 *
 * Never: initialize a backend (probing may touch the GPU driver, nothing
 * more), or fall back silently when a backend was asked for by name.
 */
#include <stdio.h>
#include <string.h>

#include "backend.h"

const struct vgpu_backend_ops *vgpu_backend_select(const char *name, char *err, size_t err_size)
{
	char why[256];

	if (err && err_size)
		err[0] = '\0';
	if (!name || strcmp(name, "auto") == 0) {
		if (!vgpu_backend_cuda) {
			snprintf(err, err_size, "cpu: this build has no CUDA backend");
			return &vgpu_backend_cpu;
		}
		if (vgpu_backend_cuda->probe(why, sizeof(why)) == VGPU_OK)
			return vgpu_backend_cuda;
		/* Not an error: @err says why auto chose the CPU. */
		snprintf(err, err_size, "cpu: %s", why);
		return &vgpu_backend_cpu;
	}
	if (strcmp(name, "cpu") == 0)
		return &vgpu_backend_cpu;
	if (strcmp(name, "cuda") == 0) {
		if (!vgpu_backend_cuda) {
			snprintf(err, err_size, "this build has no CUDA backend (no nvcc and CUDA toolkit at build time)");
			return NULL;
		}
		if (vgpu_backend_cuda->probe(why, sizeof(why)) != VGPU_OK) {
			snprintf(err, err_size, "%s", why);
			return NULL;
		}
		return vgpu_backend_cuda;
	}
	snprintf(err, err_size, "unknown backend '%s' (auto, cpu or cuda)", name);
	return NULL;
}
