/* SPDX-License-Identifier: MIT */
/*
 * cuda_stage.c - copies for works whose buffers the GPU cannot reach
 * directly (vgpu_work.staged): a Xen guest's RAM, mapped into the mediator
 * with xenforeignmemory, cannot be pinned with cudaHostRegister, and a
 * cudaMemcpyAsync from such pageable memory is synchronous: the launcher
 * would stop for every copy while the driver stages it, chunk by chunk, on
 * one thread.
 *
 * Small works (inputs and output within VGPU_CUDA_BOUNCE_BYTES): the
 * launcher copies the inputs into the job's pinned bounce buffer (made on
 * the job slot's first such work and kept), the GPU copies from and to it,
 * and the waiter copies the output to the work's buffer before done(). No
 * CUDA callback: on the H200 two host functions per work cost ~55 us.
 *
 * Larger works: each lane has a pinned staging buffer of
 * VGPU_CUDA_STAGE_BYTES (made on the lane's first staged work and kept). A
 * step is a host function on the lane's stream (cudaLaunchHostFunc) that
 * copies the guest's bytes into the staging buffer, then the DMA from it;
 * or the DMA into it, then a host function that copies to the guest.
 * Stream order makes reusing the buffer safe, and the lanes pipeline:
 * while one lane's DMA runs, the next lane's chunk is copied. CUDA runs
 * host functions on one thread, and one core's memcpy is slower than the
 * copy engines, so each copy is split between that thread and
 * VGPU_CUDA_COPIERS - 1 helper threads of ours (made with the first staged
 * work). One CPU copy per byte, as docs/specs/vgpu-stub-1.1.md says.
 *
 * The host functions only copy memory and wait for the helpers: they make
 * no CUDA call and never fail. Their arguments live in the job
 * (job->copies), which is not reused before the work's done_ev, recorded
 * after them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"
#include "cuda_internal.h"
#include "vgpu_mutex.h"

/* Copies smaller than this are not split between threads. */
#define SPLIT_MIN_BYTES ((size_t)1 << 20)

struct vgpu_cuda_helper {
	struct vgpu_cuda_copier *cr;
	int part;                        /* 1..VGPU_CUDA_COPIERS - 1 */
	pthread_t th;
};

struct vgpu_cuda_copier {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	const struct vgpu_cuda_copy *cp; /* what the helpers copy a part of */
	uint64_t gen;                    /* bumped for each copy handed out */
	int busy;                        /* helpers not through with gen yet */
	bool active;                     /* a copy is being split (CUDA may run host
					  * functions on more than one thread) */
	bool quit;
	int started;                     /* helpers running */
	struct vgpu_cuda_helper helper[VGPU_CUDA_COPIERS - 1];
};

static size_t total_of(const struct vgpu_cuda_copy *cp)
{
	size_t t = 0;

	for (int i = 0; i < cp->n; i++)
		t += cp->bytes[i];
	return t;
}

/* Part @k of VGPU_CUDA_COPIERS of @cp's bytes, taken as one run over its
 * copies; parts are cut at 64-byte boundaries. */
static void copy_part(const struct vgpu_cuda_copy *cp, int k)
{
	size_t total = total_of(cp), per = (total / VGPU_CUDA_COPIERS + 63) & ~(size_t)63;
	size_t from = per * (size_t)k, to = from + per, at = 0;

	if (to > total || k == VGPU_CUDA_COPIERS - 1)
		to = total;
	for (int i = 0; i < cp->n && from < to; i++) {
		size_t end = at + cp->bytes[i];

		if (from < end) {
			size_t lo = from - at, hi = (to < end ? to : end) - at;

			memcpy((char *)cp->dst[i] + lo, (const char *)cp->src[i] + lo, hi - lo);
			from = at + hi;
		}
		at = end;
	}
}

static void *helper_main(void *arg)
{
	struct vgpu_cuda_helper *h = arg;
	struct vgpu_cuda_copier *cr = h->cr;
	uint64_t seen = 0;

	pthread_setname_np(pthread_self(), "vgpu-copy");
	pthread_mutex_lock(&cr->lock);
	for (;;) {
		while (!cr->quit && cr->gen == seen)
			pthread_cond_wait(&cr->go, &cr->lock);
		if (cr->quit)
			break;
		seen = cr->gen;
		const struct vgpu_cuda_copy *cp = cr->cp;

		pthread_mutex_unlock(&cr->lock);
		copy_part(cp, h->part);
		pthread_mutex_lock(&cr->lock);
		if (--cr->busy == 0)
			pthread_cond_broadcast(&cr->done);
	}
	pthread_mutex_unlock(&cr->lock);
	return NULL;
}

void vgpu_cuda_copier_free(struct vgpu_cuda_copier *cr)
{
	if (!cr)
		return;
	pthread_mutex_lock(&cr->lock);
	cr->quit = true;
	pthread_cond_broadcast(&cr->go);
	pthread_mutex_unlock(&cr->lock);
	for (int i = 0; i < cr->started; i++)
		pthread_join(cr->helper[i].th, NULL);
	pthread_mutex_destroy(&cr->lock);
	pthread_cond_destroy(&cr->go);
	pthread_cond_destroy(&cr->done);
	free(cr);
}

static struct vgpu_cuda_copier *copier_new(void)
{
	struct vgpu_cuda_copier *cr = calloc(1, sizeof(*cr));

	if (!cr)
		return NULL;
	vgpu_mutex_init(&cr->lock);
	pthread_cond_init(&cr->go, NULL);
	pthread_cond_init(&cr->done, NULL);
	for (int i = 0; i < VGPU_CUDA_COPIERS - 1; i++) {
		/* Part 0 is the calling thread's. */
		cr->helper[i] = (struct vgpu_cuda_helper){ .cr = cr, .part = i + 1 };
		if (pthread_create(&cr->helper[i].th, NULL, helper_main, &cr->helper[i]) != 0) {
			vgpu_cuda_copier_free(cr);
			return NULL;
		}
		cr->started++;
	}
	return cr;
}

/* CUDA's callback thread: one step's copies, split with the helpers when
 * large. */
static void CUDART_CB run_copy(void *arg)
{
	const struct vgpu_cuda_copy *cp = arg;
	struct vgpu_cuda_copier *cr = cp->copier;

	if (total_of(cp) < SPLIT_MIN_BYTES) {
		for (int i = 0; i < cp->n; i++)
			memcpy(cp->dst[i], cp->src[i], cp->bytes[i]);
		return;
	}
	pthread_mutex_lock(&cr->lock);
	while (cr->active)
		pthread_cond_wait(&cr->done, &cr->lock);
	cr->active = true;
	cr->cp = cp;
	cr->busy = VGPU_CUDA_COPIERS - 1;
	cr->gen++;
	pthread_cond_broadcast(&cr->go);
	pthread_mutex_unlock(&cr->lock);
	copy_part(cp, 0);
	pthread_mutex_lock(&cr->lock);
	while (cr->busy > 0)
		pthread_cond_wait(&cr->done, &cr->lock);
	cr->active = false;
	pthread_cond_broadcast(&cr->done);
	pthread_mutex_unlock(&cr->lock);
}

static size_t pieces(uint64_t bytes)
{
	return (size_t)((bytes + VGPU_CUDA_STAGE_BYTES - 1) / VGPU_CUDA_STAGE_BYTES);
}

/* Host copies a staged @w needs at most. */
static size_t copies_of(const struct vgpu_work *w)
{
	const struct vgpu_op_params *p = &w->params;

	if (w->op == VGPU_OP_SGEMM)
		return pieces((uint64_t)p->m * p->k * sizeof(float)) +
		       pieces((uint64_t)p->k * p->n * sizeof(float)) +
		       2 * pieces((uint64_t)p->m * p->n * sizeof(float));
	uint64_t ce = vgpu_cuda_chunk_elems(p->n);

	return (size_t)((p->n + ce - 1) / ce) * 2;
}

/* A small staged work: its inputs into the job's bounce buffer, one after
 * the other, its output after them. */
static int bounce(struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	float *at;

	if (!job->bounce) {
		/* Once per job slot, on the launcher. */
		if (cudaHostAlloc(&job->bounce, VGPU_CUDA_BOUNCE_BYTES,
				  cudaHostAllocPortable | cudaHostAllocMapped) != cudaSuccess) {
			cudaGetLastError();
			job->bounce = NULL;
			return VGPU_NO_MEMORY;
		}
	}
	at = job->bounce;
	for (int i = 0; i < 3; i++) {
		job->in[i] = w->in_count[i] ? at : NULL;
		if (w->in_count[i])
			memcpy(at, w->in[i], w->in_count[i] * sizeof(float));
		at += w->in_count[i];
	}
	job->out = at;
	job->path = VGPU_CUDA_BOUNCED;
	return VGPU_OK;
}

int vgpu_cuda_stage_prepare(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	size_t count;

	job->n_copies = 0;
	for (int i = 0; i < 3; i++)
		job->in[i] = w->in[i];
	job->out = w->out;
	job->path = VGPU_CUDA_DIRECT;
	if (!w->staged)
		return VGPU_OK;
	if ((w->in_count[0] + w->in_count[1] + w->in_count[2] + w->out_count) * sizeof(float) <=
	    VGPU_CUDA_BOUNCE_BYTES)
		return bounce(job);
	/* Made once, by whichever launcher needs it first. */
	pthread_mutex_lock(&c->lock);
	if (!c->copier)
		c->copier = copier_new();
	pthread_mutex_unlock(&c->lock);
	if (!c->copier)
		return VGPU_NO_MEMORY;
	count = copies_of(w);
	if (count > job->cap_copies) {
		struct vgpu_cuda_copy *cp = realloc(job->copies, count * sizeof(*cp));

		if (!cp)
			return VGPU_NO_MEMORY;
		job->copies = cp;
		job->cap_copies = count;
	}
	job->path = VGPU_CUDA_STAGED;
	return VGPU_OK;
}

void vgpu_cuda_stage_finish(struct vgpu_cuda_job *job, int status)
{
	const struct vgpu_work *w = job->work;

	if (job->path == VGPU_CUDA_BOUNCED && status == VGPU_OK && w->op != VGPU_OP_REDUCE_SUM)
		memcpy(w->out, job->out, w->out_count * sizeof(float));
}

static cudaError_t next_copy(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job,
			     struct vgpu_cuda_copy **ret)
{
	if (!ln->stage) {
		/* Once per lane, on the launcher; pinning 16 MiB takes ~2 ms. */
		cudaError_t e = cudaHostAlloc(&ln->stage, VGPU_CUDA_STAGE_BYTES,
					      cudaHostAllocPortable);

		if (e != cudaSuccess) {
			ln->stage = NULL;
			return e;
		}
	}
	if (job->n_copies >= job->cap_copies)
		return cudaErrorInvalidValue; /* copies_of() was wrong */
	*ret = &job->copies[job->n_copies++];
	(*ret)->copier = job->c->copier;
	return cudaSuccess;
}

cudaError_t vgpu_cuda_stage_in(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, int n,
			       void *const dev[], const void *const src[], const size_t bytes[])
{
	struct vgpu_cuda_copy *cp;
	cudaError_t e = next_copy(ln, job, &cp);
	size_t at = 0;

	if (e != cudaSuccess)
		return e;
	cp->n = n;
	for (int i = 0; i < n; i++) {
		cp->dst[i] = (char *)ln->stage + at;
		cp->src[i] = src[i];
		cp->bytes[i] = bytes[i];
		at += bytes[i];
	}
	if (at > VGPU_CUDA_STAGE_BYTES)
		return cudaErrorInvalidValue;
	e = cudaLaunchHostFunc(ln->stream, run_copy, cp);
	for (int i = 0; i < n && e == cudaSuccess; i++)
		e = cudaMemcpyAsync(dev[i], cp->dst[i], bytes[i], cudaMemcpyHostToDevice,
				    ln->stream);
	return e;
}

cudaError_t vgpu_cuda_stage_out(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, void *dst,
				const void *dev, size_t bytes)
{
	struct vgpu_cuda_copy *cp;
	cudaError_t e = next_copy(ln, job, &cp);

	if (e != cudaSuccess)
		return e;
	if (bytes > VGPU_CUDA_STAGE_BYTES)
		return cudaErrorInvalidValue;
	cp->n = 1;
	cp->dst[0] = dst;
	cp->src[0] = ln->stage;
	cp->bytes[0] = bytes;
	e = cudaMemcpyAsync(ln->stage, dev, bytes, cudaMemcpyDeviceToHost, ln->stream);
	if (e == cudaSuccess)
		e = cudaLaunchHostFunc(ln->stream, run_copy, cp);
	return e;
}
