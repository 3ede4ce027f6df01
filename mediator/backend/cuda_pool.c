/*
 * cuda_pool.c - size-class caches of device and pinned host memory (see
 * cuda_pool.h).
 *
 * Class c is (min << c/4) * (4 + c%4) / 4 bytes. Cached blocks sit in one
 * LIFO list per class (the most recently used block is the warmest). When a
 * device pool would pass its bound, cached blocks of the largest classes are
 * released first. A device block returned while the host is out of memory
 * for the list node is released at once: the only CUDA call on the put path.
 *
 * Never: let in_use + cached of a device pool pass limit_held.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "cuda_pool.h"
#include "vgpu_error.h"

#define CLASSES 168 /* 42 octaves above the minimum */

struct block {
	void *ptr;
	struct block *next;
};

struct vgpu_cuda_pool {
	pthread_mutex_t lock;
	enum vgpu_cuda_pool_kind kind;
	size_t min_bytes;     /* class 0 */
	size_t limit_held;    /* SIZE_MAX: none */
	size_t limit_cached;
	size_t in_use;        /* bytes handed out */
	size_t cached;        /* bytes in the lists */
	struct block *list[CLASSES];
};

static size_t class_size(const struct vgpu_cuda_pool *p, unsigned int c)
{
	return (p->min_bytes << (c / 4)) / 4 * (4 + c % 4);
}

/* The class holding @size, or CLASSES when none does. */
static unsigned int class_of(const struct vgpu_cuda_pool *p, size_t size)
{
	unsigned int c = 0;

	while (c < CLASSES && class_size(p, c) < size)
		c++;
	return c;
}

static cudaError_t raw_alloc(const struct vgpu_cuda_pool *p, size_t bytes, void **ret)
{
	if (p->kind == VGPU_CUDA_POOL_DEVICE)
		return cudaMalloc(ret, bytes);
	return cudaHostAlloc(ret, bytes, cudaHostAllocPortable);
}

static void raw_free(const struct vgpu_cuda_pool *p, void *ptr)
{
	if (p->kind == VGPU_CUDA_POOL_DEVICE)
		cudaFree(ptr);
	else
		cudaFreeHost(ptr);
}

int vgpu_cuda_pool_new(enum vgpu_cuda_pool_kind kind, size_t limit_held, size_t limit_cached,
		       struct vgpu_cuda_pool **ret)
{
	struct vgpu_cuda_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return VGPU_NO_MEMORY;
	pthread_mutex_init(&p->lock, NULL);
	p->kind = kind;
	p->min_bytes = kind == VGPU_CUDA_POOL_DEVICE ? 64 * 1024 : 4096;
	p->limit_held = kind == VGPU_CUDA_POOL_DEVICE && limit_held ? limit_held : SIZE_MAX;
	p->limit_cached = limit_cached;
	*ret = p;
	return VGPU_OK;
}

size_t vgpu_cuda_pool_class_bytes(const struct vgpu_cuda_pool *p, size_t size)
{
	unsigned int c = class_of(p, size);

	return c < CLASSES ? class_size(p, c) : 0;
}

bool vgpu_cuda_pool_fits(const struct vgpu_cuda_pool *p, const size_t *sizes, int count)
{
	size_t total = 0;

	for (int i = 0; i < count; i++) {
		size_t bytes = vgpu_cuda_pool_class_bytes(p, sizes[i]);

		if (!bytes || bytes > p->limit_held - total)
			return false;
		total += bytes;
	}
	return true;
}

/* Release cached blocks, largest first, until @need more bytes fit under the
 * bound (or, with @need == SIZE_MAX, all of them). Lock held. */
static void evict(struct vgpu_cuda_pool *p, size_t need)
{
	for (int c = CLASSES - 1; c >= 0 && p->cached; c--) {
		while (p->list[c]) {
			if (need != SIZE_MAX && p->in_use + p->cached <= p->limit_held - need)
				return;
			struct block *b = p->list[c];

			p->list[c] = b->next;
			p->cached -= class_size(p, (unsigned int)c);
			raw_free(p, b->ptr);
			free(b);
		}
	}
}

int vgpu_cuda_pool_get(struct vgpu_cuda_pool *p, size_t size, void **ret)
{
	unsigned int c = class_of(p, size ? size : 1);
	size_t bytes;
	void *ptr = NULL;
	int rc = VGPU_OK;

	if (c >= CLASSES || class_size(p, c) > p->limit_held)
		return VGPU_NO_MEMORY;
	bytes = class_size(p, c);
	pthread_mutex_lock(&p->lock);
	if (p->list[c]) {
		struct block *b = p->list[c];

		p->list[c] = b->next;
		p->cached -= bytes;
		ptr = b->ptr;
		free(b);
	} else {
		if (p->in_use + p->cached > p->limit_held - bytes)
			evict(p, bytes);
		if (p->in_use > p->limit_held - bytes) {
			rc = VGPU_BUSY;
		} else if (raw_alloc(p, bytes, &ptr) != cudaSuccess) {
			cudaGetLastError(); /* an allocation failure is not sticky: clear it */
			evict(p, SIZE_MAX);
			if (raw_alloc(p, bytes, &ptr) != cudaSuccess) {
				cudaGetLastError();
				rc = VGPU_NO_MEMORY;
			}
		}
	}
	if (rc == VGPU_OK) {
		p->in_use += bytes;
		*ret = ptr;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

bool vgpu_cuda_pool_cached(struct vgpu_cuda_pool *p, size_t size)
{
	unsigned int c = class_of(p, size ? size : 1);
	bool cached;

	if (c >= CLASSES)
		return false;
	pthread_mutex_lock(&p->lock);
	cached = p->list[c] != NULL;
	pthread_mutex_unlock(&p->lock);
	return cached;
}

void vgpu_cuda_pool_put(struct vgpu_cuda_pool *p, void *ptr, size_t size)
{
	unsigned int c = class_of(p, size ? size : 1);
	size_t bytes = class_size(p, c);
	struct block *b;

	if (!ptr)
		return;
	pthread_mutex_lock(&p->lock);
	p->in_use -= bytes;
	b = p->cached + bytes <= p->limit_cached ? malloc(sizeof(*b)) : NULL;
	if (b) {
		b->ptr = ptr;
		b->next = p->list[c];
		p->list[c] = b;
		p->cached += bytes;
	} else {
		raw_free(p, ptr);
	}
	pthread_mutex_unlock(&p->lock);
}

void vgpu_cuda_pool_free(struct vgpu_cuda_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	evict(p, SIZE_MAX);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
