/* SPDX-License-Identifier: MIT */
/*
 * test_worker.c - the worker pool and the loop's pause: every job runs on a
 * worker and then its done() on the loop thread; jobs of different VMs are
 * taken round-robin (a VM with many jobs does not starve another); a
 * done() that submits another job has it run, also at shutdown; a paused
 * watch is not dispatched until its time is up, then is again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"
#include "vgpu_clock.h"
#include "vgpu_error.h"
#include "worker.h"

struct tjob {
	struct vgpu_job job;          /* first */
	pthread_t loop_thread;
	pthread_t ran_on;
	bool done_on_loop;
	int *order;                   /* where done() records its slot */
	int *n_done;
	struct vgpu_workers *w;
	struct tjob *follow_up;       /* submitted by done() */
	uint64_t sleep_us;
};

static void run(struct vgpu_job *job)
{
	struct tjob *t = (struct tjob *)job;

	t->ran_on = pthread_self();
	if (t->sleep_us)
		usleep((useconds_t)t->sleep_us);
}

static void done(struct vgpu_job *job)
{
	struct tjob *t = (struct tjob *)job;

	t->done_on_loop = pthread_equal(pthread_self(), t->loop_thread);
	t->order[(*t->n_done)++] = (int)t->job.slot;
	if (t->follow_up)
		vgpu_workers_submit(t->w, &t->follow_up->job);
}

static void wait_done(struct vgpu_loop *loop, int *n_done, int want)
{
	uint64_t end = vgpu_now_ns() + 10000000000ull;

	while (*n_done < want && vgpu_now_ns() < end)
		vgpu_loop_run_once(loop, 50);
	assert_int_equal(*n_done, want);
}

static void jobs_run_and_finish_on_loop(void **state)
{
	struct vgpu_loop *loop;
	struct vgpu_workers *w;
	struct tjob jobs[8];
	int order[16], n_done = 0;

	(void)state;
	assert_int_equal(vgpu_loop_new(&loop), VGPU_OK);
	assert_int_equal(vgpu_workers_new(loop, 2, 4, &w), VGPU_OK);
	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct tjob){ .job = { .run = run, .done = done, .slot = (uint32_t)(i % 4) },
					 .loop_thread = pthread_self(), .order = order,
					 .n_done = &n_done, .w = w };
		vgpu_workers_submit(w, &jobs[i].job);
	}
	assert_true(vgpu_workers_pending(w) > 0);
	wait_done(loop, &n_done, 8);
	assert_int_equal(vgpu_workers_pending(w), 0);
	for (int i = 0; i < 8; i++) {
		assert_true(jobs[i].done_on_loop);
		assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
	}
	vgpu_workers_free(w);
	vgpu_loop_free(loop);
}

static void round_robin_between_vms(void **state)
{
	struct vgpu_loop *loop;
	struct vgpu_workers *w;
	struct tjob block, jobs[7];
	int order[16], n_done = 0;

	(void)state;
	assert_int_equal(vgpu_loop_new(&loop), VGPU_OK);
	assert_int_equal(vgpu_workers_new(loop, 1, 4, &w), VGPU_OK);
	/* One worker, held by a slow job while the others queue: VM 0 queues
	 * five, VM 1 two after them. VM 1's come second and fourth. */
	block = (struct tjob){ .job = { .run = run, .done = done, .slot = 3 },
			       .loop_thread = pthread_self(), .order = order, .n_done = &n_done,
			       .sleep_us = 200000 };
	vgpu_workers_submit(w, &block.job);
	usleep(50000);
	for (int i = 0; i < 7; i++) {
		jobs[i] = (struct tjob){ .job = { .run = run, .done = done, .slot = i < 5 ? 0u : 1u },
					 .loop_thread = pthread_self(), .order = order,
					 .n_done = &n_done };
		vgpu_workers_submit(w, &jobs[i].job);
	}
	wait_done(loop, &n_done, 8);
	int want[8] = { 3, 0, 1, 0, 1, 0, 0, 0 };
	for (int i = 0; i < 8; i++)
		assert_int_equal(order[i], want[i]);
	vgpu_workers_free(w);
	vgpu_loop_free(loop);
}

static void follow_up_runs_at_shutdown(void **state)
{
	struct vgpu_loop *loop;
	struct vgpu_workers *w;
	struct tjob first, second;
	int order[4], n_done = 0;

	(void)state;
	assert_int_equal(vgpu_loop_new(&loop), VGPU_OK);
	assert_int_equal(vgpu_workers_new(loop, 1, 2, &w), VGPU_OK);
	second = (struct tjob){ .job = { .run = run, .done = done, .slot = 1 },
				.loop_thread = pthread_self(), .order = order, .n_done = &n_done };
	first = (struct tjob){ .job = { .run = run, .done = done, .slot = 0 },
			       .loop_thread = pthread_self(), .order = order, .n_done = &n_done,
			       .w = w, .follow_up = &second, .sleep_us = 20000 };
	vgpu_workers_submit(w, &first.job);
	/* No loop round: the pool's shutdown delivers first, whose done()
	 * submits second, which must still run and finish. */
	vgpu_workers_free(w);
	assert_int_equal(n_done, 2);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
	assert_true(second.done_on_loop);
	vgpu_loop_free(loop);
}

static int fired;

static void on_ready(void *ctx, uint32_t events)
{
	(void)ctx;
	(void)events;
	fired++;
}

static void pause_rests_a_ready_fd(void **state)
{
	struct vgpu_loop *loop;
	int efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* always readable */
	struct vgpu_loop_watch wt = { .fd = efd, .fn = on_ready };

	(void)state;
	assert_int_equal(vgpu_loop_new(&loop), VGPU_OK);
	assert_int_equal(vgpu_loop_add(loop, &wt, EPOLLIN), VGPU_OK);
	fired = 0;
	vgpu_loop_run_once(loop, 0);
	assert_int_equal(fired, 1);
	vgpu_loop_pause(loop, &wt, EPOLLIN, 300);
	uint64_t t0 = vgpu_now_ns();
	while (vgpu_now_ns() - t0 < 200000000ull) /* 200 ms: not yet due */
		vgpu_loop_run_once(loop, 10);
	assert_int_equal(fired, 1);
	while (fired == 1 && vgpu_now_ns() - t0 < 2000000000ull)
		vgpu_loop_run_once(loop, 1000); /* the pause shortens this wait */
	assert_int_equal(fired, 2);
	assert_true(vgpu_now_ns() - t0 < 1000000000ull);
	/* Removing a paused watch forgets it. */
	vgpu_loop_pause(loop, &wt, EPOLLIN, 10);
	vgpu_loop_remove(loop, &wt);
	usleep(20000);
	vgpu_loop_run_once(loop, 0);
	assert_int_equal(fired, 2);
	vgpu_loop_free(loop);
	close(efd);
}

/* A callback that removes many watches in one round (a registry reload
 * dropping VMs): an edge-triggered watch ready in the same round must still
 * fire (it would never fire again if the round were cut short). */
#define MANY 150
static struct vgpu_loop *many_loop;
static struct vgpu_loop_watch many_w[MANY];
static int edge_fired;

static void remove_many(void *ctx, uint32_t events)
{
	(void)ctx;
	(void)events;
	for (int i = 0; i < MANY; i++)
		vgpu_loop_remove(many_loop, &many_w[i]);
}

static void on_edge(void *ctx, uint32_t events)
{
	(void)ctx;
	(void)events;
	edge_fired++;
}

static void many_removals_keep_an_edge(void **state)
{
	int remover = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC), edge = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int quiet[MANY];
	struct vgpu_loop_watch wr = { .fd = remover, .fn = remove_many };
	struct vgpu_loop_watch we = { .fd = edge, .fn = on_edge };
	uint64_t one = 1;

	(void)state;
	assert_int_equal(vgpu_loop_new(&many_loop), VGPU_OK);
	for (int i = 0; i < MANY; i++) {
		quiet[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		many_w[i] = (struct vgpu_loop_watch){ .fd = quiet[i], .fn = on_edge };
		assert_int_equal(vgpu_loop_add(many_loop, &many_w[i], EPOLLIN), VGPU_OK);
	}
	/* The remover is ready first, the edge after it: one round, in order. */
	assert_int_equal(vgpu_loop_add(many_loop, &wr, EPOLLIN), VGPU_OK);
	assert_int_equal(vgpu_loop_add(many_loop, &we, EPOLLIN | EPOLLET), VGPU_OK);
	assert_int_equal(write(edge, &one, sizeof(one)), sizeof(one));
	edge_fired = 0;
	for (int i = 0; i < 5; i++)
		vgpu_loop_run_once(many_loop, 10);
	assert_int_equal(edge_fired, 1);
	vgpu_loop_remove(many_loop, &wr);
	vgpu_loop_remove(many_loop, &we);
	vgpu_loop_free(many_loop);
	for (int i = 0; i < MANY; i++)
		close(quiet[i]);
	close(remover);
	close(edge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_run_and_finish_on_loop),
		cmocka_unit_test(round_robin_between_vms),
		cmocka_unit_test(follow_up_runs_at_shutdown),
		cmocka_unit_test(pause_rests_a_ready_fd),
		cmocka_unit_test(many_removals_keep_an_edge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
