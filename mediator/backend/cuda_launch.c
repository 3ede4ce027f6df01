/* SPDX-License-Identifier: MIT */
/*
 * cuda_launch.c - what one work enqueues on the GPU (launcher thread only).
 *
 * vector_add, saxpy, reduce_sum: the vectors go through in chunks of 2 to
 * 8 MiB (vgpu_cuda_chunk_elems()), dealt round-robin to the level's lanes;
 * each chunk is copy in, kernel, copy out on its lane, so one chunk's copies overlap
 * another's kernel and the two copy directions overlap each other. The
 * lanes' own chunk buffers are reused (stream order makes that safe), so a
 * vector op of any size needs no device allocation. reduce_sum leaves one
 * double per chunk in a small block from the device pool and sums them on
 * lane 0 once the other lanes are joined into it.
 *
 * sgemm: A, B and C in device blocks from the pool, cuBLAS on lane 0.
 * cuBLAS is column-major and our matrices are row-major; a row-major matrix
 * is its own transpose in column-major, so C^T = B^T A^T is computed with
 * no transposes: sgemm(N, N, n, m, k, B, ldb = n, A, lda = k, C, ldc = n).
 *
 * Every work ends with its done_ev recorded on lane 0, after the other
 * lanes are joined into it, also when enqueueing failed half-way: done()
 * must not come before the GPU stops touching the work's buffers. Then the
 * level's waiter (cuda_sched.c) takes over.
 *
 * Never: synchronize on the normal path, or call done() (the waiters do).
 */
#include <limits.h>

#include "backend_internal.h"
#include "cuda_internal.h"

/* Bytes a work moves: inputs and output. */
static uint64_t work_bytes(const struct vgpu_work *w)
{
	return (w->in_count[0] + w->in_count[1] + w->in_count[2] + w->out_count) * sizeof(float);
}

static void release(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job)
{
	for (int i = 0; i < job->n_dev; i++)
		vgpu_cuda_pool_put(c->dev_pool, job->dev[i], job->dev_size[i]);
	job->n_dev = 0;
}

/* Device blocks of @sizes for @job, all or none. */
static int take(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job, const size_t *sizes,
		int count, bool may_wait)
{
	if (!vgpu_cuda_pool_fits(c->dev_pool, sizes, count))
		return VGPU_NO_MEMORY;
	for (int i = 0; i < count; i++) {
		int rc = vgpu_cuda_pool_get(c->dev_pool, sizes[i], &job->dev[i]);

		if (rc != VGPU_OK) {
			release(c, job);
			/* Nothing else on the GPU would give memory back. */
			return rc == VGPU_BUSY && !may_wait ? VGPU_NO_MEMORY : rc;
		}
		job->dev_size[i] = sizes[i];
		job->n_dev = i + 1;
	}
	return VGPU_OK;
}

static void note(struct vgpu_cuda_job *job, cudaError_t e)
{
	if (job->status == VGPU_OK)
		job->status = vgpu_cuda_status(e);
	cudaGetLastError(); /* clear it, if it is not sticky */
}

/* Chunks of a vector op on the level's lanes; returns the lanes used. */
static int enqueue_vector(struct vgpu_cuda_level *lv, struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	uint64_t n = w->params.n, ce = vgpu_cuda_chunk_elems(n);
	uint64_t chunks = (n + ce - 1) / ce;
	double *partials = w->op == VGPU_OP_REDUCE_SUM ? job->dev[0] : NULL;

	for (uint64_t ch = 0; ch < chunks; ch++) {
		struct vgpu_cuda_lane *ln = &lv->lane[ch % VGPU_CUDA_LANES];
		uint64_t off = ch * ce;
		uint32_t cnt = (uint32_t)(n - off < ce ? n - off : ce);
		size_t bytes = (size_t)cnt * sizeof(float);
		cudaStream_t s = ln->stream;
		cudaError_t e;

		e = cudaMemcpyAsync(ln->buf[0], w->in[0] + off, bytes, cudaMemcpyHostToDevice, s);
		if (e == cudaSuccess && !partials)
			e = cudaMemcpyAsync(ln->buf[1], w->in[1] + off, bytes,
					    cudaMemcpyHostToDevice, s);
		if (e == cudaSuccess) {
			switch (w->op) {
			case VGPU_OP_VECTOR_ADD:
				e = vgpu_cuda_vector_add(ln->buf[0], ln->buf[1], cnt, s);
				if (e == cudaSuccess)
					e = cudaMemcpyAsync(w->out + off, ln->buf[0], bytes,
							    cudaMemcpyDeviceToHost, s);
				break;
			case VGPU_OP_SAXPY:
				e = vgpu_cuda_saxpy(w->params.alpha, ln->buf[0], ln->buf[1], cnt, s);
				if (e == cudaSuccess)
					e = cudaMemcpyAsync(w->out + off, ln->buf[1], bytes,
							    cudaMemcpyDeviceToHost, s);
				break;
			default: /* VGPU_OP_REDUCE_SUM */
				e = vgpu_cuda_reduce_chunk(ln->buf[0], cnt, ln->scratch,
							   partials + ch, s);
				break;
			}
		}
		if (e != cudaSuccess) {
			note(job, e);
			break;
		}
	}
	return chunks < VGPU_CUDA_LANES ? (int)chunks : VGPU_CUDA_LANES;
}

static void enqueue_sgemm(struct vgpu_cuda_ctx *c, struct vgpu_cuda_level *lv,
			  struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	const struct vgpu_op_params *p = &w->params;
	cudaStream_t s = lv->lane[0].stream;
	float *da = job->dev[0], *db = job->dev[1], *dc = job->dev[2];
	cudaError_t e;

	e = cudaMemcpyAsync(da, w->in[0], job->dev_size[0], cudaMemcpyHostToDevice, s);
	if (e == cudaSuccess)
		e = cudaMemcpyAsync(db, w->in[1], job->dev_size[1], cudaMemcpyHostToDevice, s);
	if (e == cudaSuccess && p->beta != 0.0f) /* beta == 0: C is not read */
		e = cudaMemcpyAsync(dc, w->in[2], job->dev_size[2], cudaMemcpyHostToDevice, s);
	if (e != cudaSuccess) {
		note(job, e);
		return;
	}
	cublasStatus_t st = c->cublas.sgemm(lv->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)p->n,
					    (int)p->m, (int)p->k, &p->alpha, db, (int)p->n, da,
					    (int)p->k, &p->beta, dc, (int)p->n);

	if (st != CUBLAS_STATUS_SUCCESS) {
		job->status = st == CUBLAS_STATUS_ALLOC_FAILED ? VGPU_NO_MEMORY : VGPU_BACKEND;
		cudaGetLastError();
		return;
	}
	e = cudaMemcpyAsync(w->out, dc, job->dev_size[2], cudaMemcpyDeviceToHost, s);
	if (e != cudaSuccess)
		note(job, e);
}

/* Join lanes 1..@used-1 into lane 0, finish reduce_sum there, record
 * done_ev and track the job; if that cannot be arranged, wait for the lanes
 * here instead (the error path: a launcher that blocks beats a done() that
 * comes early). */
static void close_job(struct vgpu_cuda_level *lv, struct vgpu_cuda_job *job, int used)
{
	const struct vgpu_work *w = job->work;
	cudaStream_t s0 = lv->lane[0].stream;
	cudaError_t e = cudaSuccess;

	for (int i = 1; i < used && e == cudaSuccess; i++) {
		if (!job->join[i]) {
			e = cudaEventCreateWithFlags(&job->join[i], cudaEventDisableTiming);
			if (e != cudaSuccess)
				job->join[i] = NULL;
		}
		if (e == cudaSuccess)
			e = cudaEventRecord(job->join[i], lv->lane[i].stream);
		if (e == cudaSuccess)
			e = cudaStreamWaitEvent(s0, job->join[i], 0);
	}
	if (e == cudaSuccess && w->op == VGPU_OP_REDUCE_SUM && job->status == VGPU_OK) {
		uint64_t ce = vgpu_cuda_chunk_elems(w->params.n);
		uint64_t chunks = (w->params.n + ce - 1) / ce;
		double *partials = job->dev[0];
		float *sum = (float *)(partials + chunks);
		cudaError_t r = vgpu_cuda_reduce_final(partials, (uint32_t)chunks, sum, s0);

		if (r == cudaSuccess)
			r = cudaMemcpyAsync(job->result, sum, sizeof(float), cudaMemcpyDeviceToHost,
					    s0);
		if (r != cudaSuccess)
			note(job, r);
	}
	if (e == cudaSuccess && !job->done_ev) {
		/* Not blocking-sync: that would cost an interrupt per work
		 * (cuda_sched.c). */
		e = cudaEventCreateWithFlags(&job->done_ev, cudaEventDisableTiming);
		if (e != cudaSuccess)
			job->done_ev = NULL;
	}
	if (e == cudaSuccess)
		e = cudaEventRecord(job->done_ev, s0);
	/* A large work also gets a blocking-sync event after it, which its
	 * waiter sleeps on once polling is over; without one it could not
	 * sleep but in steps. The event is an optimization: failing to make
	 * it leaves the work to the polling waiter. */
	job->blocking = false;
	if (e == cudaSuccess && work_bytes(w) >= VGPU_CUDA_BLOCKING_BYTES) {
		if (!job->block_ev &&
		    cudaEventCreateWithFlags(&job->block_ev, cudaEventDisableTiming |
								 cudaEventBlockingSync) != cudaSuccess)
			job->block_ev = NULL;
		job->blocking = job->block_ev && cudaEventRecord(job->block_ev, s0) == cudaSuccess;
		cudaGetLastError();
	}
	if (e != cudaSuccess) {
		note(job, e);
		for (int i = 0; i < used; i++)
			cudaStreamSynchronize(lv->lane[i].stream);
		cudaGetLastError();
		job->end_ns = vgpu_now_ns();
		job->waited = true;
	}
	vgpu_cuda_track(job);
}

int vgpu_cuda_launch(struct vgpu_cuda_ctx *c, struct vgpu_cuda_job *job, bool may_wait)
{
	struct vgpu_work *w = job->work;
	const struct vgpu_op_params *p = &w->params;
	struct vgpu_cuda_level *lv = &c->level[w->priority];
	int rc = VGPU_OK, used = 1;

	job->status = VGPU_OK;
	job->gpu_status = cudaSuccess;
	job->waited = false;
	job->n_dev = 0;
	job->start_ns = vgpu_now_ns();
	job->end_ns = 0;
	if (w->op == VGPU_OP_SGEMM) {
		size_t sizes[3] = {
			(size_t)p->m * p->k * sizeof(float),
			(size_t)p->k * p->n * sizeof(float),
			(size_t)p->m * p->n * sizeof(float),
		};

		if (p->m > INT_MAX || p->n > INT_MAX || p->k > INT_MAX)
			rc = VGPU_BACKEND; /* beyond cuBLAS's int dimensions */
		else
			rc = take(c, job, sizes, 3, may_wait);
	} else if (w->op == VGPU_OP_REDUCE_SUM) {
		uint64_t ce = vgpu_cuda_chunk_elems(p->n);
		size_t chunks = (size_t)((p->n + ce - 1) / ce);
		size_t size = (chunks + 1) * sizeof(double); /* partials, then the float sum */

		rc = take(c, job, &size, 1, may_wait);
	}
	if (rc == VGPU_BUSY)
		return rc;
	if (rc != VGPU_OK) {
		job->status = rc;
		job->end_ns = vgpu_now_ns();
		job->waited = true;
		vgpu_cuda_track(job);
		return rc;
	}
	if (w->op == VGPU_OP_SGEMM)
		enqueue_sgemm(c, lv, job);
	else
		used = enqueue_vector(lv, job);
	close_job(lv, job, used);
	return VGPU_OK;
}
