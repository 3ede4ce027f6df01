/* SPDX-License-Identifier: MIT */
/*
 * pool.c - stream-ordered allocation (cuMemAllocAsync and memory pools)
 * for a VM's processes: each process's pools are its own on the host
 * (its default pool of each GPU too, made when first named), so one
 * process's pool attributes or trims never touch another's.
 *
 * The quota: a pool keeps the memory its allocations freed (up to its
 * release threshold, until a synchronize gives the rest back), and
 * memory freed in stream order stays the pool's until the stream gets
 * there. So what counts against the VM's quota is what the pools hold
 * (the driver's CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), not what the
 * allocations asked for: read after each allocation and free, and for
 * every pool of the VM when an allocation would pass the quota (after
 * trimming them all) or cuMemGetInfo asks. An allocation that finds the
 * pool's reservation grown past the quota is freed again and refused
 * with CUDA_ERROR_OUT_OF_MEMORY.
 *
 * Never: let a pool's memory go uncounted while the driver may hold it,
 * or destroy a pool whose allocations are still the process's (a
 * destroyed pool with live allocations waits for their frees).
 */
#include <stdlib.h>

#include "worker.h"

struct wpool {
	CUmemoryPool h;
	uint32_t dev;
	uint64_t held;                   /* its reservation as last read, in pool_held */
	uint64_t allocs;                 /* the process's live allocations from it */
	bool doomed;                     /* destroyed by the process: goes with its last */
};

/* Read @p's reservation into w->pool_held; under w->lock. */
static void refresh_locked(struct worker *w, struct wpool *p)
{
	cuuint64_t now = 0;

	if (w->drv.pool_get_attr(p->h, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &now) != CUDA_SUCCESS)
		return; /* keep the last figure: never less than the driver holds */
	w->pool_held = w->pool_held - p->held + now;
	p->held = now;
}

static void refresh(struct worker *w, struct wpool *p)
{
	pthread_mutex_lock(&w->lock);
	refresh_locked(w, p);
	pthread_mutex_unlock(&w->lock);
}

void pool_refresh_all(struct worker *w, bool trim)
{
	pthread_mutex_lock(&w->lock);
	for (uint64_t i = 0; i < w->n_pools; i++) {
		if (trim)
			w->drv.pool_trim(w->pools[i]->h, 0);
		refresh_locked(w, w->pools[i]);
	}
	pthread_mutex_unlock(&w->lock);
}

static bool take(struct worker *w, uint64_t n)
{
	uint64_t max = w->quota ? w->quota : UINT64_MAX;
	bool ok;

	pthread_mutex_lock(&w->lock);
	ok = n <= max && w->pool_held <= max - n && w->held <= max - n - w->pool_held;
	if (ok)
		w->held += n;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

/* When the quota says no, what the pools keep unused is given back and
 * their figures read anew before it is asked again. */
bool worker_take_memory(struct worker *w, uint64_t n)
{
	if (take(w, n))
		return true;
	pool_refresh_all(w, true);
	return take(w, n);
}

/* Make a pool of GPU @dev (@max_size: the driver's maximum, 0 its
 * default) in slot @slot of @pl, within the budgets. */
static CUresult make(struct worker *w, struct pools *pl, uint32_t slot, uint32_t dev,
		     uint64_t max_size)
{
	CUmemPoolProps props = {
		.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
		.handleTypes = CU_MEM_HANDLE_TYPE_NONE,
		.location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = w->host_ordinal[dev] },
		.maxSize = (size_t)max_size,
	};
	struct wpool *p = calloc(1, sizeof(*p));
	CUresult rc = p ? w->drv.pool_create(&p->h, &props) : CUDA_ERROR_OUT_OF_MEMORY;

	if (rc == CUDA_SUCCESS) {
		pthread_mutex_lock(&w->lock);
		if (w->n_pools < WORKER_VM_MAX_POOLS)
			w->pools[w->n_pools++] = p;
		else
			rc = CUDA_ERROR_OUT_OF_MEMORY;
		pthread_mutex_unlock(&w->lock);
		if (rc != CUDA_SUCCESS)
			w->drv.pool_destroy(p->h);
	}
	if (rc != CUDA_SUCCESS) {
		free(p);
		return rc;
	}
	p->dev = dev;
	pl->slot[slot] = p;
	return CUDA_SUCCESS;
}

/* Destroy @p for good: out of the VM's list and its figure, then the
 * driver's. Its allocations are all freed, but frees posted in stream
 * order may not have happened yet, and the driver keeps their memory
 * until they do (cuMemPoolDestroy returns at once): the VM's work on the
 * pool's GPU is waited for first, so that what stops counting here is
 * what the driver has back. */
static void destroy(struct worker *w, struct pools *pl, struct wpool *p)
{
	if (w->drv.ctx_set_current(w->ctx[p->dev]) == CUDA_SUCCESS)
		w->drv.ctx_sync();
	pthread_mutex_lock(&w->lock);
	for (uint64_t i = 0; i < w->n_pools; i++)
		if (w->pools[i] == p)
			w->pools[i] = w->pools[--w->n_pools];
	w->pool_held -= p->held;
	pthread_mutex_unlock(&w->lock);
	w->drv.pool_destroy(p->h);
	for (uint32_t i = 0; i < WORKER_MAX_POOLS; i++)
		if (pl->slot[i] == p)
			pl->slot[i] = NULL;
	for (uint32_t d = 0; d < VGPU_CUDA_MAX_DEVICES; d++)
		if (pl->dflt[d] == p)
			pl->dflt[d] = NULL;
	free(p);
}

/* A free slot of @pl, or WORKER_MAX_POOLS. */
static uint32_t free_slot(const struct pools *pl)
{
	uint32_t i = 0;

	while (i < WORKER_MAX_POOLS && pl->slot[i])
		i++;
	return i;
}

/* The pool @handle names on GPU @dev (0: its default, made now if it
 * was not), or NULL with *@rc why. */
static struct wpool *lookup(struct worker *w, struct pools *pl, uint64_t handle, uint32_t dev,
			    CUresult *rc)
{
	struct wpool *p;

	*rc = CUDA_SUCCESS;
	if (dev >= w->desc.count) {
		*rc = CUDA_ERROR_INVALID_DEVICE;
		return NULL;
	}
	if (handle == 0 && !pl->dflt[dev]) {
		uint32_t slot = free_slot(pl);

		*rc = slot < WORKER_MAX_POOLS ? make(w, pl, slot, dev, 0) : CUDA_ERROR_OUT_OF_MEMORY;
		if (*rc != CUDA_SUCCESS)
			return NULL;
		pl->dflt[dev] = pl->slot[slot];
	}
	p = handle == 0 ? pl->dflt[dev] : handle <= WORKER_MAX_POOLS ? pl->slot[handle - 1] : NULL;
	if (!p || p->doomed || (handle && pl->dflt[p->dev] == p))
		*rc = CUDA_ERROR_INVALID_HANDLE; /* a default pool is named 0 only */
	else if (p->dev != dev)
		*rc = CUDA_ERROR_INVALID_VALUE;
	return *rc == CUDA_SUCCESS ? p : NULL;
}

CUresult pool_alloc(struct worker *w, struct pools *pl, uint64_t handle, uint32_t dev,
		    uint64_t bytes, CUstream s, CUdeviceptr *ptr, struct wpool **from)
{
	CUresult rc;
	struct wpool *p = lookup(w, pl, handle, dev, &rc);
	cuuint64_t reserved = 0, used = 0;
	uint64_t taken = bytes;
	bool over;

	if (!p)
		return rc;
	if (bytes == 0)
		return CUDA_ERROR_INVALID_VALUE;
	/* The quota first, counting the bytes asked for until the pool's
	 * figure has them (so two processes cannot both pass). When it says
	 * no, the pool may still hold them unused (freed in this stream's
	 * order, say, which a trim cannot give back): the driver then reuses
	 * them without growing, so the allocation is tried with nothing
	 * counted ahead, and the check after it decides. */
	if (!worker_take_memory(w, bytes)) {
		if (w->drv.pool_get_attr(p->h, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) !=
			    CUDA_SUCCESS ||
		    w->drv.pool_get_attr(p->h, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used) !=
			    CUDA_SUCCESS ||
		    used > reserved || reserved - used < bytes)
			return CUDA_ERROR_OUT_OF_MEMORY;
		taken = 0;
	}
	rc = w->drv.alloc_from_pool(ptr, (size_t)bytes, p->h, s);
	pthread_mutex_lock(&w->lock);
	w->held -= taken;
	refresh_locked(w, p);
	over = w->quota && w->held + w->pool_held > w->quota;
	pthread_mutex_unlock(&w->lock);
	if (rc == CUDA_SUCCESS && over) {
		/* The other pools' figures may be older than a synchronize
		 * that gave their memory back, or they may keep memory
		 * unused: trimmed and read anew before this one is refused
		 * (NVIDIA's pools reserve 32 MiB at a time: two pools' chunks
		 * may not fit a quota one fits, performance.md run 52). */
		pool_refresh_all(w, true);
		pthread_mutex_lock(&w->lock);
		over = w->quota && w->held + w->pool_held > w->quota;
		pthread_mutex_unlock(&w->lock);
	}
	if (rc == CUDA_SUCCESS && over) {
		/* The reservation grew past the quota (the pool reserves in
		 * chunks larger than one allocation): not this VM's to keep. */
		w->drv.free_async(*ptr, s);
		w->drv.pool_trim(p->h, 0);
		refresh(w, p);
		rc = CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (rc == CUDA_SUCCESS) {
		p->allocs++;
		*from = p;
	}
	return rc;
}

void pool_freed(struct worker *w, struct pools *pl, struct wpool *p)
{
	p->allocs--;
	if (p->doomed && p->allocs == 0)
		destroy(w, pl, p);
	else
		refresh(w, p);
}

CUresult pool_call(struct worker *w, struct pools *pl, const struct vgpu_cuda_msg *m,
		   uint32_t dev, uint64_t *res)
{
	uint64_t attr = m->v[2], value = m->v[3];
	struct wpool *p;
	CUresult rc;

	switch (m->v[0]) {
	case VGPU_CUDA_POOL_CREATE: {
		uint32_t slot = free_slot(pl);

		if (m->v[1] || m->v[3])
			return CUDA_ERROR_INVALID_VALUE;
		if (dev >= w->desc.count)
			return CUDA_ERROR_INVALID_DEVICE;
		if (slot == WORKER_MAX_POOLS)
			return CUDA_ERROR_OUT_OF_MEMORY;
		rc = make(w, pl, slot, dev, m->v[2]);
		if (rc == CUDA_SUCCESS)
			*res = slot + 1;
		return rc;
	}
	case VGPU_CUDA_POOL_DESTROY:
		if (m->v[1] == 0 || m->v[2] || m->v[3])
			return CUDA_ERROR_INVALID_VALUE; /* a default pool is never destroyed */
		p = lookup(w, pl, m->v[1], dev, &rc);
		if (!p)
			return rc;
		p->doomed = true;
		if (p->allocs == 0)
			destroy(w, pl, p);
		return CUDA_SUCCESS;
	case VGPU_CUDA_POOL_SET:
	case VGPU_CUDA_POOL_GET:
		if (attr < CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES ||
		    attr > CU_MEMPOOL_ATTR_USED_MEM_HIGH ||
		    (m->v[0] == VGPU_CUDA_POOL_GET && value))
			return CUDA_ERROR_INVALID_VALUE;
		p = lookup(w, pl, m->v[1], dev, &rc);
		if (!p)
			return rc;
		if (attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES) {
			int v = (int)value;

			if (m->v[0] == VGPU_CUDA_POOL_GET) {
				rc = w->drv.pool_get_attr(p->h, (CUmemPool_attribute)attr, &v);
				*res = (uint64_t)(uint32_t)v;
				return rc;
			}
			return value > 1 ? CUDA_ERROR_INVALID_VALUE
					 : w->drv.pool_set_attr(p->h, (CUmemPool_attribute)attr, &v);
		}
		cuuint64_t v = value;

		if (m->v[0] == VGPU_CUDA_POOL_GET) {
			rc = w->drv.pool_get_attr(p->h, (CUmemPool_attribute)attr, &v);
			*res = v;
			return rc;
		}
		/* The threshold, or a high-water mark reset (only to 0). */
		if (attr != CU_MEMPOOL_ATTR_RELEASE_THRESHOLD &&
		    ((attr != CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH &&
		      attr != CU_MEMPOOL_ATTR_USED_MEM_HIGH) || value))
			return CUDA_ERROR_INVALID_VALUE;
		return w->drv.pool_set_attr(p->h, (CUmemPool_attribute)attr, &v);
	case VGPU_CUDA_POOL_TRIM:
		if (m->v[3])
			return CUDA_ERROR_INVALID_VALUE;
		p = lookup(w, pl, m->v[1], dev, &rc);
		if (!p)
			return rc;
		rc = w->drv.pool_trim(p->h, (size_t)m->v[2]);
		refresh(w, p);
		return rc;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
}

void pool_release(struct worker *w, struct pools *pl)
{
	for (uint32_t i = 0; i < WORKER_MAX_POOLS; i++)
		if (pl->slot[i])
			destroy(w, pl, pl->slot[i]);
}
