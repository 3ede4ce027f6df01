/* SPDX-License-Identifier: MIT */
/*
 * test_sched_sim.c - the scheduling policy (mediator/scheduler.c) in a
 * deterministic simulation with a virtual clock: GPUs that run one work at
 * a time for its true cost, and VMs that keep a number of works
 * outstanding (closed loop), pushing the next one when one finishes. The
 * scheduler is told an estimate of each cost, wrong on purpose for some
 * VMs (x0.25 to x4), and the true cost when the work finishes.
 *
 * Shares are measured over a window after a warm-up, as GPU time used;
 * "within 2%" is relative to the expected share. Checked: pool weights
 * 1:2:4, VM weights 1:2:4 within a pool, 1 VM against 6 (50/50, Jain's
 * index of the 6), caps (alone and against an uncapped pool), rate limits,
 * strict priority with aging (low-priority waits p99.9 <= 100 ms under
 * saturating high-priority load; with no aging floor it starves), a live
 * weight change (the new shares hold from 1 s after it), no credit for a
 * pool that was idle, placement on 2
 * and 4 GPUs; and the interface's bad arguments, drain and generations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"
#include "vgpu_error.h"

#define MS 1000000ull
#define S 1000000000ull
#define MAX_CLIENTS 64
#define MAX_GPUS 4
#define MAX_WORKS 1024
#define MAX_WAITS 200000

struct client {
	uint32_t pool;
	int level;
	uint32_t weight;
	uint64_t rate;      /* ns per s, 0: none */
	uint64_t cost_ns;   /* true cost of each work */
	double est;         /* the estimate given: cost x est */
	int depth;          /* works kept outstanding */
	uint64_t think_ns;  /* pause between a completion and the next push */
	/* run state */
	int outstanding;
	uint64_t next_push;
	/* measured in the window */
	uint64_t used_ns;
	uint64_t gpu_used[MAX_GPUS];
	uint32_t n_waits;
	uint64_t *waits;
};

struct work {
	struct vgpu_sched_item item; /* first */
	struct work *free_next;
	int client;
};

struct running {
	struct work *w;
	uint64_t end;
};

struct sim {
	struct vgpu_sched *s;
	uint64_t now;
	uint32_t n_gpus;
	int n;
	struct client c[MAX_CLIENTS];
	struct running gpu[MAX_GPUS];
	uint64_t gpu_busy[MAX_GPUS]; /* in the window */
	uint64_t win_start, win_end;
	struct work works[MAX_WORKS];
	struct work *free_works;
	uint64_t resend_every;      /* set every VM's settings again this often */
	uint64_t next_resend;
};

static struct sim *sim_new(uint32_t n_gpus, uint32_t n_pools, const struct vgpu_sched_params *prm)
{
	struct vgpu_sched_params def;
	struct sim *sim = calloc(1, sizeof(*sim));
	int i;

	assert_non_null(sim);
	if (!prm) {
		vgpu_sched_params_default(&def);
		prm = &def;
	}
	assert_int_equal(vgpu_sched_new(MAX_CLIENTS, n_pools, n_gpus, prm, &sim->s), VGPU_OK);
	sim->n_gpus = n_gpus;
	for (i = MAX_WORKS - 1; i >= 0; i--) {
		sim->works[i].free_next = sim->free_works;
		sim->free_works = &sim->works[i];
	}
	return sim;
}

static void sim_free(struct sim *sim)
{
	for (int i = 0; i < sim->n; i++)
		free(sim->c[i].waits);
	vgpu_sched_free(sim->s);
	free(sim);
}

static void pool(struct sim *sim, uint32_t p, uint32_t weight, uint32_t cap, uint64_t gpus)
{
	assert_int_equal(vgpu_sched_set_pool(sim->s, p, weight, cap, gpus, sim->now), VGPU_OK);
}

/* A client (VM slot = its index), saturating unless think_ns is set. */
static int client(struct sim *sim, uint32_t p, int level, uint32_t weight, uint64_t rate,
		  uint64_t cost_ns, double est, int depth)
{
	int i = sim->n++;
	struct client *c = &sim->c[i];

	assert_true(i < MAX_CLIENTS);
	memset(c, 0, sizeof(*c));
	c->pool = p;
	c->level = level;
	c->weight = weight;
	c->rate = rate;
	c->cost_ns = cost_ns;
	c->est = est;
	c->depth = depth;
	c->waits = calloc(MAX_WAITS, sizeof(uint64_t));
	assert_non_null(c->waits);
	assert_int_equal(vgpu_sched_set_vm(sim->s, (uint32_t)i, p, level, weight, rate, sim->now),
			 VGPU_OK);
	return i;
}

static bool in_window(struct sim *sim, uint64_t t)
{
	return t >= sim->win_start && t < sim->win_end;
}

static void push_due(struct sim *sim)
{
	for (int i = 0; i < sim->n; i++) {
		struct client *c = &sim->c[i];

		while (c->outstanding < c->depth && c->next_push <= sim->now) {
			struct work *w = sim->free_works;

			assert_non_null(w);
			sim->free_works = w->free_next;
			memset(&w->item, 0, sizeof(w->item));
			w->client = i;
			w->item.vm_slot = (uint32_t)i;
			w->item.cost_ns = (uint64_t)((double)c->cost_ns * c->est);
			assert_int_equal(vgpu_sched_push(sim->s, &w->item, sim->now), VGPU_OK);
			c->outstanding++;
		}
	}
}

/* Run the simulation until virtual time @until. */
static void sim_run(struct sim *sim, uint64_t until)
{
	while (sim->now < until) {
		uint64_t next = until, retry;
		uint32_t g;

		push_due(sim);
		/* As the mediator does at every registry read: the same values. */
		if (sim->resend_every && sim->now >= sim->next_resend) {
			for (int i = 0; i < sim->n; i++)
				assert_int_equal(vgpu_sched_set_vm(sim->s, (uint32_t)i, sim->c[i].pool,
								   sim->c[i].level, sim->c[i].weight,
								   sim->c[i].rate, sim->now),
						 VGPU_OK);
			sim->next_resend = sim->now + sim->resend_every;
		}
		if (sim->resend_every && sim->next_resend < next)
			next = sim->next_resend;
		for (g = 0; g < sim->n_gpus; g++) {
			struct vgpu_sched_item *it;
			struct work *w;
			struct client *c;

			if (sim->gpu[g].w)
				continue;
			it = vgpu_sched_pick(sim->s, g, sim->now, &retry);
			if (!it) {
				if (retry && retry < next)
					next = retry;
				continue;
			}
			assert_true(retry == 0);
			w = (struct work *)it;
			c = &sim->c[w->client];
			assert_int_equal(it->gpu, g);
			sim->gpu[g].w = w;
			sim->gpu[g].end = sim->now + c->cost_ns;
			if (in_window(sim, sim->now) && c->n_waits < MAX_WAITS)
				c->waits[c->n_waits++] = sim->now - it->enqueued_ns;
		}
		for (g = 0; g < sim->n_gpus; g++)
			if (sim->gpu[g].w && sim->gpu[g].end < next)
				next = sim->gpu[g].end;
		for (int i = 0; i < sim->n; i++)
			if (sim->c[i].outstanding < sim->c[i].depth && sim->c[i].next_push > sim->now &&
			    sim->c[i].next_push < next)
				next = sim->c[i].next_push;
		assert_true(next > sim->now || next == until);
		sim->now = next;
		for (g = 0; g < sim->n_gpus; g++) {
			struct work *w = sim->gpu[g].w;
			struct client *c;

			if (!w || sim->gpu[g].end > sim->now)
				continue;
			c = &sim->c[w->client];
			vgpu_sched_done(sim->s, &w->item, c->cost_ns);
			if (in_window(sim, sim->now)) {
				c->used_ns += c->cost_ns;
				c->gpu_used[g] += c->cost_ns;
				sim->gpu_busy[g] += c->cost_ns;
			}
			c->outstanding--;
			c->next_push = sim->now + c->think_ns;
			sim->gpu[g].w = NULL;
			w->free_next = sim->free_works;
			sim->free_works = w;
		}
	}
}

/* Warm up for @warm, then measure for @window. */
static void sim_measure(struct sim *sim, uint64_t warm, uint64_t window)
{
	sim->win_start = sim->now + warm;
	sim->win_end = sim->win_start + window;
	for (int i = 0; i < sim->n; i++) {
		sim->c[i].used_ns = 0;
		sim->c[i].n_waits = 0;
		memset(sim->c[i].gpu_used, 0, sizeof(sim->c[i].gpu_used));
	}
	memset(sim->gpu_busy, 0, sizeof(sim->gpu_busy));
	sim_run(sim, sim->win_end);
}

/* GPU time used by clients [from, to), as a share of the window x GPUs. */
static double share(struct sim *sim, int from, int to)
{
	uint64_t used = 0;

	for (int i = from; i < to; i++)
		used += sim->c[i].used_ns;
	return (double)used / (double)((sim->win_end - sim->win_start) * sim->n_gpus);
}

static void expect_share(double got, double want, const char *what)
{
	print_message("  %-40s %.4f (want %.4f)\n", what, got, want);
	assert_true(fabs(got - want) <= 0.02 * want);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t percentile(struct client *c, double q)
{
	assert_true(c->n_waits > 0);
	qsort(c->waits, c->n_waits, sizeof(uint64_t), cmp_u64);
	return c->waits[(size_t)(q * (c->n_waits - 1))];
}

/* Pools weighted 1:2:4, two VMs each, costs and estimates that differ. */
static void pools_weighted(void **state)
{
	struct sim *sim = sim_new(1, 3, NULL);

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	pool(sim, 1, 2, 1000, 1);
	pool(sim, 2, 4, 1000, 1);
	client(sim, 0, 0, 1, 0, 1 * MS, 0.25, 4);
	client(sim, 0, 0, 1, 0, 300000, 1.0, 4);
	client(sim, 1, 0, 1, 0, 300000, 4.0, 4);
	client(sim, 1, 0, 1, 0, 2 * MS, 1.0, 2);
	client(sim, 2, 0, 1, 0, 2500000, 1.0, 4);
	client(sim, 2, 0, 1, 0, 700000, 0.5, 4);
	sim_measure(sim, 2 * S, 10 * S);
	expect_share(share(sim, 0, 2), 1.0 / 7, "pool weight 1");
	expect_share(share(sim, 2, 4), 2.0 / 7, "pool weight 2");
	expect_share(share(sim, 4, 6), 4.0 / 7, "pool weight 4");
	expect_share(share(sim, 0, 6), 1.0, "GPU busy");
	sim_free(sim);
}

/* VMs weighted 1:2:4 in one pool. */
static void vms_weighted(void **state)
{
	struct sim *sim = sim_new(1, 1, NULL);

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	client(sim, 0, 1, 1, 0, 500000, 2.0, 4);
	client(sim, 0, 1, 2, 0, 1500000, 1.0, 4);
	client(sim, 0, 1, 4, 0, 200000, 0.25, 8);
	sim_measure(sim, 2 * S, 10 * S);
	expect_share(share(sim, 0, 1), 1.0 / 7, "VM weight 1");
	expect_share(share(sim, 1, 2), 2.0 / 7, "VM weight 2");
	expect_share(share(sim, 2, 3), 4.0 / 7, "VM weight 4");
	sim_free(sim);
}

/* One VM in pool A, six in pool B, equal weights: 50/50, fair inside B. */
static void one_against_six(void **state)
{
	struct sim *sim = sim_new(1, 2, NULL);
	double sum = 0, sq = 0, jain;

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	pool(sim, 1, 1, 1000, 1);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
	for (int i = 0; i < 6; i++)
		client(sim, 1, 0, 1, 0, (uint64_t)(400000 + 150000 * i), i % 2 ? 0.5 : 2.0, 4);
	sim_measure(sim, 2 * S, 10 * S);
	expect_share(share(sim, 0, 1), 0.5, "pool A (1 VM)");
	expect_share(share(sim, 1, 7), 0.5, "pool B (6 VMs)");
	for (int i = 1; i < 7; i++) {
		double x = share(sim, i, i + 1);

		sum += x;
		sq += x * x;
	}
	jain = sum * sum / (6 * sq);
	print_message("  Jain's index over pool B's VMs: %.5f\n", jain);
	assert_true(jain >= 0.99);
	sim_free(sim);
}

/* A cap holds alone (the GPU idles) and against an uncapped pool of
 * lower weight (which gets the rest). */
static void caps(void **state)
{
	struct sim *sim = sim_new(1, 2, NULL);

	(void)state;
	pool(sim, 0, 4, 300, 1);
	pool(sim, 1, 1, 1000, 1);
	client(sim, 0, 2, 1, 0, 1 * MS, 0.5, 4);
	sim_measure(sim, 1 * S, 10 * S);
	expect_share(share(sim, 0, 1), 0.30, "capped pool alone (cap 30%)");
	client(sim, 1, 0, 1, 0, 700000, 1.0, 4);
	sim_measure(sim, 1 * S, 10 * S);
	expect_share(share(sim, 0, 1), 0.30, "capped pool, weight 4, high priority");
	expect_share(share(sim, 1, 2), 0.70, "uncapped pool, weight 1, low priority");
	sim_free(sim);
}

/* A rate limit holds; the others use the rest. Also when the same
 * settings are set again every 0.5 s (the mediator's registry reads) or
 * every 0.3 ms (more often than the bucket gains a token's worth). */
static void rate_limits(void **state)
{
	static const uint64_t resend[3] = { 0, 500 * MS, 300000 };

	(void)state;
	for (int r = 0; r < 3; r++) {
		struct sim *sim = sim_new(1, 1, NULL);

		sim->resend_every = resend[r];
		pool(sim, 0, 1, 1000, 1);
		client(sim, 0, 2, 8, 200 * MS, 600000, 2.0, 4);
		client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
		client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
		sim_measure(sim, 1 * S, 10 * S);
		print_message("  settings set again every %.1f ms (0: never)\n", resend[r] / 1e6);
		expect_share(share(sim, 0, 1), 0.20, "VM limited to 200 GPU-ms/s");
		expect_share(share(sim, 1, 3), 0.80, "the two others");
		sim_free(sim);
	}
}

/* Strict priority: a saturating high-priority VM gets the GPU but the
 * floor; a low-priority VM (one work at a time) waits p99.9 <= 100 ms,
 * and starves without the floor. */
static void priority_and_aging(void **state)
{
	struct vgpu_sched_params prm;
	struct sim *sim = sim_new(1, 1, NULL);
	uint64_t p999;

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	client(sim, 0, 2, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 0, 1, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 1);
	sim_measure(sim, 1 * S, 20 * S);
	p999 = percentile(&sim->c[2], 0.999);
	print_message("  low priority: %u works, wait p99.9 %.1f ms; high %.4f, medium %.4f\n",
		      sim->c[2].n_waits, p999 / 1e6, share(sim, 0, 1), share(sim, 1, 2));
	assert_true(p999 <= 100 * MS);
	assert_true(sim->c[2].n_waits >= 20 * 1000 / 60); /* one per aging period */
	assert_true(share(sim, 0, 1) >= 0.90);
	sim_free(sim);

	vgpu_sched_params_default(&prm);
	prm.floor_permille = 0;
	sim = sim_new(1, 1, &prm);
	pool(sim, 0, 1, 1000, 1);
	client(sim, 0, 2, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 1);
	sim_measure(sim, 1 * S, 5 * S);
	print_message("  with no floor: low priority ran %u works\n", sim->c[1].n_waits);
	assert_int_equal(sim->c[1].n_waits, 0);
	expect_share(share(sim, 0, 1), 1.0, "high priority with no floor");
	sim_free(sim);
}

/* Pools 1:1, then B's weight goes to 4: from 1 s after, 20/80. */
static void live_weight_change(void **state)
{
	struct sim *sim = sim_new(1, 2, NULL);

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	pool(sim, 1, 1, 1000, 1);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 1, 0, 1, 0, 300000, 3.0, 4);
	sim_measure(sim, 1 * S, 4 * S);
	expect_share(share(sim, 0, 1), 0.5, "before: pool A");
	pool(sim, 1, 4, 1000, 1);
	sim_measure(sim, 1 * S, 1 * S);
	expect_share(share(sim, 0, 1), 0.2, "second 2 after: pool A (weight 1)");
	expect_share(share(sim, 1, 2), 0.8, "second 2 after: pool B (weight 4)");
	sim_free(sim);
}

/* No credit for idling: a pool idle for 5 s while another ran gets its
 * equal share from the moment it returns, not the GPU to itself until its
 * virtual time catches up. */
static void idle_gives_no_credit(void **state)
{
	struct sim *sim = sim_new(1, 2, NULL);

	(void)state;
	pool(sim, 0, 1, 1000, 1);
	pool(sim, 1, 1, 1000, 1);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 0); /* idle: nothing outstanding */
	client(sim, 1, 0, 1, 0, 1 * MS, 1.0, 4);
	sim_run(sim, 5 * S);
	sim->c[0].depth = 4;
	sim_measure(sim, 0, 1 * S);
	expect_share(share(sim, 0, 1), 0.5, "pool back after 5 s idle, its first second");
	sim_free(sim);
}

/* Placement: each pool's work runs only on its GPUs; a pool on both
 * shares each with the pool that has only that one. */
static void placement(void **state)
{
	struct sim *sim = sim_new(2, 3, NULL);

	(void)state;
	pool(sim, 0, 1, 1000, 1u << 0);
	pool(sim, 1, 1, 1000, 1u << 1);
	pool(sim, 2, 1, 1000, 3);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 1, 0, 1, 0, 700000, 0.5, 4);
	client(sim, 2, 0, 1, 0, 400000, 2.0, 8);
	sim_measure(sim, 1 * S, 10 * S);
	assert_int_equal(sim->c[0].gpu_used[1], 0);
	assert_int_equal(sim->c[1].gpu_used[0], 0);
	assert_true(sim->c[2].gpu_used[0] > 0 && sim->c[2].gpu_used[1] > 0);
	/* What stats shows of it: the GPUs each VM ran on, each pool's time
	 * per GPU, each GPU's time. */
	{
		struct vgpu_sched_usage u0, u2, p0g1, p2g0, p2g1, g0;

		vgpu_sched_usage(sim->s, 0, UINT32_MAX, UINT32_MAX, &u0);
		vgpu_sched_usage(sim->s, 2, UINT32_MAX, UINT32_MAX, &u2);
		vgpu_sched_usage(sim->s, UINT32_MAX, 0, 1, &p0g1);
		vgpu_sched_usage(sim->s, UINT32_MAX, 2, 0, &p2g0);
		vgpu_sched_usage(sim->s, UINT32_MAX, 2, 1, &p2g1);
		vgpu_sched_usage(sim->s, UINT32_MAX, 0, 0, &g0);
		assert_int_equal(u0.vm_gpus, 1);
		assert_int_equal(u2.vm_gpus, 3);
		assert_int_equal(p0g1.pool_gpu_ns, 0);
		assert_int_equal(p2g0.pool_gpu_ns + p2g1.pool_gpu_ns, p2g0.pool_ns);
		assert_true(p2g0.pool_gpu_ns > 0 && p2g1.pool_gpu_ns > 0);
		assert_int_equal(g0.pool_gpu_ns, g0.pool_ns); /* pool 0: GPU 0 only */
		assert_true(g0.gpu_ns >= g0.pool_gpu_ns);
	}
	/* Equal weights over 2 GPUs: 2/3 of a GPU each. */
	expect_share(share(sim, 0, 1), 1.0 / 3, "pool on GPU 0 (of 2 GPUs)");
	expect_share(share(sim, 1, 2), 1.0 / 3, "pool on GPU 1");
	expect_share(share(sim, 2, 3), 1.0 / 3, "pool on both");
	sim_free(sim);

	/* 4 GPUs: pools on one GPU each keep theirs; a pool on all four,
	 * alone on the others, uses them all. */
	sim = sim_new(4, 3, NULL);
	pool(sim, 0, 1, 1000, 1u << 0);
	pool(sim, 1, 1, 1000, 1u << 1);
	pool(sim, 2, 1, 1000, 0xf);
	client(sim, 0, 0, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 1, 0, 1, 0, 1 * MS, 1.0, 4);
	client(sim, 2, 0, 1, 0, 500000, 1.0, 16);
	sim_measure(sim, 1 * S, 10 * S);
	for (uint32_t g = 0; g < 4; g++)
		expect_share((double)sim->gpu_busy[g] / (10.0 * S), 1.0, "GPU busy (of 4)");
	assert_int_equal(sim->c[0].gpu_used[1] + sim->c[0].gpu_used[2] + sim->c[0].gpu_used[3], 0);
	assert_int_equal(sim->c[1].gpu_used[0] + sim->c[1].gpu_used[2] + sim->c[1].gpu_used[3], 0);
	/* Max-min fair: the one-GPU pools keep theirs (they use less than the
	 * pool on all four), which has GPUs 2 and 3 to itself. */
	expect_share((double)sim->c[0].gpu_used[0] / (10.0 * S), 1.0, "pool on GPU 0: GPU 0");
	expect_share((double)sim->c[2].gpu_used[2] / (10.0 * S), 1.0, "pool on all: GPU 2");
	expect_share(share(sim, 2, 3), 0.5, "pool on all four (2 GPUs)");
	sim_free(sim);
}

static void bad_arguments_and_drain(void **state)
{
	struct vgpu_sched_params prm;
	struct vgpu_sched *s = NULL;
	struct vgpu_sched_item a = { .vm_slot = 1, .cost_ns = 10 }, b = a, c = a, *list, *it;
	struct vgpu_sched_usage u;
	uint64_t retry;

	(void)state;
	vgpu_sched_params_default(&prm);
	assert_int_equal(vgpu_sched_new(0, 1, 1, &prm, &s), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_new(4, 1, 65, &prm, &s), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_new(4, 2, 2, &prm, &s), VGPU_OK);
	assert_int_equal(vgpu_sched_set_pool(s, 2, 1, 1000, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 0, 1000, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 10001, 1000, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 1, 0, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 1, 1001, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 1, 1000, 0, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_pool(s, 0, 1, 1000, 4, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 1, 0, 0), VGPU_INVALID_PARAM); /* pool undefined */
	assert_int_equal(vgpu_sched_set_pool(s, 0, 1, 1000, 2, 0), VGPU_OK);
	assert_int_equal(vgpu_sched_set_vm(s, 4, 0, 1, 1, 0, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 3, 1, 0, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 0, 0, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 1, 3 * S, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_sched_push(s, &a, 0), VGPU_INVALID_PARAM); /* VM undefined */
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 1, 0, 0), VGPU_OK);
	assert_int_equal(vgpu_sched_push(s, &a, 1), VGPU_OK);
	assert_int_equal(vgpu_sched_push(s, &b, 2), VGPU_OK);
	assert_int_equal(vgpu_sched_push(s, &c, 3), VGPU_OK);
	assert_int_equal(vgpu_sched_depth(s, 1), 3);
	assert_int_equal(vgpu_sched_depth(s, UINT32_MAX), 3);
	/* The pool is on GPU 1 only: GPU 0 has nothing, and is told so. */
	assert_null(vgpu_sched_pick(s, 0, 10, &retry));
	assert_int_equal(retry, 0);
	assert_null(vgpu_sched_pick(s, 2, 10, &retry));
	it = vgpu_sched_pick(s, 1, 10, &retry);
	assert_ptr_equal(it, &a);
	assert_int_equal(vgpu_sched_remove_vm(s, 1), VGPU_BUSY);
	assert_int_equal(vgpu_sched_drain_vm(s, 1, &list), 2);
	assert_ptr_equal(list, &b);
	assert_ptr_equal(b.next, &c);
	assert_null(c.next);
	assert_int_equal(vgpu_sched_depth(s, 1), 0);
	/* Removed and defined again: a done() of work picked before is the
	 * old VM's, not charged to the new one (the pool and GPU still are). */
	assert_int_equal(vgpu_sched_remove_vm(s, 1), VGPU_OK);
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 1, 0, 20), VGPU_OK);
	vgpu_sched_done(s, &a, 1000);
	vgpu_sched_usage(s, 1, 0, 1, &u);
	assert_int_equal(u.vm_ns, 0);
	assert_int_equal(u.pool_ns, 1000);
	assert_int_equal(u.gpu_ns, 1000);
	/* A rate limit holds work back, and pick says when to ask again. */
	assert_int_equal(vgpu_sched_set_vm(s, 1, 0, 1, 1, 1 * MS, 100), VGPU_OK);
	a.cost_ns = 1 * MS;
	b.cost_ns = 1 * MS;
	assert_int_equal(vgpu_sched_push(s, &a, 100), VGPU_OK);
	assert_int_equal(vgpu_sched_push(s, &b, 100), VGPU_OK);
	assert_ptr_equal(vgpu_sched_pick(s, 1, 100, &retry), &a); /* the burst: 0.1 ms */
	assert_null(vgpu_sched_pick(s, 1, 101, &retry));
	print_message("  held back until +%.1f ms\n", (retry - 101) / 1e6);
	assert_true(retry > 101 && retry <= 101 + 1 * S);
	assert_null(vgpu_sched_pick(s, 1, retry - 1, NULL));
	assert_ptr_equal(vgpu_sched_pick(s, 1, retry, NULL), &b);
	vgpu_sched_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pools_weighted),
		cmocka_unit_test(vms_weighted),
		cmocka_unit_test(one_against_six),
		cmocka_unit_test(caps),
		cmocka_unit_test(rate_limits),
		cmocka_unit_test(priority_and_aging),
		cmocka_unit_test(live_weight_change),
		cmocka_unit_test(idle_gives_no_credit),
		cmocka_unit_test(placement),
		cmocka_unit_test(bad_arguments_and_drain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
