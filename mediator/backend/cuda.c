/* SPDX-License-Identifier: MIT */
/*
 * cuda.c - the CUDA backend: the catalogue on one GPU, in the mediator's one
 * CUDA context (the runtime's primary context of config.device). This file
 * holds the ops table: probe, init and fini (streams, cuBLAS handles,
 * pools), submit, host_alloc. cuda_sched.c runs the works, cuda_launch.c
 * says what one work enqueues.
 *
 * Streams. Each priority level has VGPU_CUDA_LANES streams created with one
 * CUDA priority: level 2 (high) the device's greatest, level 0 the least,
 * level 1 between; and one cuBLAS handle bound to its first stream.
 *
 * submit() only queues the work (one FIFO per level) and returns: it never
 * waits on the GPU. A work's slot (and max_inflight capacity) is released
 * before its done() runs, so a submitter woken by done() never sees a
 * spurious VGPU_BUSY.
 *
 * Never: call done() from submit(), or return from fini() while a work is
 * not done.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend_internal.h"
#include "cuda_internal.h"
#include "vgpu_mutex.h"

#define HOST_CACHE_BYTES ((size_t)2 << 30) /* pinned memory kept for reuse */
#define HOST_HEADER 64                   /* in front of each host_alloc() block */
#define HOST_MAGIC 0x76677075686f7374ull

int vgpu_cuda_status(cudaError_t e)
{
	return e == cudaErrorMemoryAllocation ? VGPU_NO_MEMORY : VGPU_BACKEND;
}

static int cuda_probe(char *err, size_t err_size)
{
	struct vgpu_cublas blas;
	int count = 0, usable = 0;
	cudaError_t e = cudaGetDeviceCount(&count);

	if (e != cudaSuccess) {
		snprintf(err, err_size, "cuda: no usable device: %s (%s)", cudaGetErrorString(e),
			 cudaGetErrorName(e));
		return VGPU_NOT_FOUND;
	}
	for (int d = 0; d < count; d++) {
		int major = 0, mode = cudaComputeModeProhibited;

		if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) ==
			    cudaSuccess &&
		    cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, d) == cudaSuccess &&
		    major >= 9 && mode != cudaComputeModeProhibited)
			usable++;
	}
	if (usable == 0) {
		snprintf(err, err_size,
			 count ? "cuda: %d device(s), none of compute capability 9.0 or newer "
				 "and not prohibited"
			       : "cuda: no CUDA device (%d)",
			 count);
		return VGPU_NOT_FOUND;
	}
	if (vgpu_cublas_load(&blas, err, err_size) != VGPU_OK)
		return VGPU_NOT_FOUND;
	vgpu_cublas_unload(&blas);
	if (err && err_size)
		err[0] = '\0';
	return VGPU_OK;
}

/* Release everything of @c that exists; threads must be stopped. */
static void destroy(struct vgpu_cuda_ctx *c)
{
	cudaSetDevice(c->device);
	if (c->gate) /* nothing may hold on: the streams are synchronized below */
		for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++)
			atomic_store(&c->gate[l], 0);
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++) {
		struct vgpu_cuda_level *lv = &c->level[l];

		if (lv->blas)
			c->cublas.destroy(lv->blas);
		for (int i = 0; i < VGPU_CUDA_LANES; i++) {
			struct vgpu_cuda_lane *ln = &lv->lane[i];

			if (ln->stream) {
				cudaStreamSynchronize(ln->stream);
				cudaStreamDestroy(ln->stream);
			}
			cudaFree(ln->buf[0]);
			cudaFree(ln->buf[1]);
			cudaFree(ln->scratch);
			cudaFreeHost(ln->stage);
		}
	}
	if (c->jobs) {
		for (int j = 0; j < c->max_inflight; j++) {
			for (int i = 0; i < VGPU_CUDA_LANES; i++) {
				if (c->jobs[j].join[i])
					cudaEventDestroy(c->jobs[j].join[i]);
			}
			if (c->jobs[j].done_ev)
				cudaEventDestroy(c->jobs[j].done_ev);
			if (c->jobs[j].block_ev)
				cudaEventDestroy(c->jobs[j].block_ev);
			free(c->jobs[j].copies);
			cudaFreeHost(c->jobs[j].bounce);
		}
	}
	vgpu_cuda_copier_free(c->copier);
	vgpu_cuda_hold_free(c);
	cudaFreeHost(c->results);
	vgpu_cuda_pool_free(c->dev_pool);
	vgpu_cuda_pool_free(c->host_pool);
	vgpu_cublas_unload(&c->cublas);
	for (int k = 0; k < VGPU_CUDA_LAUNCHERS; k++)
		pthread_cond_destroy(&c->wake[k].cond);
	pthread_cond_destroy(&c->idle_cond);
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++)
		pthread_cond_destroy(&c->level[l].fly_cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->fly_lock);
	pthread_mutex_destroy(&c->hold_lock);
	free(c->jobs);
	free(c);
}

static int fail(struct vgpu_cuda_ctx *c, int rc, char *err, size_t err_size, const char *what,
		cudaError_t e)
{
	if (e != cudaSuccess)
		snprintf(err, err_size, "cuda: %s: %s", what, cudaGetErrorString(e));
	else
		snprintf(err, err_size, "cuda: %s failed", what);
	cudaGetLastError();
	destroy(c);
	return rc;
}

static int setup_streams(struct vgpu_cuda_ctx *c, char *err, size_t err_size)
{
	int least, greatest;
	cudaError_t e = cudaDeviceGetStreamPriorityRange(&least, &greatest);

	if (e != cudaSuccess)
		return fail(c, VGPU_BACKEND, err, err_size, "stream priority range", e);
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++) {
		struct vgpu_cuda_level *lv = &c->level[l];

		/* greatest is numerically lower: level 2 -> greatest, 0 -> least. */
		lv->cuda_priority = least + (greatest - least) * l / (VGPU_PRIORITY_LEVELS - 1);
		for (int i = 0; i < VGPU_CUDA_LANES; i++) {
			struct vgpu_cuda_lane *ln = &lv->lane[i];

			ln->level = lv;
			e = cudaStreamCreateWithPriority(&ln->stream, cudaStreamNonBlocking,
							 lv->cuda_priority);
			if (e == cudaSuccess)
				e = cudaMalloc((void **)&ln->buf[0], VGPU_CUDA_CHUNK_BYTES);
			if (e == cudaSuccess)
				e = cudaMalloc((void **)&ln->buf[1], VGPU_CUDA_CHUNK_BYTES);
			if (e == cudaSuccess)
				e = cudaMalloc((void **)&ln->scratch,
					       VGPU_CUDA_REDUCE_BLOCKS * sizeof(double));
			if (e != cudaSuccess)
				return fail(c, vgpu_cuda_status(e), err, err_size,
					    "streams and chunk buffers", e);
		}
		if (c->cublas.create(&lv->blas) != CUBLAS_STATUS_SUCCESS) {
			lv->blas = NULL;
			return fail(c, VGPU_BACKEND, err, err_size, "cublasCreate", cudaSuccess);
		}
		if (c->cublas.set_stream(lv->blas, lv->lane[0].stream) != CUBLAS_STATUS_SUCCESS)
			return fail(c, VGPU_BACKEND, err, err_size, "cublasSetStream", cudaSuccess);
	}
	return VGPU_OK;
}

/*
 * Run every kernel and a 1x1x1 sgemm once on each level, and wait: a device
 * that cannot run our code (no kernel image for it, a broken cuBLAS) fails
 * init instead of the first works, and the one-time costs (module loading,
 * cuBLAS's first call, ~100 ms) are paid here.
 */
static int warm_up(struct vgpu_cuda_ctx *c, char *err, size_t err_size)
{
	static const float one = 1.0f;
	cudaError_t e = cudaSuccess;

	for (int l = 0; l < VGPU_PRIORITY_LEVELS && e == cudaSuccess; l++) {
		struct vgpu_cuda_level *lv = &c->level[l];
		struct vgpu_cuda_lane *ln = &lv->lane[0];
		cudaStream_t s = ln->stream;

		/* A held level's wait on its (open) gate first: a driver that
		 * cannot wait on memory fails here, not on the first work. */
		e = vgpu_cuda_hold_wait(ln);
		if (e == cudaSuccess)
			e = cudaMemsetAsync(ln->buf[0], 0, 64, s);
		if (e == cudaSuccess)
			e = cudaMemsetAsync(ln->buf[1], 0, 64, s);
		if (e == cudaSuccess)
			e = vgpu_cuda_vector_add(ln->buf[0], ln->buf[0], ln->buf[1], 1, s);
		if (e == cudaSuccess)
			e = vgpu_cuda_saxpy(ln->buf[1], 1.0f, ln->buf[0], ln->buf[1], 1, s);
		if (e == cudaSuccess)
			e = vgpu_cuda_reduce_chunk(ln->buf[0], 1, ln->scratch, (double *)ln->buf[1], s);
		if (e == cudaSuccess)
			e = vgpu_cuda_reduce_final((const double *)ln->buf[1], 1, ln->buf[0], s);
		if (e == cudaSuccess &&
		    c->cublas.sgemm(lv->blas, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, ln->buf[0], 1,
				    ln->buf[1], 1, &one, ln->buf[0] + 16, 1) != CUBLAS_STATUS_SUCCESS) {
			snprintf(err, err_size, "cuda: cuBLAS cannot run sgemm on this device");
			return VGPU_BACKEND;
		}
		if (e == cudaSuccess)
			e = cudaStreamSynchronize(s);
	}
	if (e != cudaSuccess) {
		snprintf(err, err_size, "cuda: the backend's kernels cannot run on this device: %s",
			 cudaGetErrorString(e));
		cudaGetLastError();
		return VGPU_BACKEND;
	}
	return VGPU_OK;
}

static int cuda_init(const struct vgpu_backend_config *cfg, void **ret_ctx, char *err,
		     size_t err_size)
{
	struct vgpu_cuda_ctx *c;
	size_t free_b = 0, total_b = 0, reserved, limit;
	cudaError_t e;
	int rc;

	if (cfg->max_inflight < 0 || cfg->max_inflight > VGPU_BACKEND_MAX_INFLIGHT ||
	    cfg->device < 0) {
		snprintf(err, err_size, "cuda: max_inflight must be 0..%d and device >= 0",
			 VGPU_BACKEND_MAX_INFLIGHT);
		return VGPU_INVALID_PARAM;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, err_size, "cuda: out of memory");
		return VGPU_NO_MEMORY;
	}
	vgpu_mutex_init(&c->lock);
	vgpu_mutex_init(&c->fly_lock);
	vgpu_mutex_init(&c->hold_lock);
	for (int k = 0; k < VGPU_CUDA_LAUNCHERS; k++)
		pthread_cond_init(&c->wake[k].cond, NULL);
	pthread_cond_init(&c->idle_cond, NULL);
	for (int l = 0; l < VGPU_PRIORITY_LEVELS; l++) {
		c->level[l].c = c;
		c->level[l].index = l;
		pthread_cond_init(&c->level[l].fly_cond, NULL);
	}
	c->device = cfg->device;
	c->max_inflight = cfg->max_inflight ? cfg->max_inflight : VGPU_BACKEND_DEFAULT_INFLIGHT;
	for (int l = 0; l < VGPU_PRIORITY_LEVELS - 1; l++)
		for (int i = 0; i < VGPU_CUDA_LANES; i++)
			c->level[l].lane[i].slice = cfg->copy_slice_bytes;
	c->jobs = calloc((size_t)c->max_inflight, sizeof(*c->jobs));
	if (!c->jobs)
		return fail(c, VGPU_NO_MEMORY, err, err_size, "jobs", cudaErrorMemoryAllocation);

	/* With the hold, every stream needs a hardware queue of its own
	 * (cuda_hold.c): read when the context is made, so set before it, and
	 * only if the operator did not set it. */
	if (cfg->hold_ns)
		setenv("CUDA_DEVICE_MAX_CONNECTIONS", "32", 0);
	e = cudaSetDevice(c->device);
	if (e == cudaSuccess)
		e = cudaFree(NULL); /* creates the primary context now, not on the first work */
	if (e == cudaSuccess) {
		int direct = 0;

		/* Kernels may use pinned host pointers as they are (Linux on
		 * x86-64 and Grace: yes); else small works take the copies. */
		e = cudaDeviceGetAttribute(&direct, cudaDevAttrCanUseHostPointerForRegisteredMem,
					   c->device);
		c->host_direct = direct != 0;
	}
	if (e == cudaSuccess)
		e = cudaMemGetInfo(&free_b, &total_b);
	if (e != cudaSuccess)
		return fail(c, VGPU_BACKEND, err, err_size, "device", e);
	rc = vgpu_cublas_load(&c->cublas, err, err_size);
	if (rc != VGPU_OK) {
		destroy(c);
		return rc;
	}
	/* Chunk buffers of every lane are allocated once and count against the bound. */
	reserved = (size_t)VGPU_PRIORITY_LEVELS * VGPU_CUDA_LANES *
		   (2 * VGPU_CUDA_CHUNK_BYTES + VGPU_CUDA_REDUCE_BLOCKS * sizeof(double));
	limit = cfg->max_device_bytes ? cfg->max_device_bytes : free_b / 4 * 3;
	if (limit < reserved + VGPU_CUDA_CHUNK_BYTES) {
		snprintf(err, err_size, "cuda: max_device_bytes %zu is below the %zu the backend needs",
			 limit, reserved + VGPU_CUDA_CHUNK_BYTES);
		destroy(c);
		return VGPU_INVALID_PARAM;
	}
	c->device_limit = limit - reserved;
	rc = vgpu_cuda_hold_init(c, cfg->hold_ns, err, err_size);
	if (rc != VGPU_OK) {
		destroy(c);
		return rc;
	}
	rc = setup_streams(c, err, err_size);
	if (rc != VGPU_OK)
		return rc;
	rc = warm_up(c, err, err_size);
	if (rc != VGPU_OK) {
		destroy(c);
		return rc;
	}
	if (vgpu_cuda_pool_new(VGPU_CUDA_POOL_DEVICE, c->device, c->device_limit, SIZE_MAX,
			       &c->dev_pool) ||
	    vgpu_cuda_pool_new(VGPU_CUDA_POOL_HOST, c->device, 0,
			       cfg->max_host_cache_bytes ? cfg->max_host_cache_bytes
							 : HOST_CACHE_BYTES,
			       &c->host_pool))
		return fail(c, VGPU_NO_MEMORY, err, err_size, "pools", cudaErrorMemoryAllocation);
	e = cudaHostAlloc((void **)&c->results,
			  (size_t)c->max_inflight * VGPU_CUDA_RESULT_FLOATS * sizeof(float),
			  cudaHostAllocPortable | cudaHostAllocMapped);
	if (e != cudaSuccess)
		return fail(c, vgpu_cuda_status(e), err, err_size, "pinned result slots", e);
	for (int j = c->max_inflight - 1; j >= 0; j--) {
		c->jobs[j].c = c;
		c->jobs[j].result = c->results + (size_t)j * VGPU_CUDA_RESULT_FLOATS;
		c->jobs[j].next = c->free_jobs;
		c->free_jobs = &c->jobs[j];
	}
	rc = vgpu_cuda_start_threads(c);
	if (rc != 0) {
		vgpu_cuda_stop_threads(c);
		snprintf(err, err_size, "cuda: cannot start threads: %s", strerror(rc));
		destroy(c);
		return VGPU_ERROR;
	}
	*ret_ctx = c;
	return VGPU_OK;
}

static void cuda_fini(void *ctx)
{
	struct vgpu_cuda_ctx *c = ctx;

	if (!c)
		return;
	vgpu_cuda_hold_stop(c);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	while (c->inflight > 0 || c->in_done > 0 || c->in_submit > 0)
		pthread_cond_wait(&c->idle_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	vgpu_cuda_stop_threads(c);
	destroy(c);
}

/* The host-memory ops run on any thread, also on another instance's (a
 * work of GPU 1 freeing a buffer of GPU 0's pool in its done()): they
 * switch to this instance's device and back. The memory is portable, so
 * every instance's copies may use it. */
static int enter_device(const struct vgpu_cuda_ctx *c)
{
	int prev = c->device;

	if (cudaGetDevice(&prev) != cudaSuccess || prev != c->device)
		cudaSetDevice(c->device);
	return prev;
}

static void leave_device(const struct vgpu_cuda_ctx *c, int prev)
{
	if (prev != c->device)
		cudaSetDevice(prev);
}

static int cuda_submit(void *ctx, struct vgpu_work *work)
{
	struct vgpu_cuda_ctx *c = ctx;
	struct vgpu_cuda_job *job = NULL;
	int rc = vgpu_backend_work_check(work), level = work->priority;

	if (rc != VGPU_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		rc = VGPU_SHUTDOWN;
	} else if (c->inflight >= c->max_inflight || !c->free_jobs) {
		rc = VGPU_BUSY;
	} else {
		struct vgpu_cuda_level *lv = &c->level[level];

		job = c->free_jobs;
		c->free_jobs = job->next;
		job->work = work;
		job->next = NULL;
		c->inflight++;
		if (!vgpu_cuda_take_inline(c, job)) {
			if (lv->tail)
				lv->tail->next = job;
			else
				lv->head = job;
			lv->tail = job;
			vgpu_cuda_wake_launcher(c, level);
			job = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (job) {
		/* Launched here (cuda_sched.c). From the launch on, the job and
		 * its work may be done and gone: only @level is used after. The
		 * thread makes the device current (and its primary context, as
		 * the launchers do at start) when it last launched for another:
		 * the launch's first call may be the driver API's (the hold's
		 * wait). Nothing else on a submitting thread leaves another
		 * device current (enter_device() restores), so no cudaGetDevice
		 * per launch. */
		static _Thread_local int bound = -1;

		if (bound != c->device && cudaSetDevice(c->device) == cudaSuccess)
			bound = c->device;
		vgpu_cuda_launch(c, job, false); /* never BUSY: alone, it may not wait */
		pthread_mutex_lock(&c->lock);
		vgpu_cuda_end_inline(c, level);
		pthread_mutex_unlock(&c->lock);
	}
	return rc;
}

/* host_alloc: pinned memory from the pool, behind a header that records the
 * size, so that host_free() returns it to the right class whatever it is
 * told. @cached_only: from the pool's cache, or nothing. */
static void *host_get(struct vgpu_cuda_ctx *c, size_t size, bool cached_only)
{
	uint64_t *hdr;
	void *block;

	if (size > SIZE_MAX - HOST_HEADER)
		return NULL;
	if (cached_only) {
		if (vgpu_cuda_pool_try_get(c->host_pool, size + HOST_HEADER, &block) != VGPU_OK)
			return NULL;
	} else {
		int prev = enter_device(c);
		int rc = vgpu_cuda_pool_get(c->host_pool, size + HOST_HEADER, &block);

		leave_device(c, prev);
		if (rc != VGPU_OK)
			return NULL;
	}
	hdr = block;
	hdr[0] = HOST_MAGIC;
	hdr[1] = size;
	return (char *)block + HOST_HEADER;
}

static void *cuda_host_alloc(void *ctx, size_t size)
{
	return host_get(ctx, size, false);
}

static void *cuda_host_alloc_cached(void *ctx, size_t size)
{
	return host_get(ctx, size, true);
}

static bool cuda_host_cached(void *ctx, size_t size)
{
	struct vgpu_cuda_ctx *c = ctx;

	return size <= SIZE_MAX - HOST_HEADER &&
	       vgpu_cuda_pool_cached(c->host_pool, size + HOST_HEADER);
}

static void cuda_host_free(void *ctx, void *ptr, size_t size)
{
	struct vgpu_cuda_ctx *c = ctx;
	uint64_t *hdr;

	(void)size;
	if (!ptr)
		return;
	hdr = (uint64_t *)((char *)ptr - HOST_HEADER);
	if (hdr[0] != HOST_MAGIC)
		return; /* not ours: leaking it beats corrupting the pool */
	hdr[0] = 0;
	int prev = enter_device(c);
	vgpu_cuda_pool_put(c->host_pool, hdr, hdr[1] + HOST_HEADER);
	leave_device(c, prev);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older C libraries lack the name */
#endif

/* Fault in every page of [ptr, ptr + size) for writing, without changing
 * its contents (nobody else writes it yet: a window is pinned before its
 * client gets it). */
static void prefault(void *ptr, size_t size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (madvise(ptr, size, MADV_POPULATE_WRITE) == 0)
		return;
	/* Before Linux 5.14 (XCP-ng 8.2's dom0 runs 4.19): one write per page. */
	for (size_t off = 0; off < size; off += (size_t)page) {
		volatile char *b = (volatile char *)ptr + off;

		*b = *b;
	}
}

/* Pinning lets the copy engines DMA straight from and to the memory
 * (ARCHITECTURE.md, principle 6): pageable copies ran 5x slower. While
 * cudaHostRegister runs, the driver holds back every other submission of
 * the process; faulting the pages in first, outside it, shortened that on
 * the H200 from ~500 ms to ~55 ms per GiB (docs/performance.md, run 24). */
static int cuda_host_register(void *ctx, void *ptr, size_t size)
{
	struct vgpu_cuda_ctx *c = ctx;
	cudaError_t e;

	prefault(ptr, size);
	int prev = enter_device(c);
	/* Portable: the mediator's other GPUs run works in it too. */
	e = cudaHostRegister(ptr, size, cudaHostRegisterPortable | cudaHostRegisterMapped);
	if (e != cudaSuccess)
		cudaGetLastError(); /* not sticky: clear it */
	leave_device(c, prev);
	return e == cudaSuccess ? VGPU_OK : vgpu_cuda_status(e);
}

static void cuda_host_unregister(void *ctx, void *ptr)
{
	struct vgpu_cuda_ctx *c = ctx;
	int prev = enter_device(c);

	if (cudaHostUnregister(ptr) != cudaSuccess)
		cudaGetLastError();
	leave_device(c, prev);
}

/* Two works at once at least: the next one is then queued on the GPU when
 * one finishes. With one, the GPU idled between works for the completion
 * to be seen and the next one launched: 8 VMs of 2048^3 sgemms ran at
 * 0.79x a native process's throughput (docs/performance.md, run 34). */
static unsigned cuda_concurrency(void *ctx)
{
	(void)ctx;
	return 2;
}

static int cuda_devices(void)
{
	int count = 0;

	return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

static const struct vgpu_backend_ops cuda_ops = {
	.name = "cuda",
	.probe = cuda_probe,
	.init = cuda_init,
	.fini = cuda_fini,
	.submit = cuda_submit,
	.host_alloc = cuda_host_alloc,
	.host_free = cuda_host_free,
	.host_cached = cuda_host_cached,
	.host_alloc_cached = cuda_host_alloc_cached,
	.host_register = cuda_host_register,
	.host_unregister = cuda_host_unregister,
	.concurrency = cuda_concurrency,
	.devices = cuda_devices,
};

const struct vgpu_backend_ops *const vgpu_backend_cuda = &cuda_ops;
