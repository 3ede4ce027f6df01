/* SPDX-License-Identifier: MIT */
/*
 * test_pace.c - the pacing of the VMs' CUDA workers (mediator/pace.c) on
 * the real scheduler, with a virtual clock: workers that keep their GPU
 * work outstanding (busy) for as long as the case says, stepped every
 * 5 ms as the mediator steps them, on GPUs that share their time equally
 * between the workers running there (the model pace.h charges by, so the
 * shares measured here are those the policy gives, not the GPU's
 * fidelity to the model: that is docs/performance.md's).
 *
 * Checked, each share within 2% (relative) over 20 s after a warm-up:
 * pool weights 3:1, VM weights 1:3 within a pool, a rate limit of 200
 * GPU-ms/s alone and beside an unlimited VM (which then takes the rest), a
 * pool's cap of 25% (paced a step's worth at a time, not a step for each
 * microsecond refilled); a limit lifted after a minute leaves no credit
 * (both VMs at half at once); workers of different levels or on different GPUs
 * never paced for each other; a worker idle for 5 s gets no credit for
 * it (paced within 40 ms of starting again beside one that kept running,
 * it takes its share, not the GPU), nor one idle while its rival ran that
 * starts first; a paced worker let go within a step of
 * the one it gave way to going idle; a worker that is not busy paced only
 * to the end of its limit's deadline; workers without a VM neither charged nor paced.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "pace.h"
#include "scheduler.h"
#include "vgpu_error.h"

#define MS 1000000ull
#define S 1000000000ull
#define STEP VGPU_PACE_STEP_NS

struct sim {
	struct vgpu_sched *s;
	struct vgpu_pace_worker w[8];
	uint32_t n;
	uint64_t now;
	uint64_t steps;
};

static void sim_init(struct sim *sim, uint32_t n_gpus)
{
	struct vgpu_sched_params p;

	memset(sim, 0, sizeof(*sim));
	vgpu_sched_params_default(&p);
	assert_int_equal(vgpu_sched_new(16, 4, n_gpus, &p, &sim->s), VGPU_OK);
	assert_int_equal(vgpu_sched_set_pool(sim->s, 0, 100, 1000, (1ull << n_gpus) - 1, 0), VGPU_OK);
	assert_int_equal(vgpu_sched_set_pool(sim->s, 1, 100, 1000, (1ull << n_gpus) - 1, 0), VGPU_OK);
}

/* A worker of a new VM (slot = its index) in @pool at @level. */
static struct vgpu_pace_worker *worker(struct sim *sim, uint32_t pool, int level, uint32_t weight,
				       uint64_t rate, uint64_t gpus)
{
	struct vgpu_pace_worker *w = &sim->w[sim->n];

	assert_int_equal(vgpu_sched_set_vm(sim->s, sim->n, pool, level, weight, rate, sim->now),
			 VGPU_OK);
	w->slot = sim->n;
	w->gpus = gpus;
	if (sim->n > 0)
		sim->w[sim->n - 1].next = w;
	sim->n++;
	return w;
}

/* Run for @ns: a step every STEP, as the mediator's tick, and at each
 * paced worker's deadline. */
static void run(struct sim *sim, uint64_t ns)
{
	for (uint64_t end = sim->now + ns; sim->now < end;) {
		uint64_t next = vgpu_pace_next(&sim->w[0], sim->now), at = sim->now + STEP;

		if (next && next < at)
			at = next;
		vgpu_pace_step(sim->s, &sim->w[0], sim->now, at);
		sim->now = at;
		sim->steps++;
	}
}

/* GPU time each worker got over @ns after @warm, as fractions of @ns. */
static void measure(struct sim *sim, uint64_t warm, uint64_t ns, double *out)
{
	uint64_t before[8];

	run(sim, warm);
	for (uint32_t i = 0; i < sim->n; i++)
		before[i] = sim->w[i].gpu_ns;
	run(sim, ns);
	for (uint32_t i = 0; i < sim->n; i++)
		out[i] = (double)(sim->w[i].gpu_ns - before[i]) / (double)ns;
}

static void expect_share(double got, double want, const char *what)
{
	print_message("  %-48s %.4f (want %.4f)\n", what, got, want);
	assert_true(fabs(got - want) <= 0.02 * want);
}

static void pools_weighted(void **state)
{
	struct sim sim;
	double f[8];

	(void)state;
	sim_init(&sim, 1);
	assert_int_equal(vgpu_sched_set_pool(sim.s, 0, 300, 1000, 1, 0), VGPU_OK);
	worker(&sim, 0, 1, 100, 0, 1)->busy = true;
	worker(&sim, 1, 1, 100, 0, 1)->busy = true;
	measure(&sim, 2 * S, 20 * S, f);
	expect_share(f[0], 0.75, "pool weight 300");
	expect_share(f[1], 0.25, "pool weight 100");
	assert_true(sim.w[1].paced_ns > 0);
	vgpu_sched_free(sim.s);
}

static void vms_weighted(void **state)
{
	struct sim sim;
	double f[8];

	(void)state;
	sim_init(&sim, 1);
	worker(&sim, 0, 1, 100, 0, 1)->busy = true;
	worker(&sim, 0, 1, 300, 0, 1)->busy = true;
	measure(&sim, 2 * S, 20 * S, f);
	expect_share(f[0], 0.25, "VM weight 100");
	expect_share(f[1], 0.75, "VM weight 300, same pool");
	vgpu_sched_free(sim.s);
}

static void rate_limit_and_cap(void **state)
{
	struct sim sim;
	double f[8];

	(void)state;
	sim_init(&sim, 1);
	worker(&sim, 0, 1, 100, 200 * MS, 1)->busy = true;
	measure(&sim, 2 * S, 20 * S, f);
	expect_share(f[0], 0.2, "rate limit 200 GPU-ms/s, alone");
	worker(&sim, 1, 1, 100, 0, 1)->busy = true;
	measure(&sim, 2 * S, 20 * S, f);
	expect_share(f[0], 0.2, "the same beside an unlimited VM");
	expect_share(f[1], 0.8, "the unlimited VM: the rest");
	/* Paced a step's worth at a time: at most 1.5 steps a STEP, not one
	 * for every microsecond the bucket refills. */
	print_message("  steps in 44 s: %llu\n", (unsigned long long)sim.steps);
	assert_true(sim.steps <= 44 * S / STEP * 3 / 2);
	vgpu_sched_free(sim.s);

	sim_init(&sim, 1);
	assert_int_equal(vgpu_sched_set_pool(sim.s, 1, 100, 250, 1, 0), VGPU_OK);
	worker(&sim, 1, 1, 100, 0, 1)->busy = true;
	measure(&sim, 2 * S, 20 * S, f);
	expect_share(f[0], 0.25, "pool cap 25%, alone");
	vgpu_sched_free(sim.s);
}

/* A VM held to its limit for a minute has no credit when the limit goes:
 * its rival keeps half the GPU, not none for the minute's lag. */
static void limit_lifted(void **state)
{
	struct sim sim;
	double f[8];

	(void)state;
	sim_init(&sim, 1);
	worker(&sim, 0, 1, 100, 300 * MS, 1)->busy = true;
	worker(&sim, 0, 1, 100, 0, 1)->busy = true;
	run(&sim, 60 * S);
	assert_int_equal(vgpu_sched_set_vm(sim.s, 0, 0, 1, 100, 0, sim.now), VGPU_OK);
	measure(&sim, 100 * MS, 2 * S, f);
	expect_share(f[0], 0.5, "the VM whose limit was lifted");
	expect_share(f[1], 0.5, "its rival, at once");
	vgpu_sched_free(sim.s);
}

static void levels_and_gpus_apart(void **state)
{
	struct sim sim;
	double f[8];

	(void)state;
	sim_init(&sim, 2);
	assert_int_equal(vgpu_sched_set_pool(sim.s, 0, 1000, 1000, 3, 0), VGPU_OK);
	worker(&sim, 0, 2, 100, 0, 1)->busy = true; /* high, GPU 0 */
	worker(&sim, 1, 0, 100, 0, 1)->busy = true; /* low, GPU 0 */
	worker(&sim, 1, 1, 100, 0, 2)->busy = true; /* medium, GPU 1 */
	worker(&sim, 0, 1, 100, 0, 2)->busy = false;
	measure(&sim, 1 * S, 5 * S, f);
	expect_share(f[0], 0.5, "high beside low on GPU 0 (the hold's, not this)");
	expect_share(f[1], 0.5, "low beside high on GPU 0");
	expect_share(f[2], 1.0, "alone at its level on GPU 1");
	for (int i = 0; i < 4; i++)
		assert_int_equal(sim.w[i].paced_ns, 0);
	vgpu_sched_free(sim.s);
}

static void no_credit_and_let_go(void **state)
{
	struct sim sim;
	double f[8];
	struct vgpu_pace_worker *a, *b;

	(void)state;
	sim_init(&sim, 1);
	a = worker(&sim, 0, 1, 100, 0, 1);
	b = worker(&sim, 1, 1, 100, 0, 1);
	a->busy = true;
	run(&sim, 5 * S);      /* b idle: a alone */
	b->busy = true;
	run(&sim, 40 * MS);
	/* b did not get the GPU for itself: a still ran (not paced for b's
	 * 5 s of idling), within the slack either way. */
	assert_true(a->gpu_ns > 5 * S);
	measure(&sim, 0, 10 * S, f);
	expect_share(f[0], 0.5, "A, that kept running");
	expect_share(f[1], 0.5, "B, after 5 s idle");

	/* A paced for B; B goes idle: A runs at the next step. */
	assert_int_equal(vgpu_sched_set_pool(sim.s, 1, 10000, 1000, 1, sim.now), VGPU_OK);
	run(&sim, 1 * S);
	assert_true(a->paced_until != 0);
	b->busy = false;
	run(&sim, STEP);
	assert_int_equal(a->paced_until, 0);
	assert_int_equal(b->paced_until, 0);
	vgpu_sched_free(sim.s);
}

/* B idle while A ran 5 s (other pools), both idle, then B starts a step
 * before A: B resumes where A stopped, not at its own old time, so A is
 * not paced for B's 5 s. */
static void idle_one_starts_first(void **state)
{
	struct sim sim;
	double f[8];
	struct vgpu_pace_worker *a, *b;

	(void)state;
	sim_init(&sim, 1);
	a = worker(&sim, 0, 1, 100, 0, 1);
	b = worker(&sim, 1, 1, 100, 0, 1);
	a->busy = true;
	run(&sim, 5 * S);
	a->busy = false;
	run(&sim, 1 * S);
	b->busy = true;
	run(&sim, STEP);
	a->busy = true;
	measure(&sim, 0, 2 * S, f);
	expect_share(f[0], 0.5, "A, that ran 5 s, starting a step after B");
	expect_share(f[1], 0.5, "B, idle meanwhile, starting first");
	vgpu_sched_free(sim.s);
}

static void not_busy_or_no_vm(void **state)
{
	struct sim sim;
	struct vgpu_pace_worker *a, *b;

	(void)state;
	sim_init(&sim, 1);
	a = worker(&sim, 0, 1, 100, 1 * MS, 1); /* 1 GPU-ms/s: closed after the burst */
	b = worker(&sim, 1, 1, 100, 0, 1);
	a->busy = true;
	run(&sim, 1 * S);
	assert_true(a->paced_until > sim.now);
	/* Idle, it keeps its limit's deadline (its next launch waits too),
	 * then has none. */
	a->busy = false;
	run(&sim, STEP);
	assert_true(a->paced_until > sim.now);
	run(&sim, 2 * S);
	assert_int_equal(a->paced_until, 0);
	b->slot = UINT32_MAX; /* its VM gone */
	b->busy = true;
	uint64_t before = b->gpu_ns;
	run(&sim, 1 * S);
	assert_int_equal(b->gpu_ns, before);
	assert_int_equal(b->paced_until, 0);
	vgpu_sched_free(sim.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pools_weighted),
		cmocka_unit_test(vms_weighted),
		cmocka_unit_test(rate_limit_and_cap),
		cmocka_unit_test(limit_lifted),
		cmocka_unit_test(levels_and_gpus_apart),
		cmocka_unit_test(no_credit_and_let_go),
		cmocka_unit_test(idle_one_starts_first),
		cmocka_unit_test(not_busy_or_no_vm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
