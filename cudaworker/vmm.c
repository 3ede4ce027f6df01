/* SPDX-License-Identifier: MIT */
/*
 * vmm.c - virtual memory management for a VM's processes (cuMemCreate,
 * cuMemAddressReserve, cuMemMap, cuMemSetAccess: what PyTorch's
 * expandable segments use): a process's physical allocations, by handle
 * (index + 1, never the driver's), and what it mapped where. The address
 * ranges it reserved are serve.c's (its allocations table, so that
 * copies and memsets find them); serve.c checks that a map, unmap or
 * access lies within one of them before it comes here.
 *
 * The quota counts a physical allocation from its cuMemCreate until the
 * driver has it back: released by the process and mapped nowhere (CUDA
 * keeps a released allocation while a mapping holds it).
 *
 * Never: map a handle that is not this process's, past its bytes, or over
 * a range mapped already; give the quota back before the driver's release.
 */
#include <stdlib.h>

#include "worker.h"

struct vhandle {
	CUmemGenericAllocationHandle h;
	uint64_t bytes;
	uint32_t dev;
	uint32_t refs;                   /* the process's: create and retains, less releases */
	uint32_t maps;                   /* mappings of it */
};

struct vmap {
	uint64_t ptr, bytes;
	uint32_t handle;                 /* index into v->h */
};

/* Room for one more of @n in *@arr (@size bytes each, *@cap of them),
 * within @max. */
static bool grow(void **arr, uint32_t n, uint32_t *cap, size_t size, uint32_t max)
{
	void *a;
	uint32_t next;

	if (n < *cap)
		return true;
	if (n >= max)
		return false;
	next = *cap ? *cap * 2 : 16;
	a = realloc(*arr, (size_t)next * size);
	if (!a)
		return false;
	*arr = a;
	*cap = next;
	return true;
}

static struct vhandle *handle_of(struct vmm *v, uint64_t handle)
{
	return handle >= 1 && handle <= v->n_h && v->h[handle - 1].refs ? &v->h[handle - 1] : NULL;
}

/* The driver's release once neither the process nor a mapping holds it;
 * the quota gets its bytes back then. */
static void settle(struct worker *w, struct vhandle *h)
{
	if (h->refs || h->maps || !h->bytes)
		return;
	w->drv.vmm_release(h->h);
	worker_give(w, &w->held, h->bytes);
	h->bytes = 0; /* a free slot */
}

/* Pinned memory of GPU @dev, compressible (CU_MEM_ALLOCATION_COMP_GENERIC)
 * as @comp says. */
static CUmemAllocationProp device_prop(const struct worker *w, uint32_t dev, uint64_t comp)
{
	return (CUmemAllocationProp){
		.type = CU_MEM_ALLOCATION_TYPE_PINNED,
		.location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = w->host_ordinal[dev] },
		.allocFlags = { .compressionType = (unsigned char)comp },
	};
}

static CUresult create(struct worker *w, struct vmm *v, uint32_t dev, uint64_t bytes,
		       uint64_t comp, uint64_t *ret)
{
	CUmemAllocationProp prop = device_prop(w, dev, comp);
	uint32_t slot = 0;
	CUresult rc;

	while (slot < v->n_h && v->h[slot].bytes)
		slot++;
	if (bytes == 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (slot == v->n_h && !grow((void **)&v->h, v->n_h, &v->cap_h, sizeof(*v->h),
				    WORKER_MAX_VMM_HANDLES))
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (!worker_take_memory(w, bytes))
		return CUDA_ERROR_OUT_OF_MEMORY;
	v->h[slot] = (struct vhandle){ .dev = dev };
	rc = w->drv.vmm_create(&v->h[slot].h, (size_t)bytes, &prop, 0);
	if (rc != CUDA_SUCCESS) {
		worker_give(w, &w->held, bytes);
		return rc;
	}
	v->h[slot].bytes = bytes;
	v->h[slot].refs = 1;
	if (slot == v->n_h)
		v->n_h++;
	*ret = slot + 1;
	return CUDA_SUCCESS;
}

/* The mapping at or over [@ptr, @ptr + @bytes) first found, or NULL. */
static struct vmap *overlap(struct vmm *v, uint64_t ptr, uint64_t bytes)
{
	for (uint32_t i = 0; i < v->n_maps; i++)
		if (v->maps[i].ptr < ptr + bytes && ptr < v->maps[i].ptr + v->maps[i].bytes)
			return &v->maps[i];
	return NULL;
}

static CUresult map(struct worker *w, struct vmm *v, const struct vgpu_cuda_msg *m)
{
	uint64_t ptr = m->v[1], bytes = m->v[2], offset = m->v[3];
	struct vhandle *h = handle_of(v, m->v[4]);
	CUresult rc;

	if (!h || bytes == 0 || offset > h->bytes || bytes > h->bytes - offset ||
	    overlap(v, ptr, bytes))
		return h ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
	if (!grow((void **)&v->maps, v->n_maps, &v->cap_maps, sizeof(*v->maps),
		  WORKER_MAX_VMM_MAPS))
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = w->drv.vmm_map(ptr, (size_t)bytes, (size_t)offset, h->h, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	v->maps[v->n_maps++] = (struct vmap){ ptr, bytes, (uint32_t)(h - v->h) };
	h->maps++;
	return CUDA_SUCCESS;
}

/* Every mapping the range touches must lie within it. */
static CUresult unmap(struct worker *w, struct vmm *v, uint64_t ptr, uint64_t bytes)
{
	bool any = false;
	CUresult rc;

	for (uint32_t i = 0; i < v->n_maps; i++) {
		const struct vmap *p = &v->maps[i];

		if (p->ptr < ptr + bytes && ptr < p->ptr + p->bytes) {
			if (p->ptr < ptr || p->ptr + p->bytes > ptr + bytes)
				return CUDA_ERROR_INVALID_VALUE;
			any = true;
		}
	}
	if (!any)
		return CUDA_ERROR_INVALID_VALUE;
	rc = w->drv.vmm_unmap(ptr, (size_t)bytes);
	if (rc != CUDA_SUCCESS)
		return rc;
	for (uint32_t i = 0; i < v->n_maps;) {
		struct vmap *p = &v->maps[i];

		if (p->ptr < ptr + bytes && ptr < p->ptr + p->bytes) {
			struct vhandle *h = &v->h[p->handle];

			h->maps--;
			*p = v->maps[--v->n_maps];
			settle(w, h);
		} else {
			i++;
		}
	}
	return CUDA_SUCCESS;
}

CUresult vmm_call(struct worker *w, struct vmm *v, const struct vgpu_cuda_msg *m, uint32_t dev,
		  uint64_t res[3])
{
	CUmemAllocationProp prop = device_prop(w, dev, 0);
	struct vhandle *h;
	struct vmap *p;
	size_t bytes = 0;
	CUresult rc;

	switch (m->v[0]) {
	case VGPU_CUDA_VMM_CREATE:
		return m->v[2] > CU_MEM_ALLOCATION_COMP_GENERIC || m->v[3] || m->v[4]
			       ? CUDA_ERROR_INVALID_VALUE
			       : create(w, v, dev, m->v[1], m->v[2], &res[0]);
	case VGPU_CUDA_VMM_RELEASE:
		h = handle_of(v, m->v[1]);
		if (!h || m->v[2] || m->v[3] || m->v[4])
			return h ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
		h->refs--;
		settle(w, h);
		return CUDA_SUCCESS;
	case VGPU_CUDA_VMM_MAP:
		return map(w, v, m);
	case VGPU_CUDA_VMM_UNMAP:
		return m->v[3] || m->v[4] ? CUDA_ERROR_INVALID_VALUE
					  : unmap(w, v, m->v[1], m->v[2]);
	case VGPU_CUDA_VMM_ACCESS: {
		CUmemAccessDesc desc = { .location = prop.location,
					 .flags = (CUmemAccess_flags)m->v[3] };

		if (m->v[4] || (m->v[3] != CU_MEM_ACCESS_FLAGS_PROT_NONE &&
				m->v[3] != CU_MEM_ACCESS_FLAGS_PROT_READ &&
				m->v[3] != CU_MEM_ACCESS_FLAGS_PROT_READWRITE))
			return CUDA_ERROR_INVALID_VALUE;
		return w->drv.vmm_access(m->v[1], (size_t)m->v[2], &desc, 1);
	}
	case VGPU_CUDA_VMM_RETAIN:
		p = m->v[2] || m->v[3] || m->v[4] ? NULL : overlap(v, m->v[1], 1);
		if (!p)
			return CUDA_ERROR_INVALID_VALUE;
		h = &v->h[p->handle];
		h->refs++; /* a released one mapped still: the process's again */
		res[0] = p->handle + 1u;
		return CUDA_SUCCESS;
	case VGPU_CUDA_VMM_PROPS:
		h = handle_of(v, m->v[1]);
		if (!h || m->v[2] || m->v[3] || m->v[4])
			return h ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_HANDLE;
		rc = w->drv.vmm_props(&prop, h->h);
		res[0] = h->dev;
		res[1] = h->bytes;
		res[2] = prop.allocFlags.compressionType;
		return rc;
	case VGPU_CUDA_VMM_GRANULARITY:
		if (m->v[1] > CU_MEM_ALLOC_GRANULARITY_RECOMMENDED ||
		    m->v[2] > CU_MEM_ALLOCATION_COMP_GENERIC || m->v[3] || m->v[4])
			return CUDA_ERROR_INVALID_VALUE;
		prop = device_prop(w, dev, m->v[2]);
		rc = w->drv.vmm_granularity(&bytes, &prop,
					    (CUmemAllocationGranularity_flags)m->v[1]);
		res[0] = bytes;
		return rc;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

CUresult vmm_reserve(struct worker *w, const struct vgpu_cuda_msg *m, uint64_t *ptr)
{
	CUdeviceptr at = 0;
	CUresult rc;

	if (m->v[1] == 0 || m->v[4])
		return CUDA_ERROR_INVALID_VALUE;
	rc = w->drv.vmm_reserve(&at, (size_t)m->v[1], (size_t)m->v[2], (CUdeviceptr)m->v[3], 0);
	*ptr = at;
	return rc;
}

CUresult vmm_unreserve(struct worker *w, struct vmm *v, uint64_t ptr, uint64_t bytes)
{
	return overlap(v, ptr, bytes) ? CUDA_ERROR_INVALID_VALUE
				      : w->drv.vmm_free(ptr, (size_t)bytes);
}

void vmm_release(struct worker *w, struct vmm *v)
{
	for (uint32_t i = 0; i < v->n_maps; i++)
		w->drv.vmm_unmap(v->maps[i].ptr, (size_t)v->maps[i].bytes);
	for (uint32_t i = 0; i < v->n_h; i++) {
		v->h[i].refs = 0;
		v->h[i].maps = 0;
		settle(w, &v->h[i]);
	}
	free(v->maps);
	free(v->h);
}
