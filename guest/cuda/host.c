/* SPDX-License-Identifier: MIT */
/*
 * host.c - page-locked host memory: cuMemHostAlloc, cuMemAllocHost,
 * cuMemFreeHost, cuMemHostGetFlags, cuMemHostRegister/Unregister.
 *
 * In a VM there is nothing to lock: the copies' bytes travel in the calls
 * (mem.c), so host memory is the guest's own, allocated here (whole
 * pages, as the driver's) and remembered, so that freeing checks what it
 * frees and the flags can be asked for. Mapped memory (DEVICEMAP: a
 * device pointer to host memory) needs the VM's window, which this
 * channel does not have yet: refused with CUDA_ERROR_NOT_SUPPORTED.
 *
 * Never: free or forget memory that is not one of ours.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "shim.h"

struct host_block {
	struct host_block *next;
	char *p;
	size_t size;
	unsigned int flags;
	bool registered;          /* the caller's memory (cuMemHostRegister) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_block *blocks;

/* The block holding @p (its start alone when @start), or NULL. Lock held. */
static struct host_block **find(const void *p, bool start)
{
	for (struct host_block **b = &blocks; *b; b = &(*b)->next)
		if (start ? (*b)->p == p
			  : (const char *)p >= (*b)->p && (const char *)p < (*b)->p + (*b)->size)
			return b;
	return NULL;
}

/* Keep [@p, @p + @size); CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED when
 * it overlaps a block kept already (checked and kept under one lock). */
static CUresult remember(void *p, size_t size, unsigned int flags, bool registered)
{
	struct host_block *b = malloc(sizeof(*b));
	CUresult rc = CUDA_SUCCESS;

	if (!b)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*b = (struct host_block){ .p = p, .size = size, .flags = flags, .registered = registered };
	pthread_mutex_lock(&lock);
	for (struct host_block *o = blocks; o && rc == CUDA_SUCCESS; o = o->next)
		if (b->p < o->p + o->size && o->p < b->p + b->size)
			rc = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
	if (rc == CUDA_SUCCESS) {
		b->next = blocks;
		blocks = b;
	}
	pthread_mutex_unlock(&lock);
	if (rc != CUDA_SUCCESS)
		free(b);
	return rc;
}

CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
	CUresult rc = vgpu_cuda_ready();
	void *p;

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pp || bytesize == 0 ||
	    (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
				 CU_MEMHOSTALLOC_WRITECOMBINED)))
		return CUDA_ERROR_INVALID_VALUE;
	if (Flags & CU_MEMHOSTALLOC_DEVICEMAP)
		return CUDA_ERROR_NOT_SUPPORTED;
	p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = remember(p, bytesize, Flags, false);
	if (rc != CUDA_SUCCESS) {
		munmap(p, bytesize);
		return rc;
	}
	*pp = p;
	return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
	return cuMemHostAlloc(pp, bytesize, 0);
}

/* Forget the block starting at @p, of the kind asked (@registered);
 * unmap it when it is ours. */
static CUresult forget(void *p, bool registered)
{
	struct host_block **at, *b = NULL;

	pthread_mutex_lock(&lock);
	at = p ? find(p, true) : NULL;
	if (at && (*at)->registered == registered) {
		b = *at;
		*at = b->next;
	}
	pthread_mutex_unlock(&lock);
	if (!b)
		return registered ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : CUDA_ERROR_INVALID_VALUE;
	if (!registered)
		munmap(b->p, b->size);
	free(b);
	return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *p)
{
	return forget(p, false);
}

CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
	struct host_block **b;

	if (!pFlags)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	b = find(p, false);
	if (b)
		*pFlags = (*b)->flags;
	pthread_mutex_unlock(&lock);
	return b ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The flags registration may have here: no mapping, no I/O memory. */
CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!p || bytesize == 0 || (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE |
							CU_MEMHOSTREGISTER_DEVICEMAP)))
		return CUDA_ERROR_INVALID_VALUE;
	if (Flags & CU_MEMHOSTREGISTER_DEVICEMAP)
		return CUDA_ERROR_NOT_SUPPORTED;
	return remember(p, bytesize, Flags, true);
}

CUresult cuMemHostUnregister(void *p)
{
	return forget(p, true);
}
