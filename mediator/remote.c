/* SPDX-License-Identifier: MIT */
/*
 * remote.c - the host's side of guests' libcuda.so.1
 * (docs/specs/cuda-remoting.md). So far the description: what a guest's
 * driver API is told of the GPUs its VM's pool may use, once, at cuInit().
 * The backend describes each GPU at start (the CUDA backend: the device's
 * name, UUID, memory, PCI bus id and every attribute; the CPU backend has
 * no CUDA device, so its guests see none and cuInit() reports
 * CUDA_ERROR_NO_DEVICE); a VM sees its pool's GPUs, numbered from 0, as
 * CUDA_VISIBLE_DEVICES would show them.
 */
#include <string.h>

#include "mediator.h"

void vgpu_remote_init(struct mediator *m)
{
	for (uint32_t i = 0; i < m->n_gpus; i++) {
		uint32_t version = 0;

		m->gpu_described[i] = false;
		if (!m->backend->describe)
			continue;
		if (m->backend->describe(m->gpu[i].ctx, &m->gpu_desc[i], &version) != VGPU_OK) {
			vgpu_log(LOG_WARNING, "GPU %u: cannot describe it to guests' CUDA programs; "
				 "they will not see it", i);
			continue;
		}
		m->gpu_described[i] = true;
		m->cuda_driver_version = version;
	}
}

void vgpu_remote_describe(const struct mediator *m, const struct vgpu_vm *vm,
			  struct vgpu_cuda_desc *d)
{
	uint64_t mask = vgpu_gpu_mask(m, m->pools[vgpu_pool_index(vm->pool)].gpus);

	memset(d, 0, sizeof(*d));
	d->driver_version = m->cuda_driver_version;
	for (uint32_t i = 0; i < m->n_gpus && d->count < VGPU_CUDA_MAX_DEVICES; i++)
		if ((mask >> i & 1) && m->gpu_described[i])
			d->dev[d->count++] = m->gpu_desc[i];
}
