/* SPDX-License-Identifier: MIT */
/*
 * pool.c - stream-ordered allocation: cuMemAllocAsync, cuMemFreeAsync and
 * memory pools. The host's worker holds the real pools, this process's
 * own (handles from 1; 0 names the process's default pool of a device,
 * which the worker makes when it is first used), and counts what they
 * hold against the VM's quota (cudaworker/pool.c). Here each pool is a
 * small record with that handle and its device, checked by its magic;
 * the current pool of each device is kept here.
 *
 * Served: device pools of pinned memory with no export handle types.
 * Refused with CUDA_ERROR_NOT_SUPPORTED: host and managed pools, pools
 * that export handles (IPC), access to a pool from another device. An
 * allocation or free in a stream under capture becomes a memory node of
 * the graph capture.c builds (graph_mem.c: memory against the quota).
 *
 * Never: take a pool that is not one of ours, or free a record the host
 * may still name (destroy frees it once the host said yes).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "shim.h"

#define POOL_MAGIC 0x56504f4cu /* "VPOL" */

struct CUmemPoolHandle_st {
	uint32_t magic;
	uint64_t host;     /* 0: the process's default pool of dev */
	CUdevice dev;
};

static struct CUmemPoolHandle_st defaults[VGPU_CUDA_MAX_DEVICES] = {
	[0 ... VGPU_CUDA_MAX_DEVICES - 1] = { .magic = POOL_MAGIC },
};
static _Atomic(CUmemoryPool) current[VGPU_CUDA_MAX_DEVICES]; /* NULL: the default */

static bool is_pool(CUmemoryPool pool)
{
	return VGPU_CUDA_IS(pool, POOL_MAGIC);
}

static CUdevice pool_device(CUmemoryPool pool)
{
	return pool >= defaults && pool < defaults + VGPU_CUDA_MAX_DEVICES
		       ? (CUdevice)(pool - defaults)
		       : pool->dev;
}

/* Device @dev's default pool, or NULL when there is no such device. */
static CUmemoryPool default_of(CUdevice dev)
{
	return vgpu_cuda_device(dev) ? &defaults[dev] : NULL;
}

static CUresult pool_op(CUmemoryPool pool, uint64_t what, uint64_t a2, uint64_t a3,
			uint64_t *ret)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_POOL, .v = { what, pool->host, a2, a3 } }, r;
	CUresult rc = vgpu_cuda_call_on(pool_device(pool), &m, NULL, &r, NULL, 0);

	if (rc == CUDA_SUCCESS && ret)
		*ret = r.v[0];
	return rc;
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pool_out)
		return CUDA_ERROR_INVALID_VALUE;
	if (!default_of(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	*pool_out = default_of(dev);
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
	CUresult rc = cuDeviceGetDefaultMemPool(pool, dev);
	CUmemoryPool set = rc == CUDA_SUCCESS ? atomic_load(&current[dev]) : NULL;

	if (set)
		*pool = set;
	return rc;
}

CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!default_of(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	if (!is_pool(pool) || pool_device(pool) != dev)
		return CUDA_ERROR_INVALID_VALUE;
	atomic_store(&current[dev], pool == default_of(dev) ? NULL : pool);
	return CUDA_SUCCESS;
}

/* CUDA 13's by location and type: device pools of pinned memory only. */
static CUresult device_of(const CUmemLocation *location, CUmemAllocationType type, CUdevice *dev)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!location)
		return CUDA_ERROR_INVALID_VALUE;
	if (type != CU_MEM_ALLOCATION_TYPE_PINNED || location->type != CU_MEM_LOCATION_TYPE_DEVICE)
		return type == CU_MEM_ALLOCATION_TYPE_MANAGED ||
				       location->type == CU_MEM_LOCATION_TYPE_HOST ||
				       location->type == CU_MEM_LOCATION_TYPE_HOST_NUMA
			       ? CUDA_ERROR_NOT_SUPPORTED
			       : CUDA_ERROR_INVALID_VALUE;
	*dev = location->id;
	return default_of(*dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location,
				CUmemAllocationType type)
{
	CUdevice dev;
	CUresult rc = device_of(location, type, &dev);

	return rc == CUDA_SUCCESS ? cuDeviceGetDefaultMemPool(pool_out, dev) : rc;
}

CUresult cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *location, CUmemAllocationType type)
{
	CUdevice dev;
	CUresult rc = device_of(location, type, &dev);

	return rc == CUDA_SUCCESS ? cuDeviceGetMemPool(pool, dev) : rc;
}

CUresult cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type, CUmemoryPool pool)
{
	CUdevice dev;
	CUresult rc = device_of(location, type, &dev);

	return rc == CUDA_SUCCESS ? cuDeviceSetMemPool(dev, pool) : rc;
}

CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
	struct CUmemPoolHandle_st *p;
	CUdevice dev;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pool || !poolProps)
		return CUDA_ERROR_INVALID_VALUE;
	rc = device_of(&poolProps->location, poolProps->allocType, &dev);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (poolProps->handleTypes != CU_MEM_HANDLE_TYPE_NONE || poolProps->usage)
		return CUDA_ERROR_NOT_SUPPORTED; /* IPC, hardware decompression */
	p = calloc(1, sizeof(*p));
	if (!p)
		return CUDA_ERROR_OUT_OF_MEMORY;
	p->dev = dev;
	rc = pool_op(p, VGPU_CUDA_POOL_CREATE, poolProps->maxSize, 0, &p->host);
	if (rc == CUDA_SUCCESS && !p->host)
		rc = CUDA_ERROR_UNKNOWN;
	if (rc != CUDA_SUCCESS) {
		free(p);
		return rc;
	}
	p->magic = POOL_MAGIC;
	*pool = p;
	return CUDA_SUCCESS;
}

/* A default pool is never destroyed; a pool current for its device
 * leaves the default current again. */
CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
	CUmemoryPool expected = pool;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!is_pool(pool) || !pool->host)
		return CUDA_ERROR_INVALID_VALUE;
	rc = pool_op(pool, VGPU_CUDA_POOL_DESTROY, 0, 0, NULL);
	if (rc != CUDA_SUCCESS)
		return rc;
	atomic_compare_exchange_strong(&current[pool->dev], &expected, NULL);
	pool->magic = 0;
	free(pool);
	return CUDA_SUCCESS;
}

/* The attributes CUDA has: the first three are ints, the rest 64 bits. */
static bool is_int(CUmemPool_attribute attr)
{
	return attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
}

static bool known(CUmemPool_attribute attr)
{
	return attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES &&
	       attr <= CU_MEMPOOL_ATTR_USED_MEM_HIGH;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!is_pool(pool) || !value || !known(attr))
		return CUDA_ERROR_INVALID_VALUE;
	return pool_op(pool, VGPU_CUDA_POOL_SET, (uint64_t)attr,
		       is_int(attr) ? (uint64_t)(uint32_t)*(int *)value : *(cuuint64_t *)value, NULL);
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
	uint64_t v = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!is_pool(pool) || !value || !known(attr))
		return CUDA_ERROR_INVALID_VALUE;
	rc = pool_op(pool, VGPU_CUDA_POOL_GET, (uint64_t)attr, 0, &v);
	if (rc == CUDA_SUCCESS && is_int(attr))
		*(int *)value = (int)(uint32_t)v;
	else if (rc == CUDA_SUCCESS)
		*(cuuint64_t *)value = v;
	return rc;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!is_pool(pool))
		return CUDA_ERROR_INVALID_VALUE;
	return pool_op(pool, VGPU_CUDA_POOL_TRIM, minBytesToKeep, 0, NULL);
}

/* A pool's own device reads and writes it; no other device reaches it. */
CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!is_pool(pool) || (!map && count))
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < count; i++) {
		if (map[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
		    !default_of(map[i].location.id) ||
		    (unsigned)map[i].flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
			return CUDA_ERROR_INVALID_VALUE;
		if (map[i].location.id != pool_device(pool))
			return CUDA_ERROR_NOT_SUPPORTED;
		if (map[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
			return CUDA_ERROR_INVALID_DEVICE; /* as CUDA: the owner's is fixed */
	}
	return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool,
			    CUmemLocation *location)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!flags || !is_pool(memPool) || !location ||
	    location->type != CU_MEM_LOCATION_TYPE_DEVICE || !default_of(location->id))
		return CUDA_ERROR_INVALID_VALUE;
	*flags = location->id == pool_device(memPool) ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
						       : CU_MEM_ACCESS_FLAGS_PROT_NONE;
	return CUDA_SUCCESS;
}


CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
				 CUstream hStream)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_ALLOC_ASYNC }, r;
	uint64_t stream;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!dptr || !bytesize || !is_pool(pool))
		return CUDA_ERROR_INVALID_VALUE;
	rc = vgpu_cuda_stream_host(hStream, &stream);
	if (rc != CUDA_SUCCESS)
		return rc;
	if (vgpu_cuda_stream_capture(hStream)) {
		/* An allocation node (capture.c), from the graph's memory. */
		CUgraphNodeParams p = {
			.type = CU_GRAPH_NODE_TYPE_MEM_ALLOC,
			.alloc = { .poolProps = { .allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
						  .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE,
								.id = pool_device(pool) } },
				   .bytesize = bytesize },
		};

		if (vgpu_capture_node(hStream, &p, true, dptr, &rc) != VGPU_CAPTURE_OFF)
			return rc;
	}
	m.v[0] = bytesize;
	m.v[1] = stream;
	m.v[2] = pool->host;
	rc = vgpu_cuda_call_on(pool_device(pool), &m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS) {
		*dptr = (CUdeviceptr)r.v[0];
		vgpu_cuda_block_add(*dptr, bytesize, pool_device(pool), NULL);
	}
	return rc;
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
	CUmemoryPool pool;
	CUresult rc = vgpu_cuda_ready();

	if (rc == CUDA_SUCCESS)
		rc = cuDeviceGetMemPool(&pool, vgpu_cuda_current_device());
	return rc == CUDA_SUCCESS ? cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream) : rc;
}

/* Posted: the host frees it when the stream gets there (cuMemAlloc's
 * memory too, once the stream's work before is done). Managed memory is
 * freed once the stream is done. */
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_MEM_FREE_ASYNC };
	uint64_t stream;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	rc = vgpu_cuda_stream_host(hStream, &stream);
	if (rc != CUDA_SUCCESS || dptr == 0)
		return rc;
	if (vgpu_cuda_stream_capture(hStream)) {
		/* A free node (capture.c): of a graph's allocation. */
		CUgraphNodeParams p = { .type = CU_GRAPH_NODE_TYPE_MEM_FREE, .free = { .dptr = dptr } };

		if (vgpu_capture_node(hStream, &p, true, NULL, &rc) != VGPU_CAPTURE_OFF)
			return rc;
	}
	if (vgpu_cuda_is_managed(dptr)) {
		rc = cuStreamSynchronize(hStream);
		return rc == CUDA_SUCCESS ? cuMemFree_v2(dptr) : rc;
	}
	if (vgpu_graph_mem_free_outside(dptr, &rc)) /* kept: its memory is there */
		return rc;
	if (!vgpu_cuda_is_device(dptr))
		return CUDA_ERROR_INVALID_VALUE;
	m.v[0] = dptr;
	m.v[1] = stream;
	rc = vgpu_cuda_post(&m, NULL);
	if (rc == CUDA_SUCCESS)
		vgpu_cuda_block_remove(dptr);
	return rc;
}
