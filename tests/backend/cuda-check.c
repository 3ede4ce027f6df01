/* SPDX-License-Identifier: MIT */
/*
 * cuda-check.c - the CUDA backend on a real GPU, in one command: every op
 * on the cuda and the cpu backend from tiny sizes to 64 MiB vectors and
 * sgemm 1024/4096, each output checked against exact (double) results;
 * many works in flight from several threads; a high-priority work among
 * saturating low-priority ones; a device-pool bound too small for a work
 * (VGPU_NO_MEMORY, then later works succeed, some waiting for memory); a
 * real cudaMalloc failure; pinned-buffer reuse; every op again staged
 * (vgpu_work.staged: Xen's unpinnable guest RAM) from malloc'd buffers; small works raise no GPU
 * interrupt while large ones do (/proc/interrupts). Then, for information,
 * vector_add timings against native CUDA in the same process (the same
 * kernel, copy in, compute, copy out, stream sync). Prints a table and exits
 * 0 only when every check passed (info lines are not checks).
 *
 * Usage: cuda-check [--quick] [--perf] [--device N] [--hold-us N]
 *   --quick  skips the 64 MiB vectors, sgemm 4096 and the saturation test;
 *   --perf   runs only the timings.
 *   --hold-us N  the hold of cuda_hold.c on (gpu_hold_us), copies in 1 MiB
 *            pieces: every check through the held paths, and the hold's
 *            starvation bound.
 * Under ASan, run with ASAN_OPTIONS=protect_shadow_gap=0 (CUDA maps memory
 * where ASan's shadow gap is).
 *
 * Not a meson test: it needs a GPU. Never: treat a skipped check as passed.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "check.h"
#include "cuda_kernels.h"
#include "vgpu_error.h"
#include "vgpu_clock.h"

static const struct vgpu_backend_ops *cu;
static const struct vgpu_backend_ops *cpu = &vgpu_backend_cpu;
static int failures, checks;
static bool quick, perf_only;

static void row(bool ok, const char *what, const char *detail)
{
	checks++;
	if (!ok)
		failures++;
	printf("| %-4s | %-44s | %s\n", ok ? "ok" : "FAIL", what, detail);
	fflush(stdout);
}

/* One work's completion, waited for by the test. */
struct sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int status;
	uint64_t exec_ns, done_ns;
};

static void sync_init(struct sync *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void sync_destroy(struct sync *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

static void sync_done(struct vgpu_work *w, int status, uint64_t exec_ns)
{
	struct sync *s = w->user;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->status = status;
	s->exec_ns = exec_ns;
	s->done_ns = vgpu_now_ns();
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Wait up to @seconds for @n calls; false on timeout. */
static bool sync_wait(struct sync *s, int n, int seconds)
{
	struct timespec ts;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&s->lock);
	while (s->calls < n && ok)
		ok = pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0 || s->calls >= n;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Submit @w (retrying while busy) and wait for it; the status, or
 * VGPU_TIMEOUT. *ret_wall_ns is submit to done. */
static int run_one(const struct vgpu_backend_ops *b, void *ctx, struct vgpu_work *w,
		   uint64_t *ret_wall_ns, uint64_t *ret_exec_ns)
{
	struct sync s;
	int rc;

	sync_init(&s);
	w->done = sync_done;
	w->user = &s;
	uint64_t t0 = vgpu_now_ns();

	while ((rc = b->submit(ctx, w)) == VGPU_BUSY)
		usleep(100);
	if (rc == VGPU_OK)
		rc = sync_wait(&s, 1, 600) ? s.status : VGPU_TIMEOUT;
	if (s.calls > 1)
		rc = VGPU_ERROR; /* done() twice */
	*ret_wall_ns = s.done_ns > t0 ? s.done_ns - t0 : 0;
	*ret_exec_ns = s.exec_ns;
	sync_destroy(&s);
	return rc;
}

static double rel_of(enum vgpu_op op, uint32_t k)
{
	switch (op) {
	case VGPU_OP_SGEMM:
		return (k + 2) * (double)FLT_EPSILON;
	case VGPU_OP_REDUCE_SUM:
		return 1e-5;
	default:
		return 1e-4;
	}
}

struct op_case {
	enum vgpu_op op;
	uint32_t m, n, k;
	float alpha, beta;
	bool big; /* skipped by --quick */
};

static const struct op_case cases[] = {
	{ VGPU_OP_VECTOR_ADD, 0, 1, 0, 0, 0, false },
	{ VGPU_OP_VECTOR_ADD, 0, 1001, 0, 0, 0, false },
	{ VGPU_OP_VECTOR_ADD, 0, 1u << 10, 0, 0, 0, false },   /* 4 KiB per vector */
	{ VGPU_OP_VECTOR_ADD, 0, 1u << 16, 0, 0, 0, false },   /* 256 KiB */
	{ VGPU_OP_VECTOR_ADD, 0, 1u << 20, 0, 0, 0, false },   /* 4 MiB */
	{ VGPU_OP_VECTOR_ADD, 0, (1u << 19) + 1, 0, 0, 0, false }, /* 2 chunks, 1-element tail */
	{ VGPU_OP_VECTOR_ADD, 0, (5u << 20) + 3, 0, 0, 0, false }, /* 3 chunks, odd tail */
	{ VGPU_OP_VECTOR_ADD, 0, 1u << 24, 0, 0, 0, true },    /* 64 MiB */
	{ VGPU_OP_SAXPY, 0, 1, 0, 2.5f, 0, false },
	{ VGPU_OP_SAXPY, 0, 4099, 0, -0.75f, 0, false },
	{ VGPU_OP_SAXPY, 0, 1u << 20, 0, 3.0f, 0, false },
	{ VGPU_OP_SAXPY, 0, (1u << 24) + 1, 0, 0.5f, 0, true },
	{ VGPU_OP_REDUCE_SUM, 0, 1, 0, 0, 0, false },
	{ VGPU_OP_REDUCE_SUM, 0, 777, 0, 0, 0, false },
	{ VGPU_OP_REDUCE_SUM, 0, 1u << 20, 0, 0, 0, false },
	{ VGPU_OP_REDUCE_SUM, 0, (7u << 20) + 5, 0, 0, 0, false },
	{ VGPU_OP_REDUCE_SUM, 0, 1u << 24, 0, 0, 0, true },
	{ VGPU_OP_SGEMM, 1, 1, 1, 1.0f, 0.0f, false },
	{ VGPU_OP_SGEMM, 3, 5, 7, 2.5f, -0.5f, false },
	{ VGPU_OP_SGEMM, 5, 3, 7, 0.0f, 1.0f, false },
	{ VGPU_OP_SGEMM, 33, 65, 17, 1.0f, 0.25f, false },
	{ VGPU_OP_SGEMM, 1024, 1024, 1024, 1.0f, 0.0f, false },
	{ VGPU_OP_SGEMM, 1000, 1100, 900, 0.5f, 2.0f, false },
	{ VGPU_OP_SGEMM, 2048, 2048, 1000, 1.0f, 0.5f, false }, /* with --hold-us: K-slices, a tail */
	{ VGPU_OP_SGEMM, 4096, 4096, 4096, 1.0f, 0.5f, true },
};

static void op_label(char *buf, size_t size, enum vgpu_op op, uint32_t m, uint32_t n, uint32_t k)
{
	if (op == VGPU_OP_SGEMM)
		snprintf(buf, size, "%s m=%u n=%u k=%u", vgpu_op_name(op), m, n, k);
	else
		snprintf(buf, size, "%s n=%u (%.1f KiB)", vgpu_op_name(op), n, n * 4.0 / 1024);
}

/* Every op on both backends, against exact results. @staged: the works
 * are staged (vgpu_work.staged), in plain malloc() memory as Xen's foreign
 * pages would be, on cuda only. */
static void correctness(void *cu_ctx, void *cpu_ctx, bool staged)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, cu_ctx };

	if (staged)
		printf("\n| %-4s | %-44s | %s\n", "", "staged op on cuda (malloc'd buffers)",
		       "cuda err/tol, cuda exec ms (wall)");
	else
		printf("\n| %-4s | %-44s | %s\n", "", "op on cuda and cpu",
		       "cuda err/tol, cpu err/tol, cuda exec ms (wall), cpu wall ms");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct op_case *oc = &cases[i];
		struct bt_case tc;
		struct vgpu_work w;
		char label[96], detail[256];
		uint64_t cu_wall = 0, cu_exec = 0, cpu_wall = 0, cpu_exec = 0;

		if (quick && oc->big)
			continue;
		op_label(label, sizeof(label), oc->op, oc->m, oc->n, oc->k);
		if (!bt_case_new(&tc, oc->op, oc->m, oc->n, oc->k, oc->alpha, oc->beta,
				 (uint32_t)i + 7, staged ? &bt_malloc : &pinned)) {
			row(false, label, "host_alloc failed");
			continue;
		}
		float *cpu_out = malloc(tc.out_count * sizeof(float));
		uint64_t samples = oc->op == VGPU_OP_SGEMM ? 20000 : UINT64_MAX;
		double rel = rel_of(oc->op, oc->k);

		bt_case_work(&tc, &w, (int)(i % 3), NULL, NULL);
		w.staged = staged;
		int rc_cu = run_one(cu, cu_ctx, &w, &cu_wall, &cu_exec);
		double e_cu = rc_cu == VGPU_OK ? bt_case_check(&tc, tc.out, NULL, rel, samples) : INFINITY;

		if (staged) {
			snprintf(detail, sizeof(detail), "%.3g, %.3f (%.3f)%s%s", e_cu, cu_exec / 1e6,
				 cu_wall / 1e6, rc_cu ? " cuda: " : "",
				 rc_cu ? vgpu_strerror(rc_cu) : "");
			row(rc_cu == VGPU_OK && e_cu <= 1.0, label, detail);
			free(cpu_out);
			bt_case_free(&tc);
			continue;
		}

		bt_case_work(&tc, &w, (int)(i % 3), NULL, NULL);
		w.out = cpu_out;
		int rc_cpu = cpu_out ? run_one(cpu, cpu_ctx, &w, &cpu_wall, &cpu_exec) : VGPU_NO_MEMORY;
		double e_cpu = INFINITY;

		if (rc_cpu == VGPU_OK) {
			float *cuda_out = tc.out;

			tc.out = cpu_out;
			e_cpu = bt_case_check(&tc, cpu_out, NULL, rel, samples);
			tc.out = cuda_out;
		}
		snprintf(detail, sizeof(detail), "%.3g, %.3g, %.3f (%.3f), %.3f%s%s%s%s", e_cu, e_cpu,
			 cu_exec / 1e6, cu_wall / 1e6, cpu_wall / 1e6,
			 rc_cu ? " cuda: " : "", rc_cu ? vgpu_strerror(rc_cu) : "",
			 rc_cpu ? " cpu: " : "", rc_cpu ? vgpu_strerror(rc_cpu) : "");
		row(rc_cu == VGPU_OK && rc_cpu == VGPU_OK && e_cu <= 1.0 && e_cpu <= 1.0, label, detail);
		free(cpu_out);
		bt_case_free(&tc);
	}
}

/* Several submitter threads, many works in flight, every one checked. */
enum { SUBMITTERS = 3, PER_SUBMITTER = 100 };

struct flight {
	struct bt_case tc;
	struct vgpu_work w;
	struct sync s;
};

struct submitter {
	const struct vgpu_backend_ops *b;
	void *ctx;
	struct flight *f;
	int refused;
};

static void *submitter_main(void *arg)
{
	struct submitter *sub = arg;

	for (int i = 0; i < PER_SUBMITTER; i++) {
		int rc;

		while ((rc = sub->b->submit(sub->ctx, &sub->f[i].w)) == VGPU_BUSY)
			usleep(50);
		if (rc != VGPU_OK)
			sub->refused++;
	}
	return NULL;
}

static void concurrency(void *ctx)
{
	const int total = SUBMITTERS * PER_SUBMITTER;
	struct flight *f = calloc((size_t)total, sizeof(*f));
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	struct submitter subs[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	int bad = 0, twice = 0, refused = 0, built = 0;
	char detail[160];

	if (!f) {
		row(false, "concurrency", "out of memory");
		return;
	}
	for (int i = 0; i < total; i++, built++) {
		uint32_t r = (uint32_t)i * 2654435761u;
		enum vgpu_op op = (enum vgpu_op)(1 + (r >> 8) % VGPU_OP_COUNT);
		uint32_t n = 1 + (r >> 10) % (1u << 19);
		uint32_t m = 1 + (r >> 4) % 200, k = 1 + (r >> 20) % 150;

		if (op == VGPU_OP_SGEMM)
			n = 1 + n % 190;
		if (!bt_case_new(&f[i].tc, op, m, n, k, 1.5f, -1.0f, (uint32_t)i, &pinned))
			break;
		sync_init(&f[i].s);
		bt_case_work(&f[i].tc, &f[i].w, (int)((r >> 16) % 3), sync_done, &f[i].s);
	}
	if (built < total) {
		row(false, "concurrency", "host_alloc failed");
		goto out;
	}
	uint64_t t0 = vgpu_now_ns();

	for (int s = 0; s < SUBMITTERS; s++) {
		subs[s] = (struct submitter){ cu, ctx, f + s * PER_SUBMITTER, 0 };
		pthread_create(&th[s], NULL, submitter_main, &subs[s]);
	}
	for (int s = 0; s < SUBMITTERS; s++) {
		pthread_join(th[s], NULL);
		refused += subs[s].refused;
	}
	for (int i = 0; i < total; i++) {
		if (!sync_wait(&f[i].s, 1, 120) || f[i].s.status != VGPU_OK ||
		    bt_case_check(&f[i].tc, f[i].tc.out, NULL, rel_of(f[i].tc.op, f[i].tc.p.k),
				  4096) > 1.0)
			bad++;
	}
	uint64_t wall = vgpu_now_ns() - t0;

	usleep(100000); /* a second done() would come now */
	for (int i = 0; i < total; i++)
		twice += f[i].s.calls > 1;
	snprintf(detail, sizeof(detail), "%d works from %d threads in %.1f ms: %d wrong, %d done twice, %d refused",
		 total, SUBMITTERS, wall / 1e6, bad, twice, refused);
	row(bad == 0 && twice == 0 && refused == 0, "many works in flight, all checked", detail);
out:
	for (int i = 0; i < built; i++) {
		bt_case_free(&f[i].tc);
		sync_destroy(&f[i].s);
	}
	free(f);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A high-priority work submitted behind saturating low-priority ones. */
static void priority(void *ctx)
{
	enum { LOWS = 24, SOLO = 21 };
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	struct bt_case big, tiny;
	struct vgpu_work low[LOWS], high;
	struct sync ls[LOWS], hs;
	uint64_t solo[SOLO], wall, exec;
	char detail[256];

	if (!bt_case_new(&big, VGPU_OP_VECTOR_ADD, 0, 1u << 24, 0, 0, 0, 1, &pinned) ||
	    !bt_case_new(&tiny, VGPU_OP_VECTOR_ADD, 0, 1024, 0, 0, 0, 2, &pinned)) {
		row(false, "priority", "host_alloc failed");
		return;
	}
	for (int i = 0; i < SOLO; i++) {
		bt_case_work(&tiny, &high, 2, NULL, NULL);
		if (run_one(cu, ctx, &high, &solo[i], &exec) != VGPU_OK)
			solo[i] = UINT64_MAX;
	}
	qsort(solo, SOLO, sizeof(solo[0]), cmp_u64);

	sync_init(&hs);
	for (int i = 0; i < LOWS; i++) {
		sync_init(&ls[i]);
		/* Every low writes the same values to the same output: not checked here. */
		bt_case_work(&big, &low[i], 0, sync_done, &ls[i]);
		while (cu->submit(ctx, &low[i]) == VGPU_BUSY)
			usleep(100);
	}
	usleep(2000);
	bt_case_work(&tiny, &high, 2, sync_done, &hs);
	uint64_t t0 = vgpu_now_ns();
	int rc = cu->submit(ctx, &high);
	bool ok = rc == VGPU_OK && sync_wait(&hs, 1, 120) && hs.status == VGPU_OK;
	int lows_after = 0, lows_ok = 0;

	for (int i = 0; i < LOWS; i++) {
		ok = sync_wait(&ls[i], 1, 120) && ok;
		lows_ok += ls[i].status == VGPU_OK;
		lows_after += ls[i].done_ns > hs.done_ns;
	}
	wall = hs.done_ns - t0;
	ok = ok && lows_ok == LOWS && lows_after > 0 &&
	     bt_case_check(&tiny, tiny.out, NULL, 1e-4, UINT64_MAX) <= 1.0;
	snprintf(detail, sizeof(detail),
		 "high alone %.1f us (median); behind %d x 64 MiB lows %.1f us, %d lows finished after it",
		 solo[SOLO / 2] / 1e3, LOWS, wall / 1e3, lows_after);
	row(ok, "high priority overtakes queued low priority", detail);
	for (int i = 0; i < LOWS; i++)
		sync_destroy(&ls[i]);
	sync_destroy(&hs);
	bt_case_free(&big);
	bt_case_free(&tiny);
}

/* With --hold-us: a low-priority sgemm under back-to-back high-priority
 * works (which keep the lower levels holding) still completes, by the
 * forced opening of cuda_hold.c (HOLD_MAX_NS, 20 ms), within 100 ms. */
static void hold_bound(void *ctx)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	struct bt_case big, tiny;
	struct vgpu_work low, high;
	struct sync ls;
	uint64_t t0, until, wall, exec;
	int highs = 0, bad = 0;
	char detail[256];

	if (!bt_case_new(&big, VGPU_OP_SGEMM, 2048, 2048, 2048, 1.0f, 0.0f, 5, &pinned) ||
	    !bt_case_new(&tiny, VGPU_OP_VECTOR_ADD, 0, 1024, 0, 0, 0, 6, &pinned)) {
		row(false, "hold: low priority under continuous high", "host_alloc failed");
		return;
	}
	/* Highs first, so that the low work is launched while they run. */
	for (int i = 0; i < 20; i++) {
		bt_case_work(&tiny, &high, 2, NULL, NULL);
		bad += run_one(cu, ctx, &high, &wall, &exec) != VGPU_OK;
	}
	sync_init(&ls);
	bt_case_work(&big, &low, 0, sync_done, &ls);
	t0 = vgpu_now_ns();
	until = t0 + 2000000000ull;
	bool ok = cu->submit(ctx, &low) == VGPU_OK;

	while (ok && vgpu_now_ns() < until) {
		pthread_mutex_lock(&ls.lock);
		bool over = ls.calls > 0;
		pthread_mutex_unlock(&ls.lock);
		if (over)
			break;
		bt_case_work(&tiny, &high, 2, NULL, NULL);
		bad += run_one(cu, ctx, &high, &wall, &exec) != VGPU_OK;
		highs++;
	}
	ok = ok && sync_wait(&ls, 1, 120) && ls.status == VGPU_OK && bad == 0;
	wall = ls.done_ns - t0;
	ok = ok && wall <= 100000000ull && highs > 0 &&
	     bt_case_check(&big, big.out, NULL, 1e-4, 20000) <= 1.0;
	snprintf(detail, sizeof(detail),
		 "2048^3 low done in %.1f ms (at most 100) under %d back-to-back 4 KiB highs", wall / 1e6,
		 highs);
	row(ok, "hold: low priority under continuous high", detail);
	sync_destroy(&ls);
	bt_case_free(&big);
	bt_case_free(&tiny);
}

static bool one(void *ctx, enum vgpu_op op, uint32_t m, uint32_t n, uint32_t k, int want,
		const char *what)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	struct bt_case tc;
	struct vgpu_work w;
	uint64_t wall, exec;
	char detail[160];
	int rc;
	double e = 0;

	if (!bt_case_new(&tc, op, m, n, k, 1.0f, 1.0f, 99, &pinned)) {
		row(false, what, "host_alloc failed");
		return false;
	}
	bt_case_work(&tc, &w, 1, NULL, NULL);
	rc = run_one(cu, ctx, &w, &wall, &exec);
	if (rc == VGPU_OK)
		e = bt_case_check(&tc, tc.out, NULL, rel_of(op, k), 20000);
	snprintf(detail, sizeof(detail), "%s (wanted %s), err/tol %.3g, %.3f ms", vgpu_strerror(rc),
		 vgpu_strerror(want), e, wall / 1e6);
	row(rc == want && e <= 1.0, what, detail);
	bt_case_free(&tc);
	return rc == want;
}

/* A pool too small for a work; works that must wait for memory. */
static void small_pool(int device)
{
	struct vgpu_backend_config cfg = {
		.device = device, .max_inflight = 16, .max_device_bytes = (size_t)256 << 20,
	};
	struct bt_alloc pinned;
	struct bt_case tc[4];
	struct vgpu_work w[4];
	struct sync s[4];
	void *ctx;
	char err[512], detail[160];
	int ok = 0;

	if (cu->init(&cfg, &ctx, err, sizeof(err)) != VGPU_OK) {
		row(false, "init with a 256 MiB device bound", err);
		return;
	}
	one(ctx, VGPU_OP_SGEMM, 4096, 4096, 4096, VGPU_NO_MEMORY, "sgemm 4096 over a 256 MiB bound");
	/* Each needs 48 MiB of the ~110 MiB left: some wait for others' memory. */
	pinned = (struct bt_alloc){ cu->host_alloc, cu->host_free, ctx };
	for (int i = 0; i < 4; i++) {
		bt_case_new(&tc[i], VGPU_OP_SGEMM, 2048, 2048, 2048, 1.0f, 0.0f, (uint32_t)i, &pinned);
		sync_init(&s[i]);
		bt_case_work(&tc[i], &w[i], i % 3, sync_done, &s[i]);
		if (cu->submit(ctx, &w[i]) != VGPU_OK)
			s[i].status = VGPU_ERROR, s[i].calls = 1;
	}
	for (int i = 0; i < 4; i++) {
		ok += sync_wait(&s[i], 1, 120) && s[i].status == VGPU_OK &&
		      bt_case_check(&tc[i], tc[i].out, NULL, rel_of(VGPU_OP_SGEMM, 2048), 4000) <= 1.0;
		bt_case_free(&tc[i]);
		sync_destroy(&s[i]);
	}
	snprintf(detail, sizeof(detail), "%d of 4 correct", ok);
	row(ok == 4, "4 x sgemm 2048 sharing the bound", detail);
	one(ctx, VGPU_OP_VECTOR_ADD, 0, 1u << 22, 0, VGPU_OK, "vector_add 16 MiB after the failure");
	cu->fini(ctx);
}

/* cudaMalloc itself failing: three matrices larger than the device. */
static void device_oom(int device)
{
	struct vgpu_backend_config cfg = {
		.device = device, .max_inflight = 4, .max_device_bytes = (size_t)1 << 42,
	};
	size_t free_b = 0, total_b = 0;
	char err[512];
	void *ctx;

	cudaSetDevice(device);
	if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess || cu->init(&cfg, &ctx, err, sizeof(err))) {
		row(false, "real device out of memory", "cannot set up");
		return;
	}
	/* d*d floats per matrix, 3 of them 1.2x the device memory; the host side
	 * is reserved, not touched (the work fails before any copy). */
	uint32_t d = (uint32_t)sqrt((double)total_b * 1.2 / 3 / sizeof(float));
	size_t bytes = (size_t)d * d * sizeof(float);
	float *buf[4];
	struct vgpu_work w = { .op = VGPU_OP_SGEMM, .params = { .m = d, .n = d, .k = d,
								.alpha = 1.0f, .beta = 1.0f } };
	bool mapped = true;

	for (int i = 0; i < 4; i++) {
		buf[i] = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		mapped = mapped && buf[i] != MAP_FAILED;
	}
	if (mapped) {
		uint64_t wall, exec;
		char detail[160];

		for (int i = 0; i < 3; i++) {
			w.in[i] = buf[i];
			w.in_count[i] = (uint64_t)d * d;
		}
		w.out = buf[3];
		w.out_count = (uint64_t)d * d;
		int rc = run_one(cu, ctx, &w, &wall, &exec);

		snprintf(detail, sizeof(detail), "sgemm %u^3 (3 x %.1f GiB on a %.1f GiB device): %s",
			 d, bytes / 1073741824.0, total_b / 1073741824.0, vgpu_strerror(rc));
		row(rc == VGPU_NO_MEMORY, "cudaMalloc failure is VGPU_NO_MEMORY", detail);
	} else {
		row(false, "cudaMalloc failure is VGPU_NO_MEMORY", "mmap failed");
	}
	for (int i = 0; i < 4; i++) {
		if (buf[i] != MAP_FAILED)
			munmap(buf[i], bytes);
	}
	one(ctx, VGPU_OP_SGEMM, 300, 200, 100, VGPU_OK, "sgemm after the failure");
	one(ctx, VGPU_OP_REDUCE_SUM, 0, 3u << 20, 0, VGPU_OK, "reduce_sum after the failure");
	cu->fini(ctx);
}

/* host_alloc reuses pinned buffers: the second 64 MiB one comes from the pool. */
static void pinned_reuse(void *ctx)
{
	size_t size = (size_t)64 << 20;
	uint64_t t0 = vgpu_now_ns();
	void *p = cu->host_alloc(ctx, size);
	uint64_t t1 = vgpu_now_ns();

	cu->host_free(ctx, p, size);
	uint64_t t2 = vgpu_now_ns();
	void *q = cu->host_alloc(ctx, size);
	uint64_t t3 = vgpu_now_ns();
	char detail[160];

	snprintf(detail, sizeof(detail), "first %.1f us, again %.1f us, same buffer: %s",
		 (t1 - t0) / 1e3, (t3 - t2) / 1e3, p == q ? "yes" : "no");
	row(p && q && p == q && ((uintptr_t)q % 64) == 0, "pinned host buffers are reused", detail);
	cu->host_free(ctx, q, size);
}

/* host_alloc_cached serves only what the pool holds, and never pins: a
 * size class no earlier check used (700 MiB). */
static void pinned_cached_only(void *ctx)
{
	size_t size = (size_t)700 << 20;
	void *none = cu->host_alloc_cached(ctx, size);
	void *p = cu->host_alloc(ctx, size);

	cu->host_free(ctx, p, size);
	bool cached = cu->host_cached(ctx, size);
	void *q = cu->host_alloc_cached(ctx, size);
	void *r = q ? cu->host_alloc_cached(ctx, size) : NULL;
	char detail[160];

	snprintf(detail, sizeof(detail), "before: %s; after a free: cached %s, %s; again: %s",
		 none ? "a block" : "none", cached ? "yes" : "no",
		 q == p ? "the same block" : "another", r ? "a block" : "none");
	row(p && !none && cached && q == p && !r, "host_alloc_cached takes only cached blocks",
	    detail);
	cu->host_free(ctx, none, size);
	cu->host_free(ctx, q, size);
	cu->host_free(ctx, r, size);
}

static void info(const char *what, const char *detail)
{
	printf("| %-4s | %-44s | %s\n", "info", what, detail);
	fflush(stdout);
}

/* The GPU's interrupts so far: the counts of the /proc/interrupts lines
 * that name nvidia, over all CPUs; -1 when there is none. */
static long long gpu_interrupts(void)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[4096];
	long long total = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (!p || !strstr(line, "nvidia"))
			continue;
		if (total < 0)
			total = 0;
		for (p++;;) {
			char *end;
			long long v = strtoll(p, &end, 10);

			if (end == p)
				break;
			total += v;
			p = end;
		}
	}
	fclose(f);
	return total;
}

/* @count vector_adds of @n floats one after another; the GPU interrupts
 * they caused, or -1 when a work failed or interrupts cannot be read. */
static long long interrupts_of(void *ctx, uint32_t n, int count)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	struct bt_case tc;
	struct vgpu_work w;
	uint64_t wall, exec;
	long long before, after;
	bool ok = true;

	if (!bt_case_new(&tc, VGPU_OP_VECTOR_ADD, 0, n, 0, 1.0f, 0.0f, 7, &pinned))
		return -1;
	before = gpu_interrupts();
	for (int i = 0; i < count && ok; i++) {
		bt_case_work(&tc, &w, 2, NULL, NULL);
		ok = run_one(cu, ctx, &w, &wall, &exec) == VGPU_OK;
	}
	after = gpu_interrupts();
	ok = ok && bt_case_check(&tc, tc.out, NULL, rel_of(VGPU_OP_VECTOR_ADD, 0), 4096) <= 1.0;
	bt_case_free(&tc);
	return ok && before >= 0 && after >= before ? after - before : -1;
}

/*
 * Small works must not arm GPU interrupts: inside a VM each one cost a
 * request about 30 us (docs/performance.md, runs 19 to 21). Large works do
 * arm them (their waiter sleeps on a blocking-sync event), which shows that
 * the count is read from the right lines.
 */
static void no_interrupts(void *ctx)
{
	enum { SMALL = 1000, LARGE = 50 };
	long long small = interrupts_of(ctx, 1u << 10, SMALL);
	long long large = interrupts_of(ctx, 1u << 20, LARGE);
	char detail[160];

	if (gpu_interrupts() < 0) {
		info("GPU interrupts", "no nvidia line in /proc/interrupts: not checked");
		return;
	}
	snprintf(detail, sizeof(detail), "%d works of 4 KiB: %lld; %d of 4 MiB: %lld", SMALL,
		 small, LARGE, large);
	/* A few may come from the driver's own housekeeping meanwhile. */
	row(small >= 0 && small <= SMALL / 100 && large >= LARGE / 2,
	    "small works raise no GPU interrupt", detail);
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_u64);
	return v[n / 2];
}

/* @depth works of @tc submitted back to back (staged or not): the time
 * per work, 0 when one failed. */
static uint64_t pipelined_ns(void *ctx, struct bt_case *tc, int depth, bool staged)
{
	struct vgpu_work *ws = calloc((size_t)depth, sizeof(*ws));
	struct sync *ss = calloc((size_t)depth, sizeof(*ss));
	uint64_t t0 = vgpu_now_ns(), last = 0;
	bool ok = ws && ss;

	for (int i = 0; ok && i < depth; i++) {
		sync_init(&ss[i]);
		bt_case_work(tc, &ws[i], 0, sync_done, &ss[i]);
		ws[i].staged = staged;
		while (cu->submit(ctx, &ws[i]) == VGPU_BUSY)
			usleep(20);
	}
	for (int i = 0; ok && i < depth; i++) {
		ok = sync_wait(&ss[i], 1, 60) && ss[i].status == VGPU_OK;
		last = ss[i].done_ns > last ? ss[i].done_ns : last;
	}
	for (int i = 0; ws && ss && i < depth; i++)
		sync_destroy(&ss[i]);
	free(ws);
	free(ss);
	return ok ? (last - t0) / (uint64_t)depth : 0;
}

/* The path of Xen's unpinnable guest RAM (vgpu_work.staged): @depth
 * vector_adds of @n floats per vector at once, from pinned buffers, from
 * malloc'd ones through the backend's staging, and from malloc'd ones
 * handed to the copy engines as they are (the driver's pageable copies:
 * what the staging replaces), each against native CUDA from pinned
 * buffers (one stream, copy in, kernel, copy out). */
static void perf_staged(void *ctx, uint32_t n, int depth)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	size_t bytes = (size_t)n * sizeof(float);
	struct bt_case tp, tm;
	float *da = NULL, *db = NULL;
	cudaStream_t s = NULL;
	uint64_t nat = UINT64_MAX, pin = 0, stg = 0, pag = 0;
	char what[96], detail[256];
	bool ok;

	ok = bt_case_new(&tp, VGPU_OP_VECTOR_ADD, 0, n, 0, 0, 0, 5, &pinned);
	if (ok && !bt_case_new(&tm, VGPU_OP_VECTOR_ADD, 0, n, 0, 0, 0, 5, &bt_malloc)) {
		bt_case_free(&tp);
		ok = false;
	}
	if (!ok || cudaMalloc((void **)&da, bytes) != cudaSuccess ||
	    cudaMalloc((void **)&db, bytes) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) {
		info("perf staged", "cannot set up");
		return;
	}
	for (int r = 0; r < 5 && ok; r++) { /* best of 5 */
		uint64_t t0 = vgpu_now_ns();

		ok = cudaMemcpyAsync(da, tp.in[0], bytes, cudaMemcpyHostToDevice, s) == cudaSuccess &&
		     cudaMemcpyAsync(db, tp.in[1], bytes, cudaMemcpyHostToDevice, s) == cudaSuccess &&
		     vgpu_cuda_vector_add(da, da, db, n, s) == cudaSuccess &&
		     cudaMemcpyAsync(tp.out, da, bytes, cudaMemcpyDeviceToHost, s) == cudaSuccess &&
		     cudaStreamSynchronize(s) == cudaSuccess;
		nat = vgpu_now_ns() - t0 < nat ? vgpu_now_ns() - t0 : nat;
	}
	for (int r = 0; r < 2 && ok; r++) { /* the second round counts */
		pin = pipelined_ns(ctx, &tp, depth, false);
		stg = pipelined_ns(ctx, &tm, depth, true);
		pag = pipelined_ns(ctx, &tm, depth, false);
		ok = pin && stg && pag;
	}
	if (ok) {
		double moved = 3.0 * (double)bytes; /* two inputs, one output */

		snprintf(what, sizeof(what), "perf staged vector_add %.0f MiB x %d",
			 bytes / 1048576.0, depth);
		snprintf(detail, sizeof(detail),
			 "GB/s: native pinned %.1f; backend pinned %.1f (%.2fx), staged %.1f (%.2fx), "
			 "pageable unstaged %.1f (%.2fx)",
			 moved / (double)nat, moved / (double)pin, (double)nat / (double)pin,
			 moved / (double)stg, (double)nat / (double)stg, moved / (double)pag,
			 (double)nat / (double)pag);
		info(what, detail);
	} else {
		info("perf staged", "a run failed");
	}
	cudaStreamDestroy(s);
	cudaFree(da);
	cudaFree(db);
	bt_case_free(&tp);
	bt_case_free(&tm);
}

/* vector_add of @n floats per vector: native (one stream, copy in, kernel,
 * copy out, sync) against the backend, one at a time and @depth at once. */
static void perf_vector_add(void *ctx, uint32_t n, int reps, int depth)
{
	struct bt_alloc pinned = { cu->host_alloc, cu->host_free, ctx };
	size_t bytes = (size_t)n * sizeof(float);
	uint64_t nat[200], wall[200], exec[200], t0;
	struct bt_case tc;
	float *da = NULL, *db = NULL;
	cudaStream_t s = NULL;
	char what[96], detail[256];
	bool ok = true;

	if (reps > 200)
		reps = 200;
	if (!bt_case_new(&tc, VGPU_OP_VECTOR_ADD, 0, n, 0, 0, 0, 5, &pinned) ||
	    cudaMalloc((void **)&da, bytes) != cudaSuccess ||
	    cudaMalloc((void **)&db, bytes) != cudaSuccess ||
	    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) {
		info("perf", "cannot set up");
		return;
	}
	for (int r = -10; r < reps && ok; r++) { /* 10 warm-up rounds */
		t0 = vgpu_now_ns();
		ok = cudaMemcpyAsync(da, tc.in[0], bytes, cudaMemcpyHostToDevice, s) == cudaSuccess &&
		     cudaMemcpyAsync(db, tc.in[1], bytes, cudaMemcpyHostToDevice, s) == cudaSuccess &&
		     vgpu_cuda_vector_add(da, da, db, n, s) == cudaSuccess &&
		     cudaMemcpyAsync(tc.out, da, bytes, cudaMemcpyDeviceToHost, s) == cudaSuccess &&
		     cudaStreamSynchronize(s) == cudaSuccess;
		if (r >= 0)
			nat[r] = vgpu_now_ns() - t0;
	}
	for (int r = -10; r < reps && ok; r++) {
		struct vgpu_work w;
		uint64_t wl, ex;

		bt_case_work(&tc, &w, 2, NULL, NULL);
		ok = run_one(cu, ctx, &w, &wl, &ex) == VGPU_OK;
		if (r >= 0) {
			wall[r] = wl;
			exec[r] = ex;
		}
	}
	/* @depth at once, submitted back to back: time per work. */
	uint64_t per = ok ? pipelined_ns(ctx, &tc, depth, false) : 0;

	ok = ok && per;
	if (ok) {
		uint64_t wall_p99;
		uint64_t nat_m = median(nat, reps), wall_m = median(wall, reps), exec_m = median(exec, reps);

		wall_p99 = wall[(reps * 99) / 100];
		snprintf(what, sizeof(what), "perf vector_add %.0f KiB per vector", bytes / 1024.0);
		snprintf(detail, sizeof(detail),
			 "native %.1f us; backend wall %.1f us (p99 %.1f), exec %.1f us: +%.1f us, %.2fx; %d at once: %.1f us each, %.2fx native",
			 nat_m / 1e3, wall_m / 1e3, wall_p99 / 1e3, exec_m / 1e3,
			 ((double)wall_m - (double)nat_m) / 1e3, (double)nat_m / (double)wall_m, depth,
			 per / 1e3, (double)nat_m / (double)per);
		info(what, detail);
	} else {
		info("perf", "a run failed");
	}
	cudaStreamDestroy(s);
	cudaFree(da);
	cudaFree(db);
	bt_case_free(&tc);
}

int main(int argc, char **argv)
{
	struct vgpu_backend_config cfg = { .max_inflight = 64 };
	struct vgpu_backend_config ccfg = { .threads = 0, .max_inflight = 64 };
	void *cu_ctx, *cpu_ctx;
	char err[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--perf") == 0) {
			perf_only = true;
		} else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
			cfg.device = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--hold-us") == 0 && i + 1 < argc) {
			cfg.hold_ns = strtoull(argv[++i], NULL, 10) * 1000u;
			cfg.copy_slice_bytes = (size_t)1 << 20; /* the mediator's default */
		} else {
			fprintf(stderr, "usage: %s [--quick] [--perf] [--device N] [--hold-us N]\n",
				argv[0]);
			return 2;
		}
	}
	cu = vgpu_backend_select("cuda", err, sizeof(err));
	if (!cu) {
		printf("cuda-check: the CUDA backend is not usable: %s\n", err);
		return 1;
	}
	{
		struct cudaDeviceProp prop;
		int least = 0, greatest = 0;

		cudaSetDevice(cfg.device);
		cudaDeviceGetStreamPriorityRange(&least, &greatest);
		if (cudaGetDeviceProperties(&prop, cfg.device) == cudaSuccess)
			printf("device %d: %s, %.1f GiB, cc %d.%d, stream priorities %d (least) .. %d "
			       "(greatest)\n",
			       cfg.device, prop.name, prop.totalGlobalMem / 1073741824.0, prop.major,
			       prop.minor, least, greatest);
	}
	if (cu->init(&cfg, &cu_ctx, err, sizeof(err)) != VGPU_OK) {
		printf("cuda-check: init: %s\n", err);
		return 1;
	}
	if (cpu->init(&ccfg, &cpu_ctx, err, sizeof(err)) != VGPU_OK) {
		printf("cuda-check: cpu init: %s\n", err);
		return 1;
	}
	if (!perf_only) {
		correctness(cu_ctx, cpu_ctx, false);
		correctness(cu_ctx, cpu_ctx, true);
		printf("\n| %-4s | %-44s | %s\n", "", "behaviour", "detail");
		pinned_reuse(cu_ctx);
		pinned_cached_only(cu_ctx);
		no_interrupts(cu_ctx);
		concurrency(cu_ctx);
		if (!quick)
			priority(cu_ctx);
		if (cfg.hold_ns)
			hold_bound(cu_ctx);
	}
	perf_vector_add(cu_ctx, 1u << 10, 200, 32);
	perf_vector_add(cu_ctx, 1u << 16, 100, 16);
	perf_vector_add(cu_ctx, 1u << 20, 50, 8);
	if (!quick) {
		perf_vector_add(cu_ctx, 1u << 24, 10, 8);
		perf_staged(cu_ctx, 1u << 24, 8);
	}
	perf_staged(cu_ctx, 1u << 20, 16);
	if (!perf_only) {
		small_pool(cfg.device);
		device_oom(cfg.device);
	}
	cu->fini(cu_ctx);
	cpu->fini(cpu_ctx);
	printf("\ncuda-check: %d of %d checks passed%s\n", checks - failures, checks,
	       quick ? " (quick)" : "");
	return failures ? 1 : 0;
}
