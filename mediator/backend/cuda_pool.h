/* SPDX-License-Identifier: MIT */
/*
 * cuda_pool.h - reusable CUDA memory: device buffers for the launcher, and
 * pinned host buffers for host_alloc(). cudaMalloc, pinning and their
 * frees are slow and may synchronize the device, so blocks are kept in size
 * classes (four per power of two: at most 25% slack) and handed out again.
 *
 * Device pools are bounded by the bytes they hold (in use plus cached);
 * host pools are bounded only by what they cache. A host block is
 * anonymous memory faulted in first, then registered (cudaHostRegister):
 * that holds the driver's lock about 9x less time than cudaHostAlloc.
 * Host blocks the cache does not keep are unregistered and unmapped by a
 * thread of the pool's own, never on the thread that gives them back.
 *
 * Never: call CUDA from vgpu_cuda_pool_put() (it runs on the loop and the
 * completion threads and must not stall on a cudaFree or an
 * unregistration; the one exception: no memory for a list node), call
 * CUDA from vgpu_cuda_pool_try_get(), or hand one block to two users.
 */
#ifndef VGPU_CUDA_POOL_H
#define VGPU_CUDA_POOL_H

#include <stdbool.h>
#include <stddef.h>

enum vgpu_cuda_pool_kind {
	VGPU_CUDA_POOL_DEVICE, /* cudaMalloc */
	VGPU_CUDA_POOL_HOST,   /* mmap + cudaHostRegister(portable) */
};

struct vgpu_cuda_pool;

/*
 * A pool of @kind on @device. @limit_held (device pools; 0: none) bounds
 * the bytes in use plus cached; @limit_cached bounds the bytes kept for
 * reuse. The caller must have made @device current. *ret is freed with
 * vgpu_cuda_pool_free().
 */
int vgpu_cuda_pool_new(enum vgpu_cuda_pool_kind kind, int device, size_t limit_held,
		       size_t limit_cached, struct vgpu_cuda_pool **ret);

/* Bytes a request of @size really takes (its class), or 0 if too large. */
size_t vgpu_cuda_pool_class_bytes(const struct vgpu_cuda_pool *p, size_t size);

/* Whether blocks of these @count sizes could ever be held at once. */
bool vgpu_cuda_pool_fits(const struct vgpu_cuda_pool *p, const size_t *sizes, int count);

/*
 * A block of at least @size bytes in *ret. VGPU_NO_MEMORY when it can never
 * fit or CUDA has no memory for it; VGPU_BUSY when it fits only after blocks
 * in use come back (device pools). *ret is untouched on failure.
 */
int vgpu_cuda_pool_get(struct vgpu_cuda_pool *p, size_t size, void **ret);

/* Whether a block for @size is cached now (get() would call no CUDA). */
bool vgpu_cuda_pool_cached(struct vgpu_cuda_pool *p, size_t size);

/* A cached block of at least @size bytes in *ret, or VGPU_BUSY when none
 * is cached (nothing made: no CUDA call). */
int vgpu_cuda_pool_try_get(struct vgpu_cuda_pool *p, size_t size, void **ret);

/* Give back a block from vgpu_cuda_pool_get() with the same @size. */
void vgpu_cuda_pool_put(struct vgpu_cuda_pool *p, void *ptr, size_t size);

/* Release every cached block; blocks still in use are leaked. NULL is fine. */
void vgpu_cuda_pool_free(struct vgpu_cuda_pool *p);

#endif
