/* SPDX-License-Identifier: MIT */
/*
 * cuda_pool.c - size-class caches of device and pinned host memory (see
 * cuda_pool.h).
 *
 * Class c is (min << c/4) * (4 + c%4) / 4 bytes. Cached blocks sit in one
 * LIFO list per class (the most recently used block is the warmest). When a
 * device pool would pass its bound, cached blocks of the largest classes are
 * released first. A host block returned when the cache is full goes to the
 * pool's releaser thread. A block returned while the host is out of memory
 * for the list node is released at once: the only CUDA call on the put path.
 *
 * Never: let in_use + cached of a device pool pass limit_held.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "cuda_pool.h"
#include "vgpu_error.h"
#include "vgpu_mutex.h"

#define CLASSES 168 /* 42 octaves above the minimum */

struct block {
	void *ptr;
	size_t bytes;         /* on the release list: its class's size */
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
	int device;           /* the releaser's current device */
	struct block *release; /* host pools: blocks for the releaser */
	bool stopping;         /* host pools: the releaser is to end */
	pthread_cond_t release_cond;
	pthread_t releaser;
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

/* A host block's mapping: whole pages. */
static size_t host_map_bytes(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) / page * page;
}

/* A host block is private anonymous memory faulted in by the kernel
 * (MAP_POPULATE), then registered: cudaHostAlloc does both under the
 * driver's lock, which holds back every other submission of the process
 * meanwhile; this way only the registration does (about 9x less time:
 * docs/performance.md, run 27). */
static cudaError_t raw_alloc(const struct vgpu_cuda_pool *p, size_t bytes, void **ret)
{
	cudaError_t e;
	void *ptr;

	if (p->kind == VGPU_CUDA_POOL_DEVICE)
		return cudaMalloc(ret, bytes);
	ptr = mmap(NULL, host_map_bytes(bytes), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (ptr == MAP_FAILED)
		return cudaErrorMemoryAllocation;
	/* Mapped: a small work's kernel reads and writes it in place. */
	e = cudaHostRegister(ptr, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped);
	if (e != cudaSuccess) {
		munmap(ptr, host_map_bytes(bytes));
		return e;
	}
	*ret = ptr;
	return cudaSuccess;
}

static void raw_free(const struct vgpu_cuda_pool *p, void *ptr, size_t bytes)
{
	if (p->kind == VGPU_CUDA_POOL_DEVICE) {
		cudaFree(ptr);
		return;
	}
	cudaHostUnregister(ptr);
	munmap(ptr, host_map_bytes(bytes));
}

static void *releaser(void *arg);

int vgpu_cuda_pool_new(enum vgpu_cuda_pool_kind kind, int device, size_t limit_held,
		       size_t limit_cached, struct vgpu_cuda_pool **ret)
{
	struct vgpu_cuda_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return VGPU_NO_MEMORY;
	vgpu_mutex_init(&p->lock);
	pthread_cond_init(&p->release_cond, NULL);
	p->kind = kind;
	p->device = device;
	p->min_bytes = kind == VGPU_CUDA_POOL_DEVICE ? 64 * 1024 : 4096;
	p->limit_held = kind == VGPU_CUDA_POOL_DEVICE && limit_held ? limit_held : SIZE_MAX;
	p->limit_cached = limit_cached;
	if (kind == VGPU_CUDA_POOL_HOST) {
		if (pthread_create(&p->releaser, NULL, releaser, p) != 0) {
			pthread_cond_destroy(&p->release_cond);
			pthread_mutex_destroy(&p->lock);
			free(p);
			return VGPU_NO_MEMORY;
		}
	}
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

/* Take cached blocks off their lists, largest first, until @need more
 * bytes fit under the bound (or, with @need == SIZE_MAX, all of them);
 * the caller releases them after unlocking. Lock held. */
static struct block *evict(struct vgpu_cuda_pool *p, size_t need)
{
	struct block *out = NULL;

	for (int c = CLASSES - 1; c >= 0 && p->cached; c--) {
		while (p->list[c]) {
			if (need != SIZE_MAX && p->in_use + p->cached <= p->limit_held - need)
				return out;
			struct block *b = p->list[c];

			p->list[c] = b->next;
			b->bytes = class_size(p, (unsigned int)c);
			p->cached -= b->bytes;
			b->next = out;
			out = b;
		}
	}
	return out;
}

/* Lock not held: release every block of @list (blocks off their lists). */
static void release(const struct vgpu_cuda_pool *p, struct block *list)
{
	while (list) {
		struct block *b = list;

		list = b->next;
		raw_free(p, b->ptr, b->bytes);
		free(b);
	}
}

/* Under the lock, take @bytes back from in_use (a block not made) and
 * the cached blocks from their lists. */
static struct block *evict_all(struct vgpu_cuda_pool *p, size_t unreserve)
{
	struct block *out;

	pthread_mutex_lock(&p->lock);
	p->in_use -= unreserve;
	out = evict(p, SIZE_MAX);
	pthread_mutex_unlock(&p->lock);
	return out;
}

/* Host pools: release the blocks put() did not keep, off the putter's
 * thread (the loop or the completion thread: an unregistration holds the
 * driver's lock for milliseconds). */
static void *releaser(void *arg)
{
	struct vgpu_cuda_pool *p = arg;

	cudaSetDevice(p->device);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct block *list = p->release;

		if (!list && p->stopping)
			break;
		if (!list) {
			pthread_cond_wait(&p->release_cond, &p->lock);
			continue;
		}
		p->release = NULL;
		pthread_mutex_unlock(&p->lock);
		release(p, list);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Lock held: take a cached block of class @c into *ret; false if none. */
static bool take_cached(struct vgpu_cuda_pool *p, unsigned int c, void **ret)
{
	struct block *b = p->list[c];

	if (!b)
		return false;
	p->list[c] = b->next;
	p->cached -= class_size(p, c);
	p->in_use += class_size(p, c);
	*ret = b->ptr;
	free(b);
	return true;
}

int vgpu_cuda_pool_try_get(struct vgpu_cuda_pool *p, size_t size, void **ret)
{
	unsigned int c = class_of(p, size ? size : 1);
	bool got;

	if (c >= CLASSES)
		return VGPU_BUSY;
	pthread_mutex_lock(&p->lock);
	got = take_cached(p, c, ret);
	pthread_mutex_unlock(&p->lock);
	return got ? VGPU_OK : VGPU_BUSY;
}

/* A new block is made outside the lock (pinning takes milliseconds per MiB,
 * and the loop thread asks the pool what it caches meanwhile), its bytes
 * reserved in in_use first. */
int vgpu_cuda_pool_get(struct vgpu_cuda_pool *p, size_t size, void **ret)
{
	unsigned int c = class_of(p, size ? size : 1);
	struct block *evicted = NULL;
	size_t bytes;
	void *ptr = NULL;

	if (c >= CLASSES || class_size(p, c) > p->limit_held)
		return VGPU_NO_MEMORY;
	bytes = class_size(p, c);
	pthread_mutex_lock(&p->lock);
	if (take_cached(p, c, ret)) {
		pthread_mutex_unlock(&p->lock);
		return VGPU_OK;
	}
	if (p->in_use + p->cached > p->limit_held - bytes)
		evicted = evict(p, bytes);
	bool room = p->in_use <= p->limit_held - bytes;
	if (room)
		p->in_use += bytes;
	pthread_mutex_unlock(&p->lock);
	release(p, evicted);
	if (!room)
		return VGPU_BUSY;
	if (raw_alloc(p, bytes, &ptr) != cudaSuccess) {
		cudaGetLastError(); /* an allocation failure is not sticky: clear it */
		release(p, evict_all(p, 0));
		if (raw_alloc(p, bytes, &ptr) != cudaSuccess) {
			cudaGetLastError();
			release(p, evict_all(p, bytes));
			return VGPU_NO_MEMORY;
		}
	}
	*ret = ptr;
	return VGPU_OK;
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
	b = malloc(sizeof(*b));
	pthread_mutex_lock(&p->lock);
	p->in_use -= bytes;
	if (b && p->cached + bytes <= p->limit_cached) {
		b->ptr = ptr;
		b->next = p->list[c];
		p->list[c] = b;
		p->cached += bytes;
	} else if (b && p->kind == VGPU_CUDA_POOL_HOST) { /* it has a releaser */
		b->ptr = ptr;
		b->bytes = bytes;
		b->next = p->release;
		p->release = b;
		pthread_cond_signal(&p->release_cond);
	} else {
		raw_free(p, ptr, bytes); /* no memory for the node: at once */
		free(b);
	}
	pthread_mutex_unlock(&p->lock);
}

void vgpu_cuda_pool_free(struct vgpu_cuda_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->release_cond);
	pthread_mutex_unlock(&p->lock);
	if (p->kind == VGPU_CUDA_POOL_HOST)
		pthread_join(p->releaser, NULL); /* it empties its list first */
	release(p, evict_all(p, 0));
	pthread_cond_destroy(&p->release_cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
