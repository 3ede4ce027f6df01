/* SPDX-License-Identifier: MIT */
/*
 * ctx.c - contexts as the guest sees them. Each device has one primary
 * context (what cudart uses); its handle is the address of an object here,
 * its reference count and flags are kept here, and each thread's current
 * context is a thread-local. The VM's worker on the host holds the one
 * real context per device that the guest's work runs in
 * (docs/specs/cuda-remoting.md). A context made with cuCtxCreate is a
 * handle of its own here, pushed and popped as CUDA's, whose work runs in
 * that same one context of its device on the host: its memory, modules
 * and streams are the process's, not freed when it is destroyed (they
 * are when the process ends).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "shim.h"

struct CUctx_st {
	unsigned int refs;   /* cuDevicePrimaryCtxRetain minus Release */
	unsigned int flags;  /* cuDevicePrimaryCtxSetFlags, cuCtxCreate */
	_Atomic int dev;     /* a created one's device + 1; 0: a free slot
			      * (written under the lock, read without) */
	unsigned long long id;
};

#define MAX_CREATED 256      /* contexts made with cuCtxCreate, live at once */
#define STACK_DEPTH 64       /* of a thread's pushed contexts */

static struct CUctx_st primary[VGPU_CUDA_MAX_DEVICES];
static struct CUctx_st created[MAX_CREATED];
static unsigned long long next_id = VGPU_CUDA_MAX_DEVICES + 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local CUcontext current;
static _Thread_local CUcontext stack[STACK_DEPTH]; /* below current, pushed */
static _Thread_local unsigned int depth;

CUcontext vgpu_cuda_primary(CUdevice dev)
{
	return vgpu_cuda_device(dev) ? &primary[dev] : NULL;
}

CUdevice vgpu_cuda_ctx_device(CUcontext ctx)
{
	for (int i = 0; i < VGPU_CUDA_MAX_DEVICES; i++)
		if (ctx == &primary[i] && vgpu_cuda_device(i))
			return i;
	if (ctx >= created && ctx < created + MAX_CREATED &&
	    ((uintptr_t)ctx - (uintptr_t)created) % sizeof(*created) == 0) {
		int dev = atomic_load_explicit(&ctx->dev, memory_order_acquire);

		return dev > 0 ? dev - 1 : -1;
	}
	return -1;
}

/* The primary context of @dev, after the usual checks. */
static CUresult primary_of(CUdevice dev, CUcontext *ret)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	*ret = vgpu_cuda_primary(dev);
	return *ret ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	CUcontext ctx;
	CUresult rc = primary_of(dev, &ctx);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	ctx->refs++;
	pthread_mutex_unlock(&lock);
	*pctx = ctx;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
	CUcontext ctx;
	CUresult rc = primary_of(dev, &ctx);

	if (rc != CUDA_SUCCESS)
		return rc;
	bool last = false;

	pthread_mutex_lock(&lock);
	if (ctx->refs == 0)
		rc = CUDA_ERROR_INVALID_CONTEXT;
	else
		last = --ctx->refs == 0;
	pthread_mutex_unlock(&lock);
	if (last)
		vgpu_cuda_cls_reset(ctx);
	return rc;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
	CUcontext ctx;
	CUresult rc = primary_of(dev, &ctx);

	if (rc != CUDA_SUCCESS)
		return rc;
	pthread_mutex_lock(&lock);
	ctx->flags = 0;
	pthread_mutex_unlock(&lock);
	vgpu_cuda_cls_reset(ctx);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
	const unsigned int known = CU_CTX_SCHED_MASK | CU_CTX_LMEM_RESIZE_TO_MAX |
				   CU_CTX_COREDUMP_ENABLE | CU_CTX_USER_COREDUMP_ENABLE |
				   CU_CTX_SYNC_MEMOPS;
	CUcontext ctx;
	CUresult rc = primary_of(dev, &ctx);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (flags & ~known)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	ctx->flags = flags;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
	CUcontext ctx;
	CUresult rc = primary_of(dev, &ctx);

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!flags || !active)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	*flags = ctx->flags;
	*active = ctx->refs > 0;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	*pctx = current;
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (ctx && vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	current = ctx;
	return CUDA_SUCCESS;
}

/* cuCtxCreate, every version: a new handle on @dev, made current. */
static CUresult create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	CUcontext ctx = NULL;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	if (!vgpu_cuda_device(dev))
		return CUDA_ERROR_INVALID_DEVICE;
	if (current && depth == STACK_DEPTH)
		return CUDA_ERROR_OUT_OF_MEMORY; /* no room to keep the one it replaces */
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_CREATED && !ctx; i++)
		if (atomic_load_explicit(&created[i].dev, memory_order_relaxed) == 0)
			ctx = &created[i];
	if (ctx) {
		ctx->refs = 1;
		ctx->flags = flags;
		ctx->id = next_id++;
		atomic_store_explicit(&ctx->dev, dev + 1, memory_order_release);
	}
	pthread_mutex_unlock(&lock);
	if (!ctx)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (current)
		stack[depth++] = current;
	current = ctx;
	*pctx = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	return create(pctx, flags, dev);
}

CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
			unsigned int flags, CUdevice dev)
{
	if (numParams < 0 || (numParams && !paramsArray))
		return CUDA_ERROR_INVALID_VALUE;
	return create(pctx, flags, dev); /* affinity (SM counts) is the host's to set */
}

CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags,
			CUdevice dev)
{
	(void)ctxCreateParams; /* its parameters (affinity, CIG) are the host's */
	return create(pctx, flags, dev);
}

CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!(ctx >= created && ctx < created + MAX_CREATED) || vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	vgpu_cuda_cls_reset(ctx);
	pthread_mutex_lock(&lock);
	atomic_store_explicit(&ctx->dev, 0, memory_order_release);
	pthread_mutex_unlock(&lock);
	if (current == ctx)
		current = depth ? stack[--depth] : NULL;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!ctx || vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (current) {
		if (depth == STACK_DEPTH)
			return CUDA_ERROR_OUT_OF_MEMORY;
		stack[depth++] = current;
	}
	current = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!current)
		return CUDA_ERROR_INVALID_CONTEXT;
	if (pctx)
		*pctx = current;
	current = depth ? stack[--depth] : NULL;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetFlags(unsigned int *flags)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!flags)
		return CUDA_ERROR_INVALID_VALUE;
	if (!current)
		return CUDA_ERROR_INVALID_CONTEXT;
	pthread_mutex_lock(&lock);
	*flags = current->flags;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!ctxId)
		return CUDA_ERROR_INVALID_VALUE;
	if (!ctx)
		ctx = current;
	if (!ctx || vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	/* The primary contexts' ids are their devices' numbers from 1. */
	*ctxId = ctx >= created && ctx < created + MAX_CREATED
			 ? ctx->id : (unsigned long long)(ctx - primary) + 1;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *device)
{
	return cuCtxGetDevice_v2(device, NULL);
}

/* CUDA 13: the device of @ctx, or of the current context when NULL. */
CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (!ctx)
		ctx = current;
	if (!ctx || vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	*device = vgpu_cuda_ctx_device(ctx);
	return CUDA_SUCCESS;
}

CUdevice vgpu_cuda_current_device(void)
{
	CUdevice dev = current ? vgpu_cuda_ctx_device(current) : 0;

	return dev < 0 ? 0 : dev;
}

/* CTX_INFO's answers, by device: the API version, then each limit. */
static uint64_t info_value[VGPU_CUDA_MAX_DEVICES][1 + CU_LIMIT_MAX];
static bool info_known[VGPU_CUDA_MAX_DEVICES][1 + CU_LIMIT_MAX];
static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;

/* CTX_INFO @what (@limit) of device @dev's context, asked once: the API
 * version never changes, and a limit only through cuCtxSetLimit, which
 * forgets it (the host's driver may round what it was given; and the
 * VM's other processes share the context: their sets are not seen here
 * until this process sets the limit itself). */
static CUresult ctx_info(CUdevice dev, uint64_t what, uint64_t limit, uint64_t *ret)
{
	uint64_t (*value)[1 + CU_LIMIT_MAX] = info_value;
	bool (*known)[1 + CU_LIMIT_MAX] = info_known;
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_CTX_INFO, .v = { what, limit } }, r;
	size_t slot = what ? 1 + (size_t)limit : 0;
	bool have;
	CUresult rc;

	/* No lock of this file held across the call: call.c's lock, taken
	 * there, is held by posts that ask this file for the current device. */
	pthread_mutex_lock(&info_lock);
	have = known[dev][slot];
	*ret = value[dev][slot];
	pthread_mutex_unlock(&info_lock);
	if (have)
		return CUDA_SUCCESS;
	rc = vgpu_cuda_call_on(dev, &m, NULL, &r, NULL, 0);
	if (rc != CUDA_SUCCESS)
		return rc;
	pthread_mutex_lock(&info_lock);
	known[dev][slot] = true;
	value[dev][slot] = *ret = r.v[0];
	pthread_mutex_unlock(&info_lock);
	return CUDA_SUCCESS;
}

CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
	uint64_t v = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	if (!ctx)
		ctx = current;
	if (!ctx || vgpu_cuda_ctx_device(ctx) < 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	rc = ctx_info(vgpu_cuda_ctx_device(ctx), 0, 0, &v);
	if (rc == CUDA_SUCCESS)
		*version = (unsigned int)v;
	return rc;
}

CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
	uint64_t v = 0;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pvalue || (unsigned)limit >= CU_LIMIT_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	rc = ctx_info(vgpu_cuda_current_device(), 1, (uint64_t)limit, &v);
	if (rc == CUDA_SUCCESS)
		*pvalue = (size_t)v;
	return rc;
}

/* The context's limit, set on the host: what it reserves of the GPU's
 * memory (the stack, the printf FIFO, the malloc heap) counts against
 * the VM's quota there (CUDA_ERROR_OUT_OF_MEMORY over it); the persisting
 * L2 set-aside and the device runtime's limits are refused
 * (CUDA_ERROR_UNSUPPORTED_LIMIT): the L2 is every VM's. */
CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
	CUdevice dev = vgpu_cuda_current_device();
	struct vgpu_cuda_msg m = { .call = VGPU_CUDA_CTX_INFO,
				   .v = { 2, (uint64_t)limit, (uint64_t)value } }, r;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if ((unsigned)limit >= CU_LIMIT_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	rc = vgpu_cuda_call_on(dev, &m, NULL, &r, NULL, 0);
	if (rc == CUDA_SUCCESS) {
		pthread_mutex_lock(&info_lock);
		info_known[dev][1 + (size_t)limit] = false;
		pthread_mutex_unlock(&info_lock);
	}
	return rc;
}

/* No profiler runs in the guest: starting and stopping it is nothing to
 * do (as under NVIDIA's driver when no tool is attached). */
CUresult cuProfilerStart(void)
{
	return vgpu_cuda_ready();
}

CUresult cuProfilerStop(void)
{
	return vgpu_cuda_ready();
}
