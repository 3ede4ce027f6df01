/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench - native CUDA against the mediated path, in one process run.
 *
 *   vgpu-bench [--transport URI]... [--json FILE] [--repeat N] [--warmup N]
 *              [--warmup-ms MS] [--depth D] [--case NAME]... [--budget-s S] [--deadline-s S]
 *              [--timeout-ms MS] [--device N] [--seed S] [--list] [--help]
 *
 * For each case (vector_add at 4 KiB, 256 KiB, 4 MiB and 64 MiB per vector;
 * sgemm 1024, 2048 and 4096, square) it measures, in this order:
 *   native pinned     cudaHostAlloc()ed buffers: copy in, kernel (sgemm:
 *                     cuBLAS), copy out, stream synchronize; wall time of
 *                     each iteration on this process's monotonic clock
 *   native pageable   vector_add from malloc()ed buffers, for reference
 *   mediated          the same op through libvgpu over each --transport,
 *                     blocking (vgpu_vector_add(), vgpu_sgemm()): the
 *                     client's wall time per request, with the mediator's
 *                     own queue and execution times beside it. Its arrays
 *                     come from vgpu_buffer_alloc(), as a program that
 *                     wants speed allocates them: in the shared window
 *                     over shm: (VGPU_SHM_MIB defaults to 1024 here), so
 *                     that both sides start from pinned memory
 *   mediated, pipelined  vector_add with --depth requests in flight
 *                     (vgpu_submit()/vgpu_wait()): requests per second and
 *                     GB/s (bytes in + out)
 *   native, pipelined    the same depth on as many streams, for reference
 *   native pinned again  to show how much the native figure drifts
 * Each measurement warms up first, then runs --repeat iterations (by case:
 * 50, or 20 for 64 MiB and sgemm 2048, 10 for sgemm 4096), stopping early once it has
 * run --budget-s (at least 3 samples), and every case is skipped once
 * --deadline-s has passed. Reported: median, p90, p99 (nearest rank), and
 * the mediated/native ratio of medians, both measured in this run.
 *
 * Checks (each failure makes the exit status 1): the native result against
 * the CPU (vector_add exactly, sgemm on sampled entries in double), and one
 * mediated result per case and transport, on a poisoned output buffer,
 * against the native result; for pipelined runs, the last output in each
 * slot. Targets (issue 3) are reported, never checked:
 *   small vector_add (4 KiB, 256 KiB): mediated p50 <= native p50 + 30 us
 *   large vector_add (4 MiB, 64 MiB): pipelined mediated throughput >=
 *   0.9 x native pinned throughput (bytes / native p50)
 *
 * Output: an aligned table on stdout, and with --json FILE everything
 * (rewritten after each case, so a cut-off run leaves what it finished).
 * Exit status: 0 every check passed, 1 a check failed or something did not
 * run, 2 usage error, 3 the watchdog ended a run stuck past the deadline.
 *
 * Never: count a check that did not run as passed, or time work that the
 * device has not finished.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "libvgpu.h"
#include "native.h"
#include "vgpu_clock.h"

#define PROG "vgpu-bench"
#define MAX_TRANSPORTS 4
#define MIN_SAMPLES 3
#define SMALL_TARGET_US 30.0
#define LARGE_TARGET_RATIO 0.9
#define WATCHDOG_GRACE_S 60

enum { CASE_VADD, CASE_SGEMM };

struct case_def {
	const char *name;
	int kind;
	size_t n;        /* vector_add: floats per vector; sgemm: m = n = k */
	unsigned repeat; /* default iterations */
	int target;      /* 0 none, 1 small latency, 2 large throughput */
};

static const struct case_def cases[] = {
	{ "vadd-4KiB", CASE_VADD, 1024, 50, 1 },
	{ "vadd-256KiB", CASE_VADD, 64 * 1024, 50, 1 },
	{ "vadd-4MiB", CASE_VADD, 1024 * 1024, 50, 2 },
	{ "vadd-64MiB", CASE_VADD, 16 * 1024 * 1024, 20, 2 },
	{ "sgemm-1024", CASE_SGEMM, 1024, 50, 0 },
	{ "sgemm-2048", CASE_SGEMM, 2048, 20, 0 },
	{ "sgemm-4096", CASE_SGEMM, 4096, 10, 0 },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* ---- settings ---- */

static struct {
	const char *transports[MAX_TRANSPORTS];
	int n_transports;
	const char *json;
	unsigned repeat;  /* 0: each case's default */
	unsigned warmup;
	unsigned warmup_ms;
	int depth;
	double budget_s;
	double deadline_s;
	int timeout_ms;
	int device;
	uint64_t seed;
	bool selected[N_CASES];
	bool any_selected;
	int argc;
	char **argv;
} opt = {
	.warmup = 3, .warmup_ms = 200, .depth = 4, .budget_s = 10, .deadline_s = 300, .timeout_ms = 60000, .seed = 1,
};

static uint64_t t_start_ns, deadline_ns;
static int failures, checks_passed;

__attribute__((format(printf, 1, 2))) static void errorf(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- samples and statistics ---- */

struct series {
	double *v; /* microseconds */
	size_t count, cap;
	bool stopped_early; /* by --budget-s or --deadline-s */
	bool ran;
};

struct stats {
	size_t count;
	double min, p50, p90, p99, max, mean;
};

static void series_push(struct series *s, double x)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		double *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			errorf("out of memory");
			exit(1);
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->count++] = x;
}

static void series_free(struct series *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of all at or below it. */
static double rank(const double *sorted, size_t n, double q)
{
	size_t i = (size_t)ceil(q * (double)n);

	return sorted[i ? i - 1 : 0];
}

static struct stats stats_of(const struct series *s)
{
	struct stats st = { 0 };
	double *v, sum = 0;

	if (!s->count)
		return st;
	v = malloc(s->count * sizeof(*v));
	if (!v) {
		errorf("out of memory");
		exit(1);
	}
	memcpy(v, s->v, s->count * sizeof(*v));
	qsort(v, s->count, sizeof(*v), cmp_double);
	for (size_t i = 0; i < s->count; i++)
		sum += v[i];
	st.count = s->count;
	st.min = v[0];
	st.max = v[s->count - 1];
	st.mean = sum / (double)s->count;
	st.p50 = s->count % 2 ? v[s->count / 2] : (v[s->count / 2 - 1] + v[s->count / 2]) / 2;
	st.p90 = rank(v, s->count, 0.90);
	st.p99 = rank(v, s->count, 0.99);
	free(v);
	return st;
}

/* ---- inputs and checks ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [-1, 1), never exactly 0. */
static void fill_random(float *p, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++) {
		float x = (float)((double)(rng_next(s) >> 40) / (double)(1u << 24)) * 2.0f - 1.0f;

		p[i] = x != 0.0f ? x : 0.5f;
	}
}

static void poison(float *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = NAN;
}

struct check {
	bool ran, ok;
	char what[96];
	double max_abs_err, rel_err;
	size_t bad; /* elements out of tolerance (NaN included) */
};

static void check_done(struct check *c)
{
	c->ran = true;
	c->ok = c->bad == 0;
}

/* Count a check that ran in the run's totals. */
static void tally(const struct check *c)
{
	if (c->ran && c->ok)
		checks_passed++;
	else
		failures++;
}

/* vector_add against the CPU: float addition rounds the same everywhere. */
static void check_vadd_cpu(struct check *c, const float *a, const float *b, const float *out,
			   size_t n)
{
	snprintf(c->what, sizeof(c->what), "native vs CPU (exact)");
	for (size_t i = 0; i < n; i++) {
		float want = a[i] + b[i];
		double d = fabs((double)out[i] - (double)want);

		if (!(d <= 0.0))
			c->bad++;
		if (d > c->max_abs_err || isnan(d))
			c->max_abs_err = isnan(d) ? INFINITY : d;
	}
	check_done(c);
}

/*
 * sgemm against double on @samples entries (corners first, then random):
 * each within 1e-4 of the sum of the magnitudes of its terms. A wrong
 * layout or transposition is off by the order of the entries themselves.
 */
static void check_sgemm_cpu(struct check *c, size_t dim, float alpha, const float *A,
			    const float *B, float beta, const float *C0, const float *out,
			    uint64_t seed)
{
	const size_t samples = 256;
	double worst = 0;

	snprintf(c->what, sizeof(c->what), "native vs CPU double (%zu sampled entries)", samples);
	for (size_t s = 0; s < samples; s++) {
		size_t i, j;

		if (s < 4) {
			i = s & 1 ? dim - 1 : 0;
			j = s & 2 ? dim - 1 : 0;
		} else {
			i = rng_next(&seed) % dim;
			j = rng_next(&seed) % dim;
		}
		double acc = 0, mag = 0;

		for (size_t k = 0; k < dim; k++) {
			double t = (double)A[i * dim + k] * (double)B[k * dim + j];

			acc += t;
			mag += fabs(t);
		}
		double want = (double)alpha * acc + (double)beta * C0[i * dim + j];
		double scale = fabs((double)alpha) * mag + fabs((double)beta * C0[i * dim + j]);
		double d = fabs((double)out[i * dim + j] - want);

		if (!(d <= 1e-4 * scale + 1e-6))
			c->bad++;
		if (isnan(d))
			d = INFINITY;
		if (d > c->max_abs_err)
			c->max_abs_err = d;
		if (scale > 0 && d / scale > worst)
			worst = d / scale;
	}
	c->rel_err = worst;
	check_done(c);
}

/*
 * @out against @ref: ||out - ref|| / ||ref|| <= @rel_tol and every element
 * within @elem_tol of max |ref|; NaN never passes.
 */
static void check_against(struct check *c, const char *what, const float *out, const float *ref,
			  size_t n, double rel_tol, double elem_tol)
{
	double num = 0, den = 0, big = 0;

	snprintf(c->what, sizeof(c->what), "%s", what);
	for (size_t i = 0; i < n; i++)
		if (fabs((double)ref[i]) > big)
			big = fabs((double)ref[i]);
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)out[i] - (double)ref[i]);

		if (!(d <= elem_tol * big))
			c->bad++;
		if (isnan(d))
			d = INFINITY;
		if (d > c->max_abs_err)
			c->max_abs_err = d;
		num += d * d;
		den += (double)ref[i] * (double)ref[i];
	}
	c->rel_err = den > 0 ? sqrt(num / den) : sqrt(num);
	if (!(c->rel_err <= rel_tol) && c->bad == 0)
		c->bad = 1;
	check_done(c);
}

/* ---- the work of one case ---- */

__attribute__((format(printf, 2, 3))) static void set_error(char *buf, const char *fmt, ...)
{
	va_list ap;

	if (buf[0])
		return; /* keep the first */
	va_start(ap, fmt);
	vsnprintf(buf, 256, fmt, ap);
	va_end(ap);
}

#define MAX_BUFS 16 /* a case's buffers from one client at once */

struct transport {
	const char *uri;
	char label[16];
	vgpu_client *client;
	int connect_rc;
	void *bufs[MAX_BUFS];  /* from vgpu_buffer_alloc(), for this case */
	int n_bufs;
};
static struct transport transports[MAX_TRANSPORTS];

/* @floats floats from @tp's client, freed at the end of the case; NULL
 * (with the reason in @err) when the client has no room. */
static float *buf_alloc(struct transport *tp, size_t floats, char *err)
{
	void *p = NULL;
	int rc;

	if (tp->n_bufs == MAX_BUFS) {
		set_error(err, "more than %d buffers", MAX_BUFS);
		return NULL;
	}
	rc = vgpu_buffer_alloc(tp->client, floats * sizeof(float), &p);
	if (rc != VGPU_OK) {
		set_error(err, "vgpu_buffer_alloc(%zu bytes): %s", floats * sizeof(float),
			  vgpu_strerror(rc));
		return NULL;
	}
	tp->bufs[tp->n_bufs++] = p;
	return p;
}

static void bufs_free(struct transport *tp)
{
	for (int i = 0; i < tp->n_bufs; i++)
		vgpu_buffer_free(tp->client, tp->bufs[i]);
	tp->n_bufs = 0;
}

static void log_connect(void *opaque, const char *message)
{
	errorf("%s: %s", (const char *)opaque, message);
}

/*
 * After a failed request the connection is dropped: a request that timed
 * out is still outstanding, and only vgpu_close() guarantees that its
 * buffers are never written again. The next case connects anew.
 */
static void drop_client(struct transport *tp, int why)
{
	/* Buffers go first: vgpu_buffer_free() needs the client, and nothing
	 * writes them between the two calls (libvgpu has no threads). */
	bufs_free(tp);
	vgpu_close(tp->client);
	tp->client = NULL;
	tp->connect_rc = why;
}


struct pipe_result {
	bool ran;
	unsigned requests;
	double seconds;
	double gbps;
	bool stopped_early;
};

struct mediated_result {
	struct series lat, exec, queue;
	struct pipe_result pipe;
	struct check check, pipe_check;
	char error[256];
	bool target_evaluated, target_met;
	char target_text[160];
};

struct work {
	const struct case_def *cd;
	size_t n_a, n_b, n_c; /* floats: inputs a/A, b/B, C (sgemm), output */
	size_t n_out;
	size_t bytes;         /* in + out per request */
	double flops;         /* sgemm: 2 m n k */
	float alpha, beta;
	float *pa, *pb, *pc, *pout; /* pinned */
	float *ga, *gb, *gc, *gout; /* pageable */
	float *ma, *mb, *mc;        /* mediated inputs: vgpu_buffer_alloc() of the client */
	float *mout;                /* mediated output (sgemm: C worked in place) */
	float *ref;                 /* the native result */
	struct bn_vadd *vadd;
	struct bn_sgemm *sgemm;
	vgpu_client *client; /* the transport in use */
	char error[256];
	bool skipped;

	struct series native, pageable, native_again;
	struct pipe_result native_pipe;
	struct check native_check;
	struct mediated_result med[MAX_TRANSPORTS];
};


static float *page_alloc(size_t floats)
{
	size_t bytes = floats ? floats * sizeof(float) : 4096;
	void *p = NULL;

	if (posix_memalign(&p, 4096, bytes))
		return NULL;
	return p;
}

typedef int iter_fn(struct work *w, struct vgpu_timing *t);

static int it_native_pinned(struct work *w, struct vgpu_timing *t)
{
	(void)t;
	if (w->cd->kind == CASE_VADD) {
		if (bn_vadd_run(w->vadd, w->pa, w->pb, w->pout) == 0)
			return 0;
	} else if (bn_sgemm_run(w->sgemm, w->alpha, w->pa, w->pb, w->beta, w->pc, w->pout) == 0) {
		return 0;
	}
	set_error(w->error, "native: %s", bn_error());
	return -1;
}

static int it_native_pageable(struct work *w, struct vgpu_timing *t)
{
	(void)t;
	if (bn_vadd_run(w->vadd, w->ga, w->gb, w->gout) == 0)
		return 0;
	set_error(w->error, "native pageable: %s", bn_error());
	return -1;
}

/* The blocking API, as a program in a VM calls it. */
static int it_mediated(struct work *w, struct vgpu_timing *t)
{
	size_t d = w->cd->n;
	int rc;

	if (w->cd->kind == CASE_VADD)
		rc = vgpu_vector_add(w->client, w->ma, w->mb, w->mout, d, t);
	else
		rc = vgpu_sgemm(w->client, d, d, d, w->alpha, w->ma, w->mb, w->beta, w->mout, t);
	return rc;
}

static bool out_of_time(void)
{
	return vgpu_now_ns() >= deadline_ns;
}

/*
 * Warm up, then time up to @repeat iterations into @lat (and the mediator's
 * own times into @exec, @queue when given). Returns 0, or the failing
 * iteration's code (an error is recorded by the caller or the iteration).
 */
static int measure(struct work *w, iter_fn *fn, unsigned repeat, struct series *lat,
		   struct series *exec, struct series *queue)
{
	uint64_t budget = (uint64_t)(opt.budget_s * 1e9), start;
	struct vgpu_timing t;
	int rc;

	lat->ran = true;
	start = vgpu_now_ns();
	for (unsigned i = 0; i < opt.warmup ||
			     vgpu_now_ns() - start < (uint64_t)opt.warmup_ms * 1000000u;
	     i++) {
		rc = fn(w, &t);
		if (rc != 0)
			return rc;
	}
	start = vgpu_now_ns();
	for (unsigned i = 0; i < repeat; i++) {
		uint64_t t0 = vgpu_now_ns();

		if (i >= MIN_SAMPLES && (t0 - start >= budget || t0 >= deadline_ns)) {
			lat->stopped_early = true;
			break;
		}
		memset(&t, 0, sizeof(t));
		rc = fn(w, &t);
		uint64_t t1 = vgpu_now_ns();

		if (rc != 0)
			return rc;
		series_push(lat, (double)(t1 - t0) / 1e3);
		if (exec)
			series_push(exec, (double)t.exec_ns / 1e3);
		if (queue)
			series_push(queue, (double)t.queue_ns / 1e3);
	}
	return 0;
}

static void pipe_finish(struct pipe_result *r, const struct work *w, uint64_t t0)
{
	r->seconds = (double)(vgpu_now_ns() - t0) / 1e9;
	r->gbps = r->seconds > 0 ? (double)r->requests * (double)w->bytes / r->seconds / 1e9 : 0;
}

/*
 * vector_add with opt.depth requests in flight through @c: one untimed round
 * of depth requests, then @total timed ones. Outputs go to @outs[slot]; the
 * last output of each slot is checked against the native result.
 */
static int pipelined_mediated(struct work *w, struct transport *tp, unsigned total,
			      struct mediated_result *m)
{
	vgpu_client *c = tp->client;
	int depth = opt.depth;
	float **outs = calloc((size_t)depth, sizeof(*outs));
	uint64_t *ids = calloc((size_t)depth, sizeof(*ids));
	bool *busy = calloc((size_t)depth, sizeof(*busy));
	struct vgpu_op_params p = { .n = (uint32_t)w->cd->n };
	const float *const in[3] = { w->ma, w->mb, NULL };
	uint64_t budget = (uint64_t)(opt.budget_s * 1e9), t0 = 0;
	int rc = 0;

	m->pipe.ran = true;
	if (!outs || !ids || !busy) {
		rc = VGPU_NO_MEMORY;
		goto out;
	}
	for (int s = 0; s < depth; s++) {
		if (!(outs[s] = buf_alloc(tp, w->n_out, m->error))) {
			rc = VGPU_NO_MEMORY;
			goto out;
		}
		poison(outs[s], w->n_out);
	}
	for (int round = 0; round < 2 && rc == 0; round++) {
		unsigned n_req = round == 0 ? (unsigned)depth : total;

		if (round == 1)
			t0 = vgpu_now_ns();
		for (unsigned i = 0; i < n_req; i++) {
			int s = (int)(i % (unsigned)depth);

			if (busy[s]) {
				busy[s] = false;
				rc = vgpu_wait(c, ids[s], opt.timeout_ms, NULL);
				if (rc != VGPU_OK)
					break;
			}
			uint64_t now = vgpu_now_ns();

			if (round == 1 && i >= 2u * (unsigned)depth &&
			    (now - t0 >= budget || now >= deadline_ns)) {
				m->pipe.stopped_early = true;
				break;
			}
			rc = vgpu_submit(c, VGPU_OP_VECTOR_ADD, &p, in, outs[s], &ids[s]);
			if (rc != VGPU_OK)
				break;
			busy[s] = true;
			if (round == 1)
				m->pipe.requests++;
		}
		for (int s = 0; s < depth; s++) {
			if (!busy[s])
				continue;
			busy[s] = false;
			int r2 = vgpu_wait(c, ids[s], opt.timeout_ms, NULL);

			if (rc == VGPU_OK)
				rc = r2;
		}
	}
	if (rc == VGPU_OK) {
		pipe_finish(&m->pipe, w, t0);
		/* Every slot was written (the untimed round fills them all): check
		 * the last output of each; the first bad one, else the last. */
		for (int s = 0; s < depth; s++) {
			memset(&m->pipe_check, 0, sizeof(m->pipe_check));
			check_against(&m->pipe_check, "mediated pipelined vs native (each slot)",
				      outs[s], w->ref, w->n_out, 1e-6, 1e-6);
			if (!m->pipe_check.ok)
				break;
		}
		tally(&m->pipe_check);
	} else if (outs && ids && busy) {
		drop_client(tp, rc); /* before the buffers go: see drop_client() */
	}
out:
	free(outs);
	free(ids);
	free(busy);
	return rc;
}

static int pipelined_native(struct work *w, unsigned total)
{
	int depth = opt.depth;
	float **outs = calloc((size_t)depth, sizeof(*outs));
	bool *busy = calloc((size_t)depth, sizeof(*busy));
	uint64_t budget = (uint64_t)(opt.budget_s * 1e9), t0 = 0;
	int rc = 0;

	w->native_pipe.ran = true;
	if (!outs || !busy) {
		set_error(w->error, "out of memory");
		rc = -1;
		goto out;
	}
	for (int s = 0; s < depth; s++)
		if (!(outs[s] = bn_host_alloc(w->n_out * sizeof(float)))) {
			set_error(w->error, "native pipelined: %s", bn_error());
			rc = -1;
			goto out;
		}
	for (int round = 0; round < 2 && rc == 0; round++) {
		unsigned n_req = round == 0 ? (unsigned)depth : total;

		if (round == 1)
			t0 = vgpu_now_ns();
		for (unsigned i = 0; i < n_req && rc == 0; i++) {
			int s = (int)(i % (unsigned)depth);

			if (busy[s]) {
				busy[s] = false;
				if ((rc = bn_vadd_wait(w->vadd, s)) != 0)
					break;
			}
			uint64_t now = vgpu_now_ns();

			if (round == 1 && i >= 2u * (unsigned)depth &&
			    (now - t0 >= budget || now >= deadline_ns)) {
				w->native_pipe.stopped_early = true;
				break;
			}
			if ((rc = bn_vadd_enqueue(w->vadd, s, w->pa, w->pb, outs[s])) != 0)
				break;
			busy[s] = true;
			if (round == 1)
				w->native_pipe.requests++;
		}
		for (int s = 0; s < depth; s++)
			if (busy[s]) {
				busy[s] = false;
				if (bn_vadd_wait(w->vadd, s) != 0 && rc == 0)
					rc = -1;
			}
	}
	if (rc == 0)
		pipe_finish(&w->native_pipe, w, t0);
	else
		set_error(w->error, "native pipelined: %s", bn_error());
out:
	if (outs)
		for (int s = 0; s < depth; s++)
			bn_host_free(outs[s]);
	free(outs);
	free(busy);
	return rc;
}

static void work_free(struct work *w)
{
	bn_vadd_destroy(w->vadd);
	bn_sgemm_destroy(w->sgemm);
	bn_host_free(w->pa);
	bn_host_free(w->pb);
	bn_host_free(w->pc);
	bn_host_free(w->pout);
	free(w->ga);
	free(w->gb);
	free(w->gc);
	free(w->gout);
	free(w->ref);
	w->vadd = NULL;
	w->sgemm = NULL;
	w->pa = w->pb = w->pc = w->pout = NULL;
	w->ga = w->gb = w->gc = w->gout = w->ref = NULL;
}

static int work_setup(struct work *w, size_t case_index)
{
	const struct case_def *cd = w->cd;
	uint64_t seed = opt.seed * 1000003u + case_index;

	if (cd->kind == CASE_VADD) {
		w->n_a = w->n_b = w->n_out = cd->n;
		w->n_c = 0;
		w->bytes = 3 * cd->n * sizeof(float);
	} else {
		w->n_a = w->n_b = w->n_c = w->n_out = cd->n * cd->n;
		w->bytes = 4 * cd->n * cd->n * sizeof(float); /* A, B, C in; C out */
		w->flops = 2.0 * (double)cd->n * (double)cd->n * (double)cd->n;
		w->alpha = 1.0f;
		w->beta = 0.5f;
	}
	w->pa = bn_host_alloc(w->n_a * sizeof(float));
	w->pb = bn_host_alloc(w->n_b * sizeof(float));
	w->pout = bn_host_alloc(w->n_out * sizeof(float));
	if (w->n_c)
		w->pc = bn_host_alloc(w->n_c * sizeof(float));
	if (!w->pa || !w->pb || !w->pout || (w->n_c && !w->pc)) {
		set_error(w->error, "pinned buffers: %s", bn_error());
		return -1;
	}
	w->ga = page_alloc(w->n_a);
	w->gb = page_alloc(w->n_b);
	w->gout = page_alloc(w->n_out);
	w->ref = page_alloc(w->n_out);
	if (w->n_c)
		w->gc = page_alloc(w->n_c);
	if (!w->ga || !w->gb || !w->gout || !w->ref || (w->n_c && !w->gc)) {
		set_error(w->error, "out of memory");
		return -1;
	}
	fill_random(w->pa, w->n_a, &seed);
	fill_random(w->pb, w->n_b, &seed);
	if (w->n_c)
		fill_random(w->pc, w->n_c, &seed);
	memcpy(w->ga, w->pa, w->n_a * sizeof(float));
	memcpy(w->gb, w->pb, w->n_b * sizeof(float));
	if (w->n_c)
		memcpy(w->gc, w->pc, w->n_c * sizeof(float));
	memset(w->gout, 0xff, w->n_out * sizeof(float)); /* touch the pages */
	if (cd->kind == CASE_VADD)
		w->vadd = bn_vadd_create(cd->n, opt.depth);
	else
		w->sgemm = bn_sgemm_create(cd->n, cd->n, cd->n);
	if (!w->vadd && !w->sgemm) {
		set_error(w->error, "native setup: %s", bn_error());
		return -1;
	}
	return 0;
}

static unsigned case_repeat(const struct case_def *cd)
{
	return opt.repeat ? opt.repeat : cd->repeat;
}

static void run_mediated_on(struct work *w, struct transport *tp, struct mediated_result *m);

/* Connect if need be, place the inputs in the client's buffers, run. */
static void run_mediated(struct work *w, struct transport *tp, struct mediated_result *m)
{
	if (!tp->client) {
		tp->connect_rc = vgpu_connect(tp->uri, &tp->client);
		if (tp->connect_rc != VGPU_OK) {
			tp->client = NULL;
			set_error(m->error, "cannot connect: %s", vgpu_strerror(tp->connect_rc));
			failures++;
			return;
		}
		vgpu_client_set_log(tp->client, log_connect, (void *)tp->uri);
	}
	w->client = tp->client;
	w->ma = buf_alloc(tp, w->n_a, m->error);
	w->mb = buf_alloc(tp, w->n_b, m->error);
	w->mout = buf_alloc(tp, w->n_out, m->error);
	w->mc = w->n_c ? buf_alloc(tp, w->n_c, m->error) : NULL;
	if (!w->ma || !w->mb || !w->mout || (w->n_c && !w->mc)) {
		bufs_free(tp);
		failures++;
		return;
	}
	memcpy(w->ma, w->ga, w->n_a * sizeof(float));
	memcpy(w->mb, w->gb, w->n_b * sizeof(float));
	if (w->n_c)
		memcpy(w->mc, w->gc, w->n_c * sizeof(float));
	run_mediated_on(w, tp, m);
	if (tp->client)
		bufs_free(tp);
	w->ma = w->mb = w->mc = w->mout = NULL;
}

static void run_mediated_on(struct work *w, struct transport *tp, struct mediated_result *m)
{
	size_t d = w->cd->n;
	unsigned repeat = case_repeat(w->cd);
	int rc;

	/* Correctness first, on a poisoned output: one request, separate out. */
	{
		struct vgpu_op_params p = { 0 };
		const float *in[3] = { w->ma, w->mb, NULL };
		uint64_t id;
		int op;

		poison(w->mout, w->n_out);
		if (w->cd->kind == CASE_VADD) {
			op = VGPU_OP_VECTOR_ADD;
			p.n = (uint32_t)d;
		} else {
			op = VGPU_OP_SGEMM;
			p.m = p.n = p.k = (uint32_t)d;
			p.alpha = w->alpha;
			p.beta = w->beta;
			in[2] = w->mc;
		}
		rc = vgpu_submit(w->client, op, &p, in, w->mout, &id);
		if (rc == VGPU_OK)
			rc = vgpu_wait(w->client, id, opt.timeout_ms, NULL);
		if (rc != VGPU_OK) {
			set_error(m->error, "check request: %s", vgpu_strerror(rc));
			drop_client(tp, rc);
			failures++;
			return;
		}
		if (w->cd->kind == CASE_VADD)
			check_against(&m->check, "mediated vs native (exact)", w->mout, w->ref,
				      w->n_out, 1e-6, 1e-6);
		else
			check_against(&m->check, "mediated vs native (rel 1e-5, elem 1e-4)",
				      w->mout, w->ref, w->n_out, 1e-5, 1e-4);
		tally(&m->check);
	}
	/* sgemm works C in place from here: start from the input C. */
	if (w->cd->kind == CASE_SGEMM)
		memcpy(w->mout, w->mc, w->n_out * sizeof(float));
	rc = measure(w, it_mediated, repeat, &m->lat, &m->exec, &m->queue);
	if (rc != 0) {
		set_error(m->error, "blocking request: %s", vgpu_strerror(rc));
		drop_client(tp, rc);
		failures++;
		return;
	}
	if (w->cd->kind == CASE_VADD && w->cd->target == 2) {
		rc = pipelined_mediated(w, tp, repeat, m);
		if (rc != 0) {
			set_error(m->error, "pipelined: %s", vgpu_strerror(rc));
			failures++;
		}
	}
}

static void evaluate_target(struct work *w, struct mediated_result *m)
{
	struct stats nat = stats_of(&w->native), med = stats_of(&m->lat);

	if (!nat.count || !med.count)
		return;
	if (w->cd->target == 1) {
		m->target_evaluated = true;
		m->target_met = med.p50 <= nat.p50 + SMALL_TARGET_US;
		snprintf(m->target_text, sizeof(m->target_text),
			 "p50 %.1f us <= native %.1f + %.0f us", med.p50, nat.p50, SMALL_TARGET_US);
	} else if (w->cd->target == 2 && m->pipe.ran && m->pipe.gbps > 0) {
		double native_gbps = (double)w->bytes / (nat.p50 * 1e-6) / 1e9;

		m->target_evaluated = true;
		m->target_met = m->pipe.gbps >= LARGE_TARGET_RATIO * native_gbps;
		snprintf(m->target_text, sizeof(m->target_text),
			 "pipelined %.2f GB/s >= %.1f x native pinned %.2f GB/s", m->pipe.gbps,
			 LARGE_TARGET_RATIO, native_gbps);
	}
}

static void run_case(struct work *w, size_t case_index)
{
	const struct case_def *cd = w->cd;
	unsigned repeat = case_repeat(cd);

	if (out_of_time()) {
		w->skipped = true;
		set_error(w->error, "skipped: --deadline-s %.0f passed", opt.deadline_s);
		failures++;
		return;
	}
	if (work_setup(w, case_index) != 0) {
		failures++;
		return;
	}
	/* Native pinned, and its result checked against the CPU. */
	if (measure(w, it_native_pinned, repeat, &w->native, NULL, NULL) != 0) {
		failures++;
		return;
	}
	poison(w->pout, w->n_out);
	if (it_native_pinned(w, NULL) != 0) {
		failures++;
		return;
	}
	memcpy(w->ref, w->pout, w->n_out * sizeof(float));
	if (cd->kind == CASE_VADD)
		check_vadd_cpu(&w->native_check, w->pa, w->pb, w->ref, cd->n);
	else
		check_sgemm_cpu(&w->native_check, cd->n, w->alpha, w->pa, w->pb, w->beta, w->pc,
				w->ref, opt.seed ^ case_index);
	tally(&w->native_check);
	if (cd->kind == CASE_VADD &&
	    measure(w, it_native_pageable, repeat, &w->pageable, NULL, NULL) != 0) {
		failures++;
		return;
	}
	for (int t = 0; t < opt.n_transports; t++) {
		run_mediated(w, &transports[t], &w->med[t]);
		evaluate_target(w, &w->med[t]);
	}
	if (cd->kind == CASE_VADD && cd->target == 2 && pipelined_native(w, repeat) != 0)
		failures++;
	if (measure(w, it_native_pinned, repeat, &w->native_again, NULL, NULL) != 0)
		failures++;
}

/* ---- output ---- */

static void fmt_time(char *buf, size_t size, double us)
{
	if (us <= 0)
		snprintf(buf, size, "-");
	else if (us < 1000)
		snprintf(buf, size, "%.1fus", us);
	else if (us < 1e6)
		snprintf(buf, size, "%.2fms", us / 1e3);
	else
		snprintf(buf, size, "%.2fs", us / 1e6);
}

static void print_row(const char *name, const char *path, double p50, double p99,
		      const char *rate, const char *vs, const char *check)
{
	char a[16], b[16];

	fmt_time(a, sizeof(a), p50);
	fmt_time(b, sizeof(b), p99);
	printf("%-12s %-16s %10s %10s %11s  %-30s %s\n", name, path, a, b, rate, vs, check);
}

static void rate_of(char *buf, size_t size, const struct work *w, double us)
{
	if (us <= 0)
		snprintf(buf, size, "-");
	else if (w->cd->kind == CASE_SGEMM)
		snprintf(buf, size, "%.1fTF/s", w->flops / (us * 1e-6) / 1e12);
	else
		snprintf(buf, size, "%.2fGB/s", (double)w->bytes / (us * 1e-6) / 1e9);
}

static const char *check_word(const struct check *c)
{
	return !c->ran ? "-" : c->ok ? "ok" : "FAIL";
}

static void print_case(const struct work *w)
{
	const struct case_def *cd = w->cd;
	struct stats nat = stats_of(&w->native);
	char rate[32], vs[64];

	if (w->skipped || !w->native.count) {
		print_row(cd->name, "native", 0, 0, "-", "", "FAIL");
		if (w->error[0])
			printf("%-12s   error: %s\n", "", w->error);
		return;
	}
	rate_of(rate, sizeof(rate), w, nat.p50);
	print_row(cd->name, "native pinned", nat.p50, nat.p99, rate, "1.00x time",
		  check_word(&w->native_check));
	if (w->pageable.count) {
		struct stats pg = stats_of(&w->pageable);

		rate_of(rate, sizeof(rate), w, pg.p50);
		snprintf(vs, sizeof(vs), "%.2fx time", pg.p50 / nat.p50);
		print_row(cd->name, "native pageable", pg.p50, pg.p99, rate, vs, "");
	}
	if (w->native_pipe.ran && w->native_pipe.gbps > 0) {
		char path[32];

		snprintf(rate, sizeof(rate), "%.2fGB/s", w->native_pipe.gbps);
		snprintf(path, sizeof(path), "native pipe d%d", opt.depth);
		snprintf(vs, sizeof(vs), "%.2fx tput",
			 w->native_pipe.gbps / ((double)w->bytes / (nat.p50 * 1e-6) / 1e9));
		print_row(cd->name, path, 0, 0, rate, vs, "");
	}
	for (int t = 0; t < opt.n_transports; t++) {
		const struct mediated_result *m = &w->med[t];
		struct stats med = stats_of(&m->lat);

		if (med.count) {
			char path[48], ex[16], delta[16];

			rate_of(rate, sizeof(rate), w, med.p50);
			fmt_time(ex, sizeof(ex), stats_of(&m->exec).p50);
			fmt_time(delta, sizeof(delta), fabs(med.p50 - nat.p50));
			snprintf(vs, sizeof(vs), "%.2fx %c%s (exec %s)", med.p50 / nat.p50,
				 med.p50 >= nat.p50 ? '+' : '-', delta, ex);
			snprintf(path, sizeof(path), "%s", transports[t].label);
			print_row(cd->name, path, med.p50, med.p99, rate, vs, check_word(&m->check));
		} else {
			printf("%-12s %-16s %10s %10s %11s  %-30s %s\n", cd->name,
			       transports[t].label, "-", "-", "-", "", check_word(&m->check));
		}
		if (m->pipe.ran && m->pipe.gbps > 0) {
			char path[48];

			snprintf(rate, sizeof(rate), "%.2fGB/s", m->pipe.gbps);
			snprintf(path, sizeof(path), "%s pipe d%d", transports[t].label, opt.depth);
			snprintf(vs, sizeof(vs), "%.2fx tput",
				 m->pipe.gbps / ((double)w->bytes / (nat.p50 * 1e-6) / 1e9));
			print_row(cd->name, path, 0, 0, rate, vs, check_word(&m->pipe_check));
		}
		if (m->error[0])
			printf("%-12s   error (%s): %s\n", "", transports[t].label, m->error);
		if (m->target_evaluated)
			printf("%-12s   target %s: %s\n", "", m->target_met ? "met" : "MISSED",
			       m->target_text);
	}
	if (w->error[0])
		printf("%-12s   error: %s\n", "", w->error);
	fflush(stdout);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* A number, or null when not finite (JSON has no NaN or infinity). */
static void json_num(FILE *f, double x)
{
	if (isfinite(x))
		fprintf(f, "%.6g", x);
	else
		fputs("null", f);
}

static void json_series(FILE *f, const char *key, const struct series *s, bool samples)
{
	struct stats st = stats_of(s);

	fprintf(f, "\"%s\": {\"count\": %zu, \"stopped_early\": %s, \"unit\": \"us\"", key,
		st.count, s->stopped_early ? "true" : "false");
	if (st.count) {
		fputs(", \"min\": ", f);
		json_num(f, st.min);
		fputs(", \"p50\": ", f);
		json_num(f, st.p50);
		fputs(", \"p90\": ", f);
		json_num(f, st.p90);
		fputs(", \"p99\": ", f);
		json_num(f, st.p99);
		fputs(", \"max\": ", f);
		json_num(f, st.max);
		fputs(", \"mean\": ", f);
		json_num(f, st.mean);
	}
	if (samples) {
		fputs(", \"samples\": [", f);
		for (size_t i = 0; i < s->count; i++) {
			if (i)
				fputs(", ", f);
			json_num(f, s->v[i]);
		}
		fputc(']', f);
	}
	fputc('}', f);
}

static void json_check(FILE *f, const char *key, const struct check *c)
{
	fprintf(f, "\"%s\": {\"ran\": %s, \"ok\": %s, \"what\": ", key, c->ran ? "true" : "false",
		c->ok ? "true" : "false");
	json_str(f, c->what);
	fprintf(f, ", \"bad_elements\": %zu, \"max_abs_err\": ", c->bad);
	json_num(f, c->max_abs_err);
	fputs(", \"rel_err\": ", f);
	json_num(f, c->rel_err);
	fputc('}', f);
}

static void json_pipe(FILE *f, const char *key, const struct pipe_result *p, double native_gbps)
{
	fprintf(f, "\"%s\": {\"ran\": %s, \"depth\": %d, \"requests\": %u, \"seconds\": ", key,
		p->ran ? "true" : "false", opt.depth, p->requests);
	json_num(f, p->seconds);
	fputs(", \"gb_per_s\": ", f);
	json_num(f, p->gbps);
	fputs(", \"requests_per_s\": ", f);
	json_num(f, p->seconds > 0 ? p->requests / p->seconds : 0);
	fputs(", \"ratio_to_native_pinned\": ", f);
	json_num(f, native_gbps > 0 ? p->gbps / native_gbps : NAN);
	fprintf(f, ", \"stopped_early\": %s}", p->stopped_early ? "true" : "false");
}

static void iso_date(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_json(const struct bn_device_info *dev, struct work *works, size_t n_works,
		      bool complete)
{
	char tmp[4096], date[32];
	struct utsname un;
	FILE *f;

	if (!opt.json)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.json);
	f = fopen(tmp, "w");
	if (!f) {
		errorf("%s: %s", tmp, strerror(errno));
		return -1;
	}
	iso_date(date, sizeof(date));
	if (uname(&un) != 0)
		memset(&un, 0, sizeof(un));
	fputs("{\n  \"tool\": \"" PROG "\", \"version\": ", f);
	json_str(f, VGPU_VERSION);
	fputs(", \"date\": ", f);
	json_str(f, date);
	fputs(", \"host\": ", f);
	json_str(f, un.nodename);
	fputs(", \"kernel\": ", f);
	json_str(f, un.release);
	fputs(",\n  \"command\": [", f);
	for (int i = 0; i < opt.argc; i++) {
		if (i)
			fputs(", ", f);
		json_str(f, opt.argv[i]);
	}
	fputs("],\n  \"device\": {\"index\": ", f);
	fprintf(f, "%d, \"name\": ", dev->index);
	json_str(f, dev->name);
	fputs(", \"pci_bus_id\": ", f);
	json_str(f, dev->pci_bus_id);
	fprintf(f,
		", \"compute_capability\": \"%d.%d\", \"multiprocessors\": %d, "
		"\"memory_bytes\": %zu, \"l2_bytes\": %zu},\n",
		dev->cc_major, dev->cc_minor, dev->sm_count, dev->total_mem, dev->l2_bytes);
	fprintf(f,
		"  \"cuda\": {\"driver_version\": %d, \"runtime_version\": %d, "
		"\"cublas_version\": %d, \"cublas\": ",
		dev->driver_version, dev->runtime_version, bn_cublas_version());
	json_str(f, bn_cublas_name());
	fprintf(f,
		"},\n  \"settings\": {\"warmup\": %u, \"warmup_ms\": %u, \"repeat\": %u, \"depth\": %d, "
		"\"budget_s\": %g, \"deadline_s\": %g, \"timeout_ms\": %d, \"seed\": %" PRIu64
		", \"percentiles\": \"p50 is the median; p90 and p99 are nearest-rank\", "
		"\"clock\": \"CLOCK_MONOTONIC wall time per iteration, in this process\"},\n",
		opt.warmup, opt.warmup_ms, opt.repeat, opt.depth, opt.budget_s, opt.deadline_s, opt.timeout_ms,
		opt.seed);
	fputs("  \"targets\": {\"small_latency\": \"vadd 4 KiB and 256 KiB: mediated p50 <= native "
	      "pinned p50 + 30 us\", \"large_throughput\": \"vadd 4 MiB and 64 MiB: pipelined "
	      "mediated GB/s >= 0.9 x native pinned GB/s (bytes in+out / native p50)\"},\n",
	      f);
	fputs("  \"transports\": [", f);
	for (int t = 0; t < opt.n_transports; t++) {
		fputs(t ? ", {\"uri\": " : "{\"uri\": ", f);
		json_str(f, transports[t].uri);
		fprintf(f, ", \"connected\": %s, \"connect_status\": ",
			transports[t].client ? "true" : "false");
		json_str(f, vgpu_strerror(transports[t].connect_rc));
		fputc('}', f);
	}
	fputs("],\n  \"cases\": [", f);
	for (size_t i = 0; i < n_works; i++) {
		struct work *w = &works[i];
		struct stats nat = stats_of(&w->native);
		double native_gbps = nat.p50 > 0 ? (double)w->bytes / (nat.p50 * 1e-6) / 1e9 : 0;

		fputs(i ? ",\n    {" : "\n    {", f);
		fputs("\"name\": ", f);
		json_str(f, w->cd->name);
		fprintf(f, ", \"op\": \"%s\"", w->cd->kind == CASE_VADD ? "vector_add" : "sgemm");
		if (w->cd->kind == CASE_VADD)
			fprintf(f, ", \"n\": %zu, \"bytes_per_vector\": %zu", w->cd->n,
				w->cd->n * sizeof(float));
		else
			fprintf(f, ", \"m\": %zu, \"n\": %zu, \"k\": %zu, \"alpha\": %g, \"beta\": %g",
				w->cd->n, w->cd->n, w->cd->n, (double)w->alpha, (double)w->beta);
		fprintf(f, ", \"bytes_in_out\": %zu, \"flops\": ", w->bytes);
		json_num(f, w->flops);
		fprintf(f, ", \"skipped\": %s, \"error\": ", w->skipped ? "true" : "false");
		json_str(f, w->error);
		fputs(",\n     ", f);
		json_series(f, "native_pinned", &w->native, true);
		fputs(", \"native_pinned_gb_per_s\": ", f);
		json_num(f, native_gbps);
		if (w->flops > 0) {
			fputs(", \"native_tflop_per_s\": ", f);
			json_num(f, nat.p50 > 0 ? w->flops / (nat.p50 * 1e-6) / 1e12 : 0);
		}
		fputs(",\n     ", f);
		json_check(f, "native_check", &w->native_check);
		if (w->pageable.ran) {
			fputs(",\n     ", f);
			json_series(f, "native_pageable", &w->pageable, true);
		}
		if (w->native_pipe.ran) {
			fputs(",\n     ", f);
			json_pipe(f, "native_pipelined", &w->native_pipe, native_gbps);
		}
		fputs(",\n     ", f);
		json_series(f, "native_pinned_again", &w->native_again, true);
		fputs(",\n     \"mediated\": [", f);
		for (int t = 0; t < opt.n_transports; t++) {
			const struct mediated_result *m = &w->med[t];
			struct stats med = stats_of(&m->lat);

			fputs(t ? ",\n       {\"transport\": " : "\n       {\"transport\": ", f);
			json_str(f, transports[t].uri);
			fputs(", \"error\": ", f);
			json_str(f, m->error);
			fputs(",\n        ", f);
			json_series(f, "blocking", &m->lat, true);
			fputs(",\n        ", f);
			json_series(f, "mediator_exec", &m->exec, false);
			fputs(", ", f);
			json_series(f, "mediator_queue", &m->queue, false);
			fputs(",\n        \"ratio_p50_mediated_over_native\": ", f);
			json_num(f, med.count && nat.p50 > 0 ? med.p50 / nat.p50 : NAN);
			fputs(", \"overhead_p50_us\": ", f);
			json_num(f, med.count && nat.count ? med.p50 - nat.p50 : NAN);
			fputs(", \"blocking_gb_per_s\": ", f);
			json_num(f, med.p50 > 0 ? (double)w->bytes / (med.p50 * 1e-6) / 1e9 : NAN);
			fputs(",\n        ", f);
			json_check(f, "check", &m->check);
			if (m->pipe.ran) {
				fputs(",\n        ", f);
				json_pipe(f, "pipelined", &m->pipe, native_gbps);
				fputs(", \"throughput_ratio_native_over_mediated\": ", f);
				json_num(f, m->pipe.gbps > 0 ? native_gbps / m->pipe.gbps : NAN);
				fputs(",\n        ", f);
				json_check(f, "pipelined_check", &m->pipe_check);
			}
			fprintf(f, ",\n        \"target\": {\"evaluated\": %s, \"met\": %s, \"what\": ",
				m->target_evaluated ? "true" : "false",
				m->target_met ? "true" : "false");
			json_str(f, m->target_text);
			fputs("}}", f);
		}
		fputs("]}", f);
	}
	fprintf(f,
		"\n  ],\n  \"checks_passed\": %d, \"failures\": %d, \"complete\": %s, "
		"\"elapsed_s\": ",
		checks_passed, failures, complete ? "true" : "false");
	json_num(f, (double)(vgpu_now_ns() - t_start_ns) / 1e9);
	fputs("\n}\n", f);
	if (fclose(f) != 0 || rename(tmp, opt.json) != 0) {
		errorf("%s: %s", opt.json, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- arguments ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--transport URI]... [--json FILE] [options]\n"
		"\n"
		"Measures native CUDA and the same ops through the vgpu mediator, in one run.\n"
		"\n"
		"  --transport URI  a mediator transport (unix:/run/vgpu/vm-<uuid>.sock); up to %d.\n"
		"                   Without one, only the native side runs.\n"
		"  --json FILE      write every result to FILE (rewritten after each case)\n"
		"  --case NAME      run only this case (repeatable; see --list)\n"
		"  --repeat N       timed iterations of every case (default: 50; 20 for\n"
		"                   vadd-64MiB and sgemm-2048, 10 for sgemm-4096)\n"
		"  --warmup N       untimed iterations first (default 3) ...\n"
		"  --warmup-ms MS   ... and for at least MS milliseconds (default 200): the\n"
		"                   mediator's threads, idle while the native side ran,\n"
		"                   start slow (docs/performance.md, run 19)\n"
		"  --depth D        requests in flight for pipelined runs, 1..64 (default 4)\n"
		"  --budget-s S     stop a measurement after S seconds, keeping >= %d samples\n"
		"                   (default 10)\n"
		"  --deadline-s S   skip the cases left after S seconds (default 300); a run\n"
		"                   stuck %d s past it is ended (exit 3)\n"
		"  --timeout-ms MS  longest wait for one pipelined or check response (60000)\n"
		"  --device N       CUDA device (default 0)\n"
		"  --seed S         input seed (default 1)\n"
		"  --list           list the cases and exit\n"
		"\n"
		"The cuBLAS library is dlopen()ed: $VGPU_CUBLAS, else libcublas.so.13, else\n"
		"libcublas.so. Exit status: 0 every check passed, 1 a check failed or did\n"
		"not run, 2 usage, 3 stuck past the deadline.\n",
		MAX_TRANSPORTS, MIN_SAMPLES, WATCHDOG_GRACE_S);
}

static int parse_num(const char *flag, const char *s, double min, double max, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= min && v <= max)) {
		errorf("%s: '%s' is not a number from %g to %g", flag, s, min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "json", required_argument, NULL, 'j' },
		{ "case", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "warmup-ms", required_argument, NULL, 'W' },
		{ "depth", required_argument, NULL, 'd' },
		{ "budget-s", required_argument, NULL, 'b' },
		{ "deadline-s", required_argument, NULL, 'D' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "device", required_argument, NULL, 'g' },
		{ "seed", required_argument, NULL, 's' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double v;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (opt.n_transports == MAX_TRANSPORTS) {
				errorf("at most %d --transport", MAX_TRANSPORTS);
				return 2;
			}
			opt.transports[opt.n_transports++] = optarg;
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'c': {
			size_t i;

			for (i = 0; i < N_CASES; i++)
				if (!strcmp(optarg, cases[i].name))
					break;
			if (i == N_CASES) {
				errorf("--case: no case '%s' (see --list)", optarg);
				return 2;
			}
			opt.selected[i] = true;
			opt.any_selected = true;
			break;
		}
		case 'r':
			if (parse_num("--repeat", optarg, 1, 100000, &v))
				return 2;
			opt.repeat = (unsigned)v;
			break;
		case 'w':
			if (parse_num("--warmup", optarg, 0, 1000, &v))
				return 2;
			opt.warmup = (unsigned)v;
			break;
		case 'W':
			if (parse_num("--warmup-ms", optarg, 0, 10000, &v))
				return 2;
			opt.warmup_ms = (unsigned)v;
			break;
		case 'd':
			if (parse_num("--depth", optarg, 1, 64, &v))
				return 2;
			opt.depth = (int)v;
			break;
		case 'b':
			if (parse_num("--budget-s", optarg, 0.001, 3600, &opt.budget_s))
				return 2;
			break;
		case 'D':
			if (parse_num("--deadline-s", optarg, 1, 86400, &opt.deadline_s))
				return 2;
			break;
		case 'T':
			if (parse_num("--timeout-ms", optarg, 1, 3600000, &v))
				return 2;
			opt.timeout_ms = (int)v;
			break;
		case 'g':
			if (parse_num("--device", optarg, 0, 1024, &v))
				return 2;
			opt.device = (int)v;
			break;
		case 's':
			if (parse_num("--seed", optarg, 0, 1e15, &v))
				return 2;
			opt.seed = (uint64_t)v;
			break;
		case 'l':
			for (size_t i = 0; i < N_CASES; i++)
				printf("%s\n", cases[i].name);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		errorf("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	return -1;
}

static void watchdog(int sig)
{
	static const char msg[] = PROG ": stuck past --deadline-s; giving up (exit 3)\n";
	ssize_t w;

	(void)sig;
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(3);
}

int main(int argc, char **argv)
{
	struct bn_device_info dev;
	struct work works[N_CASES];
	size_t n_works = 0;
	char date[32];
	int rc;

	opt.argc = argc;
	opt.argv = argv;
	rc = parse_args(argc, argv);
	if (rc >= 0)
		return rc;
	t_start_ns = vgpu_now_ns();
	deadline_ns = t_start_ns + (uint64_t)(opt.deadline_s * 1e9);
	signal(SIGALRM, watchdog);
	alarm((unsigned)opt.deadline_s + WATCHDOG_GRACE_S);

	setenv("VGPU_SHM_MIB", "1024", 0); /* room for 64 MiB vectors at depth 4 */
	if (bn_init(opt.device, &dev) != 0) {
		errorf("CUDA: %s", bn_error());
		return 1;
	}
	for (int t = 0; t < opt.n_transports; t++) {
		struct transport *tp = &transports[t];
		const char *colon = strchr(opt.transports[t], ':');
		size_t len = colon ? (size_t)(colon - opt.transports[t]) : 0;

		tp->uri = opt.transports[t];
		snprintf(tp->label, sizeof(tp->label), "%.*s", (int)(len < 8 ? len : 8),
			 opt.transports[t]);
		if (opt.n_transports > 1) {
			size_t l = strlen(tp->label);

			snprintf(tp->label + l, sizeof(tp->label) - l, "#%d", t + 1);
		}
		tp->connect_rc = vgpu_connect(tp->uri, &tp->client);
		if (tp->connect_rc != VGPU_OK) {
			errorf("%s: cannot connect: %s", tp->uri, vgpu_strerror(tp->connect_rc));
			tp->client = NULL;
			failures++;
		} else {
			vgpu_client_set_log(tp->client, log_connect, (void *)tp->uri);
		}
	}
	iso_date(date, sizeof(date));
	printf("vgpu-bench %s  %s\n", VGPU_VERSION, date);
	printf("device %d: %s (sm_%d%d, %d SMs, %.1f GiB), driver %d.%d, runtime %d.%d\n",
	       dev.index, dev.name, dev.cc_major, dev.cc_minor, dev.sm_count,
	       (double)dev.total_mem / (1u << 30), dev.driver_version / 1000,
	       dev.driver_version % 1000 / 10, dev.runtime_version / 1000,
	       dev.runtime_version % 1000 / 10);
	for (int t = 0; t < opt.n_transports; t++)
		printf("transport %s: %s%s\n", transports[t].label, transports[t].uri,
		       transports[t].client ? "" : " (NOT CONNECTED)");
	printf("warm-up %u and %u ms, repeat %s, depth %d; p50 = median, p99 nearest rank; wall time per "
	       "request incl. copies\n\n",
	       opt.warmup, opt.warmup_ms, opt.repeat ? "as given" : "50 (64MiB, sgemm-2048: 20; sgemm-4096: 10)", opt.depth);
	printf("%-12s %-16s %10s %10s %11s  %-30s %s\n", "case", "path", "p50", "p99", "rate",
	       "vs native pinned", "check");
	fflush(stdout);

	memset(works, 0, sizeof(works));
	for (size_t i = 0; i < N_CASES; i++) {
		struct work *w;

		if (opt.any_selected && !opt.selected[i])
			continue;
		w = &works[n_works++];
		w->cd = &cases[i];
		run_case(w, i);
		print_case(w);
		work_free(w);
		write_json(&dev, works, n_works, false);
	}
	for (int t = 0; t < opt.n_transports; t++)
		vgpu_close(transports[t].client);
	if (write_json(&dev, works, n_works, true) != 0)
		failures++;

	int met = 0, evaluated = 0;

	printf("\ntargets:");
	for (size_t i = 0; i < n_works; i++)
		for (int t = 0; t < opt.n_transports; t++)
			if (works[i].med[t].target_evaluated) {
				evaluated++;
				met += works[i].med[t].target_met;
				printf(" %s/%s=%s", works[i].cd->name, transports[t].label,
				       works[i].med[t].target_met ? "met" : "MISSED");
			}
	if (evaluated)
		printf(" (%d of %d met)\n", met, evaluated);
	else
		printf(" none evaluated\n");
	printf("checks passed %d, failures %d, %.1f s: %s\n", checks_passed, failures,
	       (double)(vgpu_now_ns() - t_start_ns) / 1e9, failures ? "FAIL" : "PASS");
	for (size_t i = 0; i < n_works; i++) {
		series_free(&works[i].native);
		series_free(&works[i].pageable);
		series_free(&works[i].native_again);
		for (int t = 0; t < MAX_TRANSPORTS; t++) {
			series_free(&works[i].med[t].lat);
			series_free(&works[i].med[t].exec);
			series_free(&works[i].med[t].queue);
		}
	}
	return failures ? 1 : 0;
}
