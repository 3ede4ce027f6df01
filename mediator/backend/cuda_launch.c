/* SPDX-License-Identifier: MIT */
/*
 * cuda_launch.c - what one work enqueues on the GPU, on a launcher thread
 * (cuda_sched.c: two run at once, for different levels; what they share,
 * the device pool and the staging copier, is locked).
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

/* One direct copy on @ln, in pieces of ln->slice bytes where it has one:
 * the copy engines serve the streams' queues piece by piece, so a
 * high-priority copy waits for one piece of a low-priority one, not all
 * of it. */
static cudaError_t copy(struct vgpu_cuda_lane *ln, void *dst, const void *src, size_t bytes,
			enum cudaMemcpyKind kind)
{
	size_t piece = ln->slice ? ln->slice : bytes;
	cudaError_t e = cudaSuccess;

	for (size_t off = 0; off < bytes && e == cudaSuccess; off += piece) {
		e = vgpu_cuda_hold_wait(ln);
		if (e == cudaSuccess)
			e = cudaMemcpyAsync((char *)dst + off, (const char *)src + off,
					    bytes - off < piece ? bytes - off : piece, kind,
					    ln->stream);
	}
	return e;
}

/* Host memory to device memory on @ln: straight from the buffers, or
 * through the lane's staging when the work is staged (cuda_stage.c). */
static cudaError_t to_device(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, int n,
			     void *const dev[], const void *const src[], const size_t bytes[])
{
	cudaError_t e = cudaSuccess;

	if (job->path == VGPU_CUDA_STAGED)
		return vgpu_cuda_stage_in(ln, job, n, dev, src, bytes);
	for (int i = 0; i < n && e == cudaSuccess; i++)
		e = copy(ln, dev[i], src[i], bytes[i], cudaMemcpyHostToDevice);
	return e;
}

static cudaError_t to_host(struct vgpu_cuda_lane *ln, struct vgpu_cuda_job *job, void *dst,
			   const void *dev, size_t bytes)
{
	if (job->path == VGPU_CUDA_STAGED)
		return vgpu_cuda_stage_out(ln, job, dst, dev, bytes);
	return copy(ln, dst, dev, bytes, cudaMemcpyDeviceToHost);
}

/* A small vector op as one kernel on lane 0, straight on the host memory
 * (VGPU_CUDA_ZEROCOPY_BYTES); returns the lanes used. */
static int enqueue_zerocopy(struct vgpu_cuda_level *lv, struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	struct vgpu_cuda_lane *ln = &lv->lane[0];
	uint32_t n = (uint32_t)w->params.n;
	cudaError_t e = vgpu_cuda_hold_wait(ln);

	if (e != cudaSuccess) {
		note(job, e);
		return 1;
	}
	switch (w->op) {
	case VGPU_OP_VECTOR_ADD:
		e = vgpu_cuda_vector_add(job->out, job->in[0], job->in[1], n, ln->stream);
		break;
	case VGPU_OP_SAXPY:
		e = vgpu_cuda_saxpy(job->out, w->params.alpha, job->in[0], job->in[1], n,
				    ln->stream);
		break;
	default: /* VGPU_OP_REDUCE_SUM: one chunk; close_job() finishes it */
		e = vgpu_cuda_reduce_chunk(job->in[0], n, ln->scratch, job->dev[0], ln->stream);
		break;
	}
	if (e != cudaSuccess)
		note(job, e);
	return 1;
}

bool vgpu_cuda_zerocopy(const struct vgpu_cuda_ctx *c, const struct vgpu_work *w)
{
	return c->host_direct && w->op != VGPU_OP_SGEMM &&
	       vgpu_work_bytes(w) <= VGPU_CUDA_ZEROCOPY_BYTES;
}

/* Chunks of a vector op on the level's lanes; returns the lanes used. */
static int enqueue_vector(struct vgpu_cuda_ctx *c, struct vgpu_cuda_level *lv,
			  struct vgpu_cuda_job *job)
{
	const struct vgpu_work *w = job->work;
	uint64_t n = w->params.n, ce = vgpu_cuda_chunk_elems(n);
	uint64_t chunks = (n + ce - 1) / ce;
	double *partials = w->op == VGPU_OP_REDUCE_SUM ? job->dev[0] : NULL;

	if (job->path != VGPU_CUDA_STAGED && vgpu_cuda_zerocopy(c, w))
		return enqueue_zerocopy(lv, job);

	for (uint64_t ch = 0; ch < chunks; ch++) {
		struct vgpu_cuda_lane *ln = &lv->lane[ch % VGPU_CUDA_LANES];
		uint64_t off = ch * ce;
		uint32_t cnt = (uint32_t)(n - off < ce ? n - off : ce);
		size_t bytes = (size_t)cnt * sizeof(float);
		void *dev[2] = { ln->buf[0], ln->buf[1] };
		const void *src[2] = { job->in[0] + off, partials ? NULL : job->in[1] + off };
		const size_t sizes[2] = { bytes, bytes };
		cudaStream_t s = ln->stream;
		cudaError_t e = to_device(ln, job, partials ? 1 : 2, dev, src, sizes);

		if (e == cudaSuccess)
			e = vgpu_cuda_hold_wait(ln);
		if (e == cudaSuccess) {
			switch (w->op) {
			case VGPU_OP_VECTOR_ADD:
				e = vgpu_cuda_vector_add(ln->buf[0], ln->buf[0], ln->buf[1], cnt, s);
				if (e == cudaSuccess)
					e = to_host(ln, job, job->out + off, ln->buf[0], bytes);
				break;
			case VGPU_OP_SAXPY:
				e = vgpu_cuda_saxpy(ln->buf[1], w->params.alpha, ln->buf[0], ln->buf[1],
						    cnt, s);
				if (e == cudaSuccess)
					e = to_host(ln, job, job->out + off, ln->buf[1], bytes);
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

/* Make @ev (job->join[i], created on first use) mark where @from is now,
 * and make @to wait for it. */
static cudaError_t join_lane(cudaEvent_t *ev, cudaStream_t from, cudaStream_t to)
{
	cudaError_t e = cudaSuccess;

	if (!*ev) {
		e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming);
		if (e != cudaSuccess)
			*ev = NULL;
	}
	if (e == cudaSuccess)
		e = cudaEventRecord(*ev, from);
	if (e == cudaSuccess)
		e = cudaStreamWaitEvent(to, *ev, 0);
	return e;
}

/* A staged matrix from @src to @dev (or, with @src NULL, from @dev to
 * @dst), in pieces of at most VGPU_CUDA_STAGE_BYTES dealt to the level's
 * lanes from *@lane on, so that one lane's DMA overlaps the next one's
 * host copy. */
static cudaError_t stage_matrix(struct vgpu_cuda_level *lv, struct vgpu_cuda_job *job,
				char *dev, const char *src, char *dst, size_t bytes, int *lane)
{
	cudaError_t e = cudaSuccess;

	for (size_t off = 0; off < bytes && e == cudaSuccess; off += VGPU_CUDA_STAGE_BYTES) {
		struct vgpu_cuda_lane *ln = &lv->lane[(*lane)++ % VGPU_CUDA_LANES];
		size_t len = bytes - off < VGPU_CUDA_STAGE_BYTES ? bytes - off
								 : VGPU_CUDA_STAGE_BYTES;
		void *const d[1] = { dev + off };
		const void *const h[1] = { src + off };

		e = src ? vgpu_cuda_stage_in(ln, job, 1, d, h, &len)
			: vgpu_cuda_stage_out(ln, job, dst + off, dev + off, len);
	}
	return e;
}

/* sgemm's inputs on the device, on lane 0 when it is done: one copy each,
 * or staged pieces over every lane, then joined into lane 0. Returns the
 * lanes used. */
static int sgemm_in(struct vgpu_cuda_level *lv, struct vgpu_cuda_job *job, cudaError_t *ret)
{
	const struct vgpu_work *w = job->work;
	bool read_c = w->params.beta != 0.0f; /* beta == 0: C is not read */
	int count = read_c ? 3 : 2, lane = 0, used;
	cudaError_t e = cudaSuccess;

	if (job->path != VGPU_CUDA_STAGED) {
		void *dev[3] = { job->dev[0], job->dev[1], job->dev[2] };
		const void *src[3] = { job->in[0], job->in[1], job->in[2] };

		*ret = to_device(&lv->lane[0], job, count, dev, src, job->dev_size);
		return 1;
	}
	for (int i = 0; i < count && e == cudaSuccess; i++)
		e = stage_matrix(lv, job, job->dev[i], (const char *)job->in[i], NULL,
				 job->dev_size[i], &lane);
	used = lane < VGPU_CUDA_LANES ? lane : VGPU_CUDA_LANES;
	for (int i = 1; i < used && e == cudaSuccess; i++)
		e = join_lane(&job->join[i], lv->lane[i].stream, lv->lane[0].stream);
	*ret = e;
	return used;
}

/* The product on lane 0: one cuBLAS call; on a held lane, K-slices of
 * about VGPU_CUDA_SGEMM_SLICE_FLOP each, every one after a hold wait, so
 * that its blocks leave the SMs to a higher level within one slice (a
 * block of one large call runs for the whole K). C = A B in row-major is
 * C^T = B^T A^T in cuBLAS's column-major; slice [k0, k0 + ks) of the sum
 * takes columns k0.. of A (da + k0, lda = k) and rows k0.. of B
 * (db + k0 * n, ldb = n); the first slice applies beta, the others add. */
static cublasStatus_t product(struct vgpu_cuda_ctx *c, struct vgpu_cuda_level *lv,
			      struct vgpu_cuda_job *job, cudaError_t *e)
{
	const struct vgpu_op_params *p = &job->work->params;
	const float *da = job->dev[0], *db = job->dev[1];
	float *dc = job->dev[2];
	uint64_t ks = p->k;
	cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
	static const float one = 1.0f;

	if (vgpu_cuda_held(&lv->lane[0])) {
		uint64_t per_k = 2 * p->m * p->n;

		ks = per_k ? VGPU_CUDA_SGEMM_SLICE_FLOP / per_k : p->k;
		ks = ks / 64 * 64;
		if (ks < 256)
			ks = 256;
	}
	/* At least one call, also for k == 0 (C = beta C). */
	for (uint64_t k0 = 0; st == CUBLAS_STATUS_SUCCESS; ) {
		uint64_t len = p->k - k0 < ks ? p->k - k0 : ks;

		*e = vgpu_cuda_hold_wait(&lv->lane[0]);
		if (*e != cudaSuccess)
			break;
		st = c->cublas.sgemm(lv->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)p->n, (int)p->m,
				     (int)len, &p->alpha, db + k0 * p->n, (int)p->n, da + k0,
				     (int)p->k, k0 ? &one : &p->beta, dc, (int)p->n);
		k0 += len;
		if (k0 >= p->k)
			break;
	}
	return st;
}

/* Returns the lanes used. */
static int enqueue_sgemm(struct vgpu_cuda_ctx *c, struct vgpu_cuda_level *lv,
			 struct vgpu_cuda_job *job)
{
	float *dc = job->dev[2];
	cudaError_t e;
	int used = sgemm_in(lv, job, &e), lane = 0;

	if (e != cudaSuccess) {
		note(job, e);
		return used;
	}
	cublasStatus_t st = product(c, lv, job, &e);

	if (e != cudaSuccess) {
		note(job, e);
		return used;
	}
	if (st != CUBLAS_STATUS_SUCCESS) {
		job->status = st == CUBLAS_STATUS_ALLOC_FAILED ? VGPU_NO_MEMORY : VGPU_BACKEND;
		cudaGetLastError();
		return used;
	}
	if (job->path != VGPU_CUDA_STAGED) {
		e = to_host(&lv->lane[0], job, job->out, dc, job->dev_size[2]);
	} else {
		/* Every lane waits for the product, then takes its pieces. */
		for (int i = 1; i < VGPU_CUDA_LANES && e == cudaSuccess; i++)
			e = join_lane(&job->join[0], lv->lane[0].stream, lv->lane[i].stream);
		if (e == cudaSuccess)
			e = stage_matrix(lv, job, (char *)dc, NULL, (char *)job->out,
					 job->dev_size[2], &lane);
		used = VGPU_CUDA_LANES;
	}
	if (e != cudaSuccess)
		note(job, e);
	return used;
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

	for (int i = 1; i < used && e == cudaSuccess; i++)
		e = join_lane(&job->join[i], lv->lane[i].stream, s0);
	if (e == cudaSuccess && w->op == VGPU_OP_REDUCE_SUM && job->status == VGPU_OK) {
		uint64_t ce = vgpu_cuda_chunk_elems(w->params.n);
		uint64_t chunks = (w->params.n + ce - 1) / ce;
		/* The sum lands in the job's pinned result slot itself where
		 * kernels may write host memory; else after the partials, and
		 * is copied there. */
		bool direct = lv->c->host_direct;
		float *sum = direct ? job->result : (float *)((double *)job->dev[0] + chunks);
		cudaError_t r = vgpu_cuda_reduce_final(job->dev[0], (uint32_t)chunks, sum, s0);

		if (r == cudaSuccess && !direct)
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
	if (e == cudaSuccess && vgpu_work_bytes(w) >= VGPU_CUDA_BLOCKING_BYTES) {
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
	/* From here on the job is tracked, and complete() ends its hold
	 * (cuda_hold.c): lower levels hold from now until then. */
	vgpu_cuda_hold_begin(c, w->priority, job->start_ns);
	if (rc == VGPU_OK) {
		rc = vgpu_cuda_stage_prepare(c, job);
		if (rc != VGPU_OK)
			release(c, job);
	}
	if (rc != VGPU_OK) {
		job->status = rc;
		job->end_ns = vgpu_now_ns();
		job->waited = true;
		vgpu_cuda_track(job);
		return rc;
	}
	if (w->op == VGPU_OP_SGEMM)
		used = enqueue_sgemm(c, lv, job);
	else
		used = enqueue_vector(c, lv, job);
	close_job(lv, job, used);
	return VGPU_OK;
}
