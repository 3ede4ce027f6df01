/* SPDX-License-Identifier: MIT */
/*
 * test_cpu.c - the CPU backend: every op against vgpu_reference_run() at
 * edge and multi-part sizes, with one worker and several; bad works refused;
 * priority order with one worker (queued high before queued low, FIFO
 * within a level, high overtaking a large low work between its parts);
 * max_inflight and VGPU_BUSY, capacity returned before done(); fini with
 * work outstanding; done() exactly once under several submitter threads;
 * host_alloc alignment and vgpu_backend_select().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "check.h"
#include "vgpu_clock.h"

#define MAX_ITEMS 2048
#define WAIT_S 120

/* Records every done() call. */
struct tracker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls[MAX_ITEMS];
	int status[MAX_ITEMS];
	int order[MAX_ITEMS];
	int n_done;
	/* blocker */
	bool entered, released;
};

struct item {
	struct tracker *t;
	int id;
	void *owner;  /* the test's, for callbacks that need more */
	struct bt_case tc;
	struct vgpu_work w;
};

static const struct vgpu_backend_ops *B = &vgpu_backend_cpu;

static void tracker_init(struct tracker *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

static void tracker_destroy(struct tracker *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

static void on_done(struct vgpu_work *w, int status, uint64_t exec_ns)
{
	struct item *it = w->user;
	struct tracker *t = it->t;

	(void)exec_ns;
	pthread_mutex_lock(&t->lock);
	t->calls[it->id]++;
	t->status[it->id] = status;
	t->order[t->n_done++] = it->id;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Holds its worker inside done() until released. */
static void blocker_done(struct vgpu_work *w, int status, uint64_t exec_ns)
{
	struct item *it = w->user;
	struct tracker *t = it->t;

	(void)status;
	(void)exec_ns;
	pthread_mutex_lock(&t->lock);
	t->entered = true;
	pthread_cond_broadcast(&t->cond);
	while (!t->released)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

static void wait_until(struct tracker *t, bool (*cond)(struct tracker *, int), int arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	pthread_mutex_lock(&t->lock);
	while (!cond(t, arg)) {
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0 && !cond(t, arg)) {
			pthread_mutex_unlock(&t->lock);
			fail_msg("timed out waiting for the backend");
		}
	}
	pthread_mutex_unlock(&t->lock);
}

static bool done_at_least(struct tracker *t, int n)
{
	return t->n_done >= n;
}

static bool blocker_entered(struct tracker *t, int unused)
{
	(void)unused;
	return t->entered;
}

static void release_blocker(struct tracker *t)
{
	pthread_mutex_lock(&t->lock);
	t->released = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void *start(int threads, int max_inflight)
{
	struct vgpu_backend_config cfg = { .threads = threads, .max_inflight = max_inflight };
	char err[256];
	void *ctx = NULL;

	assert_int_equal(B->init(&cfg, &ctx, err, sizeof(err)), VGPU_OK);
	assert_non_null(ctx);
	return ctx;
}

static struct bt_alloc host_of(void *ctx)
{
	struct bt_alloc a = { B->host_alloc, B->host_free, ctx };

	return a;
}

/* Relative tolerance for @op: float rounding of each term, k terms for sgemm. */
static double rel_of(enum vgpu_op op, uint32_t k)
{
	return op == VGPU_OP_SGEMM ? (k + 2) * (double)FLT_EPSILON : 1e-6;
}

/* A small case ready to submit: a vector_add of @n. */
static void small_item(struct item *it, struct tracker *t, int id, void *ctx, int priority,
		       uint32_t n, void (*done)(struct vgpu_work *, int, uint64_t))
{
	struct bt_alloc a = host_of(ctx);

	it->t = t;
	it->id = id;
	assert_true(bt_case_new(&it->tc, VGPU_OP_VECTOR_ADD, 0, n, 0, 0, 0, (uint32_t)id, &a));
	bt_case_work(&it->tc, &it->w, priority, done, it);
}

struct op_case {
	enum vgpu_op op;
	uint32_t m, n, k;
	float alpha, beta;
};

static const struct op_case op_cases[] = {
	{ VGPU_OP_VECTOR_ADD, 0, 1, 0, 0, 0 },
	{ VGPU_OP_VECTOR_ADD, 0, 3, 0, 0, 0 },
	{ VGPU_OP_VECTOR_ADD, 0, 4097, 0, 0, 0 },
	{ VGPU_OP_VECTOR_ADD, 0, (1u << 20) + 3, 0, 0, 0 },
	{ VGPU_OP_VECTOR_ADD, 0, 3u * (1u << 20) + 7, 0, 0, 0 },
	{ VGPU_OP_SAXPY, 0, 1, 0, 2.5f, 0 },
	{ VGPU_OP_SAXPY, 0, 17, 0, -1.0f, 0 },
	{ VGPU_OP_SAXPY, 0, 1000, 0, 0.0f, 0 },
	{ VGPU_OP_SAXPY, 0, 2u * (1u << 20) + 1, 0, 0.75f, 0 },
	{ VGPU_OP_REDUCE_SUM, 0, 1, 0, 0, 0 },
	{ VGPU_OP_REDUCE_SUM, 0, 2, 0, 0, 0 },
	{ VGPU_OP_REDUCE_SUM, 0, 4097, 0, 0, 0 },
	{ VGPU_OP_REDUCE_SUM, 0, 5u * (1u << 20) + 11, 0, 0, 0 },
	{ VGPU_OP_SGEMM, 1, 1, 1, 1.0f, 0.0f },
	{ VGPU_OP_SGEMM, 3, 5, 7, 1.0f, 0.0f },
	{ VGPU_OP_SGEMM, 3, 5, 7, 2.5f, -0.5f },
	{ VGPU_OP_SGEMM, 3, 5, 7, 0.0f, 1.0f },
	{ VGPU_OP_SGEMM, 7, 5, 3, -1.0f, 1.0f },
	{ VGPU_OP_SGEMM, 5, 3, 7, 1.0f, 2.0f },
	{ VGPU_OP_SGEMM, 1, 600, 1, 1.0f, 0.0f },
	{ VGPU_OP_SGEMM, 600, 1, 600, 1.0f, 1.0f },
	{ VGPU_OP_SGEMM, 64, 33, 17, 1.0f, 0.25f },
	{ VGPU_OP_SGEMM, 257, 255, 520, 0.75f, 1.0f }, /* several parts */
};

static void ops_vs_reference(int threads)
{
	struct tracker t;
	void *ctx = start(threads, 8);
	struct bt_alloc a = host_of(ctx);
	size_t n_cases = sizeof(op_cases) / sizeof(op_cases[0]);

	tracker_init(&t);
	for (size_t i = 0; i < n_cases; i++) {
		const struct op_case *oc = &op_cases[i];
		struct item it = { .t = &t, .id = (int)i };
		float *ref;

		assert_true(bt_case_new(&it.tc, oc->op, oc->m, oc->n, oc->k, oc->alpha, oc->beta,
					(uint32_t)i + 1, &a));
		ref = malloc(it.tc.out_count * sizeof(float));
		assert_non_null(ref);
		vgpu_reference_run(oc->op, &it.tc.p, (const float *const *)it.tc.in, ref);
		bt_case_work(&it.tc, &it.w, (int)(i % VGPU_PRIORITY_LEVELS), on_done, &it);
		assert_int_equal(B->submit(ctx, &it.w), VGPU_OK);
		wait_until(&t, done_at_least, (int)i + 1);
		assert_int_equal(t.status[i], VGPU_OK);
		assert_int_equal(t.calls[i], 1);
		double worst = bt_case_check(&it.tc, it.tc.out, ref, rel_of(oc->op, oc->k), UINT64_MAX);

		if (worst > 1.0)
			fail_msg("%s m=%u n=%u k=%u: error %.3g of the tolerance", vgpu_op_name(oc->op),
				 oc->m, oc->n, oc->k, worst);
		free(ref);
		bt_case_free(&it.tc);
	}
	B->fini(ctx);
	tracker_destroy(&t);
}

static void ops_one_worker(void **state)
{
	(void)state;
	ops_vs_reference(1);
}

static void ops_four_workers(void **state)
{
	(void)state;
	ops_vs_reference(4);
}

static void bad_works_refused(void **state)
{
	struct tracker t;
	void *ctx = start(1, 4);
	struct item it;

	(void)state;
	tracker_init(&t);
	small_item(&it, &t, 0, ctx, 0, 16, on_done);
	struct vgpu_work good = it.w, w;

	w = good, w.in_count[0] = 15;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.out_count = 17;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.priority = 3;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.priority = -1;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.done = NULL;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.op = 0;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.op = VGPU_OP_COUNT + 1;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.params.n = 0, w.in_count[0] = w.in_count[1] = w.out_count = 0;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.in[1] = NULL;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.out = NULL;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	w = good, w.op = VGPU_OP_SGEMM, w.params.m = 0, w.params.k = 4;
	assert_int_equal(B->submit(ctx, &w), VGPU_INVALID_PARAM);
	assert_int_equal(B->submit(ctx, NULL), VGPU_INVALID_PARAM);

	/* The good one still runs, and nothing else was ever done. */
	assert_int_equal(B->submit(ctx, &good), VGPU_OK);
	wait_until(&t, done_at_least, 1);
	B->fini(ctx);
	assert_int_equal(t.n_done, 1);
	assert_int_equal(t.calls[0], 1);
	bt_case_free(&it.tc);
	tracker_destroy(&t);
}

static void priority_order(void **state)
{
	/* ids: 0 the blocker; then the order they are queued in. */
	static const int prio[] = { 0, 0, 0, 0, 0, 0, 1, 2, 0, 2, 1 };
	static const int expect[] = { 7, 9, 6, 10, 1, 2, 3, 4, 5, 8 };
	const int n = (int)(sizeof(prio) / sizeof(prio[0]));
	struct item *items = calloc((size_t)n, sizeof(*items));
	struct tracker t;
	void *ctx = start(1, 64);

	(void)state;
	assert_non_null(items);
	tracker_init(&t);
	small_item(&items[0], &t, 0, ctx, 0, 64, blocker_done);
	assert_int_equal(B->submit(ctx, &items[0].w), VGPU_OK);
	wait_until(&t, blocker_entered, 0);
	for (int i = 1; i < n; i++) {
		small_item(&items[i], &t, i, ctx, prio[i], 64, on_done);
		assert_int_equal(B->submit(ctx, &items[i].w), VGPU_OK);
	}
	release_blocker(&t);
	wait_until(&t, done_at_least, n - 1);
	for (int i = 0; i < n - 1; i++)
		assert_int_equal(t.order[i], expect[i]);
	B->fini(ctx);
	for (int i = 0; i < n; i++)
		bt_case_free(&items[i].tc);
	free(items);
	tracker_destroy(&t);
}

static void high_overtakes_large_low(void **state)
{
	struct tracker t;
	void *ctx = start(1, 8);
	struct item low, high;

	(void)state;
	tracker_init(&t);
	/* 8 parts of 1 Mi elements: the high one gets in after the first. */
	small_item(&low, &t, 0, ctx, 0, 8u << 20, on_done);
	small_item(&high, &t, 1, ctx, 2, 16, on_done);
	uint64_t t0 = vgpu_now_ns();

	assert_int_equal(B->submit(ctx, &low.w), VGPU_OK);
	assert_int_equal(B->submit(ctx, &high.w), VGPU_OK);
	uint64_t gap = vgpu_now_ns() - t0;

	wait_until(&t, done_at_least, 2);
	if (gap < 1000000) /* unless this thread was descheduled for a part's time */
		assert_int_equal(t.order[0], 1);
	else
		print_message("submits %llu ns apart: order not checked\n", (unsigned long long)gap);
	assert_true(bt_case_check(&low.tc, low.tc.out, NULL, 1e-6, 1 << 16) <= 1.0);
	B->fini(ctx);
	bt_case_free(&low.tc);
	bt_case_free(&high.tc);
	tracker_destroy(&t);
}

static void busy_when_full(void **state)
{
	struct tracker t;
	void *ctx = start(1, 4);
	struct item items[7];

	(void)state;
	tracker_init(&t);
	small_item(&items[0], &t, 0, ctx, 0, 8, blocker_done);
	assert_int_equal(B->submit(ctx, &items[0].w), VGPU_OK);
	wait_until(&t, blocker_entered, 0);
	/* The blocker's slot was given back before its done(): 4 more fit. */
	for (int i = 1; i <= 5; i++)
		small_item(&items[i], &t, i, ctx, 2, 8, on_done);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(B->submit(ctx, &items[i].w), VGPU_OK);
	assert_int_equal(B->submit(ctx, &items[5].w), VGPU_BUSY);
	release_blocker(&t);
	wait_until(&t, done_at_least, 4);
	assert_int_equal(t.calls[5], 0);
	assert_int_equal(B->submit(ctx, &items[5].w), VGPU_OK);
	wait_until(&t, done_at_least, 5);
	B->fini(ctx);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(t.calls[i], 1);
	for (int i = 0; i <= 5; i++)
		bt_case_free(&items[i].tc);
	tracker_destroy(&t);
}

/* With max_inflight 1, done() of each work submits the next one. */
struct chain {
	struct tracker *t;
	const struct vgpu_backend_ops *b;
	void *ctx;
	struct item items[8];
	int next;
	int refused;
};

static void chain_done(struct vgpu_work *w, int status, uint64_t exec_ns)
{
	struct item *it = w->user;
	struct chain *ch = it->owner;

	/* Claimed before submit: the next done() may run before submit returns. */
	if (ch->next < 8 && ch->b->submit(ch->ctx, &ch->items[ch->next++].w) != VGPU_OK)
		ch->refused++;
	on_done(w, status, exec_ns);
}

static void resubmit_from_done(void **state)
{
	struct tracker t;
	struct chain *ch = calloc(1, sizeof(*ch));

	(void)state;
	assert_non_null(ch);
	tracker_init(&t);
	ch->t = &t;
	ch->b = B;
	ch->ctx = start(2, 1);
	for (int i = 0; i < 8; i++) {
		small_item(&ch->items[i], &t, i, ch->ctx, 1, 32, chain_done);
		ch->items[i].owner = ch;
	}
	ch->next = 1;
	assert_int_equal(B->submit(ch->ctx, &ch->items[0].w), VGPU_OK);
	wait_until(&t, done_at_least, 8);
	assert_int_equal(ch->refused, 0);
	B->fini(ch->ctx);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(t.calls[i], 1);
		bt_case_free(&ch->items[i].tc);
	}
	free(ch);
	tracker_destroy(&t);
}

static void fini_completes_outstanding(void **state)
{
	enum { N = 40 };
	struct item *items = calloc(N, sizeof(*items));
	struct tracker t;
	void *ctx = start(2, N);
	struct bt_alloc a = host_of(ctx);

	(void)state;
	assert_non_null(items);
	tracker_init(&t);
	for (int i = 0; i < N; i++) {
		items[i].t = &t;
		items[i].id = i;
		if (i % 4 == 3)
			assert_true(bt_case_new(&items[i].tc, VGPU_OP_SGEMM, 40, 30, 50, 1.0f, 0.5f,
						(uint32_t)i, &a));
		else
			assert_true(bt_case_new(&items[i].tc, VGPU_OP_SAXPY, 0, 300000, 0, 1.5f, 0,
						(uint32_t)i, &a));
		bt_case_work(&items[i].tc, &items[i].w, i % 3, on_done, &items[i]);
		assert_int_equal(B->submit(ctx, &items[i].w), VGPU_OK);
	}
	B->fini(ctx); /* returns only when every one of them is done */
	assert_int_equal(t.n_done, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(t.calls[i], 1);
		assert_int_equal(t.status[i], VGPU_OK);
		assert_true(bt_case_check(&items[i].tc, items[i].tc.out, NULL,
					  rel_of(items[i].tc.op, items[i].tc.p.k), 4096) <= 1.0);
		items[i].tc.a = bt_malloc; /* the backend is gone: its host_free too */
		bt_case_free(&items[i].tc);
	}
	free(items);
	tracker_destroy(&t);
}

enum { SUBMITTERS = 4, PER_SUBMITTER = 300 };

struct submitter {
	void *ctx;
	struct item *items;
	int busy;
};

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;

	for (int i = 0; i < PER_SUBMITTER; i++) {
		int rc;

		while ((rc = B->submit(s->ctx, &s->items[i].w)) == VGPU_BUSY) {
			s->busy++;
			sched_yield();
		}
		if (rc != VGPU_OK)
			return (void *)1;
	}
	return NULL;
}

static void many_submitters(void **state)
{
	const int total = SUBMITTERS * PER_SUBMITTER;
	struct item *items = calloc((size_t)total, sizeof(*items));
	struct submitter subs[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	struct tracker t;
	void *ctx = start(3, 16);
	struct bt_alloc a = host_of(ctx);
	int busy = 0;

	(void)state;
	assert_non_null(items);
	tracker_init(&t);
	for (int i = 0; i < total; i++) {
		uint32_t r = (uint32_t)i * 2654435761u;
		enum vgpu_op op = (enum vgpu_op)(1 + (r >> 8) % VGPU_OP_COUNT);
		uint32_t n = 1 + (r >> 12) % 3000, m = 1 + (r >> 4) % 13, k = 1 + (r >> 20) % 11;

		items[i].t = &t;
		items[i].id = i;
		if (op == VGPU_OP_SGEMM)
			n = 1 + n % 17;
		assert_true(bt_case_new(&items[i].tc, op, m, n, k, 1.25f, 0.5f, (uint32_t)i, &a));
		bt_case_work(&items[i].tc, &items[i].w, (int)((r >> 16) % 3), on_done, &items[i]);
	}
	for (int s = 0; s < SUBMITTERS; s++) {
		subs[s] = (struct submitter){ ctx, items + s * PER_SUBMITTER, 0 };
		assert_int_equal(pthread_create(&th[s], NULL, submitter_main, &subs[s]), 0);
	}
	for (int s = 0; s < SUBMITTERS; s++) {
		void *ret;

		assert_int_equal(pthread_join(th[s], &ret), 0);
		assert_null(ret);
		busy += subs[s].busy;
	}
	wait_until(&t, done_at_least, total);
	B->fini(ctx);
	for (int i = 0; i < total; i++) {
		assert_int_equal(t.calls[i], 1);
		assert_int_equal(t.status[i], VGPU_OK);
		double worst = bt_case_check(&items[i].tc, items[i].tc.out, NULL,
					     rel_of(items[i].tc.op, items[i].tc.p.k), UINT64_MAX);

		if (worst > 1.0)
			fail_msg("work %d (%s): error %.3g of the tolerance", i,
				 vgpu_op_name(items[i].tc.op), worst);
		items[i].tc.a = bt_malloc;
		bt_case_free(&items[i].tc);
	}
	print_message("%d submits refused with VGPU_BUSY and retried\n", busy);
	free(items);
	tracker_destroy(&t);
}

static void config_alloc_select(void **state)
{
	struct vgpu_backend_config bad = { .threads = -1 };
	char err[256] = "";
	void *ctx = NULL;

	(void)state;
	assert_int_equal(B->init(&bad, &ctx, err, sizeof(err)), VGPU_INVALID_PARAM);
	assert_null(ctx);
	assert_true(err[0] != '\0');
	B->fini(NULL);

	ctx = start(0, 0); /* one thread per core, default inflight */
	for (size_t size = 0; size < 300; size += 37) {
		void *p = B->host_alloc(ctx, size);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 64, 0);
		memset(p, 0xa5, size);
		B->host_free(ctx, p, size);
	}
	B->host_free(ctx, NULL, 0);
	B->fini(ctx);

	assert_int_equal(B->probe(err, sizeof(err)), VGPU_OK);
	assert_ptr_equal(vgpu_backend_select("cpu", err, sizeof(err)), &vgpu_backend_cpu);
	assert_null(vgpu_backend_select("gpu", err, sizeof(err)));
	assert_non_null(strstr(err, "unknown backend"));
	/* auto always finds one; cuda only where it is built and usable. */
	const struct vgpu_backend_ops *b = vgpu_backend_select("auto", err, sizeof(err));

	assert_non_null(b);
	if (b == &vgpu_backend_cpu)
		assert_true(err[0] != '\0'); /* why not cuda */
	b = vgpu_backend_select("cuda", err, sizeof(err));
	if (!b)
		assert_true(err[0] != '\0');
	else
		assert_ptr_equal(b, vgpu_backend_cuda);
	print_message("select cuda: %s\n", b ? "usable" : err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ops_one_worker),
		cmocka_unit_test(ops_four_workers),
		cmocka_unit_test(bad_works_refused),
		cmocka_unit_test(priority_order),
		cmocka_unit_test(high_overtakes_large_low),
		cmocka_unit_test(busy_when_full),
		cmocka_unit_test(resubmit_from_done),
		cmocka_unit_test(fini_completes_outstanding),
		cmocka_unit_test(many_submitters),
		cmocka_unit_test(config_alloc_select),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
