/* SPDX-License-Identifier: MIT */
/*
 * host.c - page-locked host memory: cuMemHostAlloc, cuMemAllocHost,
 * cuMemFreeHost, cuMemHostGetFlags, cuMemHostRegister/Unregister.
 *
 * cuMemHostAlloc's memory is carved from the process's window (window.c),
 * which the worker has page-locked: copies from and to it are the GPU's
 * DMA (mem.c), and when the host's driver maps the window for kernels
 * too, cuMemHostGetDevicePointer answers its device address. Without a
 * window, or once it is full, host memory is the guest's own (whole
 * pages), its copies staged through the window or carried in the calls,
 * and mapped memory (DEVICEMAP) is refused with CUDA_ERROR_NOT_SUPPORTED.
 * cuMemHostRegister moves whole pages of the caller's private memory into
 * the window in place (window.c), and keeps other memory as it is (its
 * copies staged). Freeing or unregistering waits for the asynchronous
 * window copies posted before it, as cudaFreeHost does. Every block is remembered, so that freeing checks what it
 * frees and the flags can be asked for.
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
	bool window;              /* carved from the window */
	void *adopted;            /* registered: its pages moved into the window */
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
static CUresult remember(void *p, size_t size, unsigned int flags, bool registered, bool window)
{
	struct host_block *b = malloc(sizeof(*b));
	CUresult rc = CUDA_SUCCESS;

	if (!b)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*b = (struct host_block){ .p = p, .size = size, .flags = flags, .registered = registered,
				  .window = window };
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
	p = vgpu_cuda_connect() == CUDA_SUCCESS
		    ? vgpu_cuda_window_alloc(bytesize, Flags & CU_MEMHOSTALLOC_DEVICEMAP)
		    : NULL;
	bool window = p != NULL;

	if (!p && (Flags & CU_MEMHOSTALLOC_DEVICEMAP))
		return CUDA_ERROR_NOT_SUPPORTED;
	if (!p)
		p = mmap(NULL, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	rc = remember(p, bytesize, Flags, false, window);
	if (rc != CUDA_SUCCESS) {
		if (window)
			vgpu_cuda_window_free(p);
		else
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
	if (b->window || b->adopted)
		vgpu_cuda_window_settle();
	if (b->window)
		vgpu_cuda_window_free(b->p);
	else if (b->adopted)
		vgpu_cuda_window_release(b->adopted);
	else if (!registered)
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

/* The caller's memory is moved into the window in place (its pages
 * become window pages at the same address: window.c), so that its copies
 * are DMA and, where the host maps the window, kernels reach it too.
 * Without room there it is kept as it is, its copies staged, and mapped
 * registration (DEVICEMAP) is refused. */
CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
	struct host_block **b;
	void *start;
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!p || bytesize == 0 || (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE |
							CU_MEMHOSTREGISTER_DEVICEMAP)))
		return CUDA_ERROR_INVALID_VALUE;
	rc = remember(p, bytesize, Flags, true, false);
	if (rc != CUDA_SUCCESS)
		return rc;
	start = vgpu_cuda_connect() == CUDA_SUCCESS ? vgpu_cuda_window_adopt(p, bytesize) : NULL;
	if (start && (Flags & CU_MEMHOSTREGISTER_DEVICEMAP) && !vgpu_cuda_window_device(p)) {
		vgpu_cuda_window_release(start); /* in the window, but not mapped */
		start = NULL;
	}
	if (!start && (Flags & CU_MEMHOSTREGISTER_DEVICEMAP)) {
		forget(p, true);
		return CUDA_ERROR_NOT_SUPPORTED;
	}
	pthread_mutex_lock(&lock);
	b = find(p, true);
	if (b)
		(*b)->adopted = start;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void *p)
{
	return forget(p, true);
}

/* Window memory, when the host's driver mapped the window for kernels:
 * its device address (with unified addressing every page-locked block is
 * mapped, as under NVIDIA's driver). */
CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
	CUresult rc = vgpu_cuda_ready();

	if (rc != CUDA_SUCCESS)
		return rc;
	if (!pdptr || !p || Flags)
		return CUDA_ERROR_INVALID_VALUE;
	*pdptr = vgpu_cuda_window_device(p);
	return *pdptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
