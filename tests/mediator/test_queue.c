/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c - the mediator's queue, one thread at a time except where a
 * popper must be woken: priority order across VMs' levels, fair turns
 * between VMs of a level (FIFO within a VM), per-VM and total caps
 * (VGPU_BUSY, queue and item untouched, freed by pops), close (wakes a
 * blocked popper, refuses pushes, still drains), a push waking nobody until
 * vgpu_queue_wake(), pop timeouts, work held back by a rate limit (waited
 * for; a raised limit wakes the popper), a live priority change moving
 * queued work, done() teaching the estimate, memory quotas (held, refused,
 * released by done(), other VMs unaffected), drain_vm and bad arguments.
 * The policy itself is tested in test_sched_sim.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"
#include "vgpu_protocol.h"
#include "vgpu_error.h"
#include "vgpu_clock.h"

struct tagged {
	struct vgpu_queue_item item; /* first: a popped item is a struct tagged */
	int id;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* An item of VM @vm_slot: a 1000-element vector_add. */
static void init(struct tagged *t, int id, uint32_t vm_slot)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->item.sched.vm_slot = vm_slot;
	t->item.op = VGPU_OP_VECTOR_ADD;
	t->item.units = 1000;
}

static int pop_id(struct vgpu_queue *q)
{
	struct vgpu_queue_item *it = vgpu_queue_pop(q, 0, 0);

	return it ? ((struct tagged *)it)->id : -1;
}

/* Pools 0 and 1, equal; VM i in pool i % 2 at level @levels[i]; the
 * scheduler's parameters @prm. */
static struct vgpu_queue *queue_with(uint32_t max_vms, uint32_t per_vm, uint32_t total,
				     const int *levels, const struct vgpu_sched_params *prm)
{
	struct vgpu_queue *q = NULL;

	assert_int_equal(vgpu_queue_new(max_vms, 2, 1, per_vm, total, prm, &q), VGPU_OK);
	assert_non_null(q);
	assert_int_equal(vgpu_queue_set_pool(q, 0, 1, 1000, 1), VGPU_OK);
	assert_int_equal(vgpu_queue_set_pool(q, 1, 1, 1000, 1), VGPU_OK);
	for (uint32_t i = 0; i < max_vms; i++)
		assert_int_equal(vgpu_queue_set_vm(q, i, i % 2, levels ? levels[i] : 0, 1, 0), VGPU_OK);
	return q;
}

/* The same with nothing held back by running work: these tests pop
 * without done() (in_flight_budget and guard test what running work
 * holds back). */
static struct vgpu_queue *new_queue(uint32_t max_vms, uint32_t per_vm, uint32_t total,
				    const int *levels)
{
	struct vgpu_sched_params prm;

	vgpu_sched_params_default(&prm);
	prm.inflight_ns = 0;
	prm.guard_ns = 0;
	return queue_with(max_vms, per_vm, total, levels, &prm);
}

/* VMs 0..2 low, medium, high (pools 0, 1, 0); VM 3 high in pool 1. */
static const int LEVELS4[4] = { 0, 1, 2, 2 };

static void priority_order(void **state)
{
	static const int vm[8] = { 0, 1, 2, 3, 0, 1, 2, 3 };
	/* High first (VMs 2 and 3 in turns), then medium, then low; each
	 * VM's own work in order. */
	static const int expect[8] = { 2, 3, 6, 7, 1, 5, 0, 4 };
	struct vgpu_queue *q = new_queue(4, 16, 16, LEVELS4);
	struct tagged t[8];
	uint64_t before = vgpu_now_ns();
	int i;
	(void)state;

	for (i = 0; i < 8; i++) {
		init(&t[i], i, (uint32_t)vm[i]);
		t[i].item.priority = LEVELS4[vm[i]];
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
		assert_true(t[i].item.sched.enqueued_ns >= before);
		assert_true(t[i].item.sched.cost_ns >= VGPU_COST_MIN_NS);
	}
	assert_int_equal(vgpu_queue_depth(q, -1), 8);
	assert_int_equal(vgpu_queue_depth(q, 0), 2);
	assert_int_equal(vgpu_queue_depth(q, 1), 2);
	assert_int_equal(vgpu_queue_depth(q, 2), 4);
	for (i = 0; i < 8; i++) {
		struct tagged *it = (struct tagged *)vgpu_queue_pop(q, 0, 0);

		assert_non_null(it);
		assert_int_equal(it->id, expect[i]);
		/* Its time queued ends at the pick's stamp (dispatch.c). */
		assert_true(it->item.sched.picked_ns >= it->item.sched.enqueued_ns);
		assert_true(it->item.sched.picked_ns <= vgpu_now_ns());
	}
	assert_int_equal(pop_id(q), -1);
	assert_int_equal(vgpu_queue_depth(q, -1), 0);

	/* A later high-priority push overtakes queued low-priority work. */
	init(&t[0], 100, 0);
	init(&t[1], 101, 0);
	init(&t[2], 102, 2);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	assert_int_equal(pop_id(q), 100);
	assert_int_equal(vgpu_queue_push(q, &t[2].item), VGPU_OK);
	assert_int_equal(pop_id(q), 102);
	assert_int_equal(pop_id(q), 101);
	vgpu_queue_free(q);
}

/* Two VMs of one pool and level take turns (equal works, equal weights);
 * each VM's work stays in order, pushes and pops interleaved. */
static void turns_within_level(void **state)
{
	static const int levels[4] = { 1, 1, 1, 1 };
	struct vgpu_queue *q = new_queue(4, 100, 100, levels);
	struct tagged a[20], b[20];
	int i;
	(void)state;

	for (i = 0; i < 10; i++) {
		init(&a[i], i, 0);
		assert_int_equal(vgpu_queue_push(q, &a[i].item), VGPU_OK);
	}
	for (i = 0; i < 10; i++) {
		init(&b[i], 100 + i, 2);
		assert_int_equal(vgpu_queue_push(q, &b[i].item), VGPU_OK);
	}
	for (i = 0; i < 10; i++) {
		assert_int_equal(pop_id(q), i);
		assert_int_equal(pop_id(q), 100 + i);
		/* Pushed again behind the rest: their turn comes after. */
		assert_int_equal(vgpu_queue_push(q, &a[i].item), VGPU_OK);
		assert_null(a[i].item.sched.next);
	}
	for (i = 0; i < 10; i++)
		assert_int_equal(pop_id(q), i);
	assert_int_equal(pop_id(q), -1);
	vgpu_queue_free(q);
}

/* A refused push leaves the item as it was. */
static void assert_refused(struct vgpu_queue *q, struct tagged *t, int expect)
{
	struct vgpu_sched_item *sentinel = (struct vgpu_sched_item *)t;

	t->item.sched.next = sentinel;
	t->item.sched.enqueued_ns = 12345;
	assert_int_equal(vgpu_queue_push(q, &t->item), expect);
	assert_ptr_equal(t->item.sched.next, sentinel);
	assert_int_equal(t->item.sched.enqueued_ns, 12345);
	t->item.sched.next = NULL;
}

static void per_vm_cap(void **state)
{
	struct vgpu_queue *q = new_queue(3, 3, 100, NULL);
	struct tagged a[4], b[3];
	int i;
	(void)state;

	for (i = 0; i < 3; i++) {
		init(&a[i], i, 1);
		assert_int_equal(vgpu_queue_push(q, &a[i].item), VGPU_OK);
	}
	init(&a[3], 3, 1);
	assert_refused(q, &a[3], VGPU_BUSY);
	assert_int_equal(vgpu_queue_room(q, 1), VGPU_BUSY);
	assert_int_equal(vgpu_queue_depth(q, -1), 3);
	/* Another VM is not held back by VM 1's cap. */
	assert_int_equal(vgpu_queue_room(q, 2), VGPU_OK);
	for (i = 0; i < 3; i++) {
		init(&b[i], 10 + i, 2);
		assert_int_equal(vgpu_queue_push(q, &b[i].item), VGPU_OK);
	}
	/* A pop frees one place of VM 1. */
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(vgpu_queue_room(q, 1), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &a[3].item), VGPU_OK);
	vgpu_queue_free(q);
}

static void total_cap(void **state)
{
	static const int levels[8] = { 0, 1, 2, 2, 0, 1, 2, 2 };
	struct vgpu_queue *q = new_queue(8, 10, 5, levels);
	struct tagged t[7];
	int i;
	(void)state;

	for (i = 0; i < 5; i++) {
		init(&t[i], i, (uint32_t)i % 2);
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	init(&t[5], 5, 2); /* a fresh VM, high priority: still refused */
	assert_refused(q, &t[5], VGPU_BUSY);
	assert_int_equal(vgpu_queue_depth(q, -1), 5);
	assert_int_equal(vgpu_queue_depth(q, 2), 0);
	assert_int_equal(pop_id(q), 1); /* VM 1, medium, goes first */
	assert_int_equal(vgpu_queue_push(q, &t[5].item), VGPU_OK);
	init(&t[6], 6, 6);
	assert_refused(q, &t[6], VGPU_BUSY);
	assert_int_equal(pop_id(q), 5);
	vgpu_queue_free(q);
}

struct popper {
	struct vgpu_queue *q;
	int timeout_ms;
	struct vgpu_queue_item *got;
	uint64_t elapsed_ns;
};

static void *popper_main(void *arg)
{
	struct popper *p = arg;
	uint64_t start = vgpu_now_ns();

	p->got = vgpu_queue_pop(p->q, 0, p->timeout_ms);
	p->elapsed_ns = vgpu_now_ns() - start;
	return NULL;
}

static void close_wakes_popper(void **state)
{
	struct vgpu_queue *q = new_queue(2, 4, 4, NULL);
	struct popper p = { .q = q, .timeout_ms = -1 };
	struct tagged t[2];
	pthread_t th;
	(void)state;

	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(50);
	vgpu_queue_close(q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_null(p.got);

	init(&t[0], 0, 0);
	assert_refused(q, &t[0], VGPU_SHUTDOWN);
	assert_int_equal(vgpu_queue_room(q, 0), VGPU_SHUTDOWN);
	assert_int_equal(vgpu_queue_depth(q, -1), 0);
	assert_null(vgpu_queue_pop(q, 0, -1)); /* closed and empty: at once */
	vgpu_queue_close(q);                /* twice is harmless */
	vgpu_queue_free(q);

	/* Closed with work queued: the work is still handed out, then NULL. */
	q = new_queue(2, 4, 4, LEVELS4);
	init(&t[0], 0, 0);
	init(&t[1], 1, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	vgpu_queue_close(q);
	assert_int_equal(pop_id(q), 1);
	assert_ptr_equal(vgpu_queue_pop(q, 0, -1), &t[0].item);
	assert_null(vgpu_queue_pop(q, 0, -1));
	vgpu_queue_free(q);
}

/* A push leaves a sleeping popper asleep (it finds the item only at its
 * timeout); vgpu_queue_wake() wakes it. */
static void push_then_wake(void **state)
{
	struct vgpu_queue *q = new_queue(2, 4, 4, NULL);
	struct popper p = { .q = q, .timeout_ms = 400 };
	struct tagged t[2];
	pthread_t th;
	(void)state;

	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(30);
	init(&t[0], 1, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[0].item);
	assert_true(p.elapsed_ns >= 390000000ull);

	p = (struct popper){ .q = q, .timeout_ms = 10000 };
	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(30);
	init(&t[1], 2, 1);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	vgpu_queue_wake(q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[1].item);
	assert_true(p.elapsed_ns < 5000000000ull);
	vgpu_queue_free(q);
}

static void pop_timeout(void **state)
{
	struct vgpu_queue *q = new_queue(1, 1, 1, NULL);
	uint64_t start, elapsed;
	(void)state;

	start = vgpu_now_ns();
	assert_null(vgpu_queue_pop(q, 0, 0));
	assert_true(vgpu_now_ns() - start < 50000000ull);

	start = vgpu_now_ns();
	assert_null(vgpu_queue_pop(q, 0, 50));
	elapsed = vgpu_now_ns() - start;
	assert_true(elapsed >= 50000000ull);
	assert_true(elapsed < 1000000000ull); /* generous for sanitizer builds */
	vgpu_queue_free(q);
}

/* Work held back by a rate limit: pop waits for the bucket; a raised
 * limit wakes a waiting popper at once. */
static void held_back(void **state)
{
	struct vgpu_queue *q = new_queue(1, 4, 4, NULL);
	struct popper p = { .q = q, .timeout_ms = -1 };
	struct tagged t[3];
	uint64_t start, elapsed;
	pthread_t th;
	(void)state;

	/* 100 GPU-ms per second (10 ms of burst); works estimated 20 ms each
	 * (5 M elements at 4 ps). */
	assert_int_equal(vgpu_queue_set_vm(q, 0, 0, 0, 1, 100000000ull), VGPU_OK);
	for (int i = 0; i < 3; i++) {
		init(&t[i], i, 0);
		t[i].item.units = 5000000;
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	assert_int_equal(pop_id(q), 0);  /* the burst */
	assert_int_equal(pop_id(q), -1); /* 10 ms owed: 100 ms to pay back */
	start = vgpu_now_ns();
	assert_null(vgpu_queue_pop(q, 0, 30));
	assert_true(vgpu_now_ns() - start >= 30000000ull);
	assert_int_equal(((struct tagged *)vgpu_queue_pop(q, 0, -1))->id, 1);
	elapsed = vgpu_now_ns() - start;
	print_message("  held back %.1f ms (bucket: 100 ms)\n", elapsed / 1e6);
	assert_true(elapsed >= 60000000ull && elapsed < 2000000000ull);

	/* Waiting for the next (another 200 ms): lifting the limit wakes it. */
	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(20);
	assert_int_equal(vgpu_queue_set_vm(q, 0, 0, 0, 1, 0), VGPU_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[2].item);
	print_message("  woken after %.1f ms by the raised limit\n", p.elapsed_ns / 1e6);
	assert_true(p.elapsed_ns < 150000000ull);
	vgpu_queue_free(q);
}

/* A VM's new priority applies to its queued work; done() charges the
 * measured time and teaches the op's estimate. */
static void live_change_and_done(void **state)
{
	static const int levels[2] = { 0, 2 };
	struct vgpu_queue *q = new_queue(2, 4, 8, levels);
	struct vgpu_queue_item *it;
	struct vgpu_sched_usage u;
	struct tagged t[4];
	uint64_t first;
	(void)state;

	init(&t[0], 0, 0);
	init(&t[1], 1, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	assert_int_equal(vgpu_queue_set_vm(q, 0, 0, 2, 1, 0), VGPU_OK);
	assert_int_equal(vgpu_queue_set_vm(q, 1, 1, 0, 1, 0), VGPU_OK);
	assert_int_equal(vgpu_queue_depth(q, 2), 1);
	assert_int_equal(pop_id(q), 0);
	it = vgpu_queue_pop(q, 0, 0);
	assert_ptr_equal(it, &t[1].item);
	first = it->sched.cost_ns;
	for (int i = 0; i < 30; i++)
		vgpu_queue_done(q, it, 5000000); /* 5 ms each time */
	vgpu_queue_usage(q, 1, 1, 0, &u);
	assert_int_equal(u.vm_ns, 30 * 5000000ull);
	assert_int_equal(u.gpu_ns, 30 * 5000000ull);
	init(&t[2], 2, 1);
	assert_int_equal(vgpu_queue_push(q, &t[2].item), VGPU_OK);
	print_message("  estimate of a 1000-element vector_add: %llu ns, after 30 of 5 ms: %llu ns\n",
		      (unsigned long long)first, (unsigned long long)t[2].item.sched.cost_ns);
	assert_true(t[2].item.sched.cost_ns > 4900000 && t[2].item.sched.cost_ns <= 5000000);
	vgpu_queue_free(q);
}

/* A memory quota: a VM runs works while their device memory fits it,
 * waits for its own to finish beyond that (also once closed), and a work
 * larger than the quota is refused; another VM is not held back. */
static void memory_quota(void **state)
{
	struct vgpu_queue *q = new_queue(2, 8, 16, NULL);
	struct popper p = { .q = q, .timeout_ms = -1 };
	struct vgpu_queue_item *got[3];
	struct vgpu_sched_usage u;
	struct tagged t[5], other, big;
	pthread_t th;
	(void)state;

	assert_int_equal(vgpu_queue_set_vm_quota(q, 0, 3u << 20), VGPU_OK);
	for (int i = 0; i < 4; i++) {
		init(&t[i], i, 0);
		t[i].item.sched.mem_bytes = 1u << 20;
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	init(&big, 99, 0);
	big.item.sched.mem_bytes = (3u << 20) + 1;
	assert_refused(q, &big, VGPU_NO_MEMORY);
	for (int i = 0; i < 3; i++) {
		got[i] = vgpu_queue_pop(q, 0, 0);
		assert_ptr_equal(got[i], &t[i].item);
	}
	vgpu_queue_usage(q, 0, UINT32_MAX, UINT32_MAX, &u);
	assert_int_equal(u.mem_held, 3u << 20);
	assert_int_equal(u.mem_quota, 3u << 20);
	assert_int_equal(pop_id(q), -1); /* the fourth would be 4 MiB */
	init(&other, 50, 1);
	other.item.sched.mem_bytes = 64u << 20;
	assert_int_equal(vgpu_queue_push(q, &other.item), VGPU_OK);
	assert_int_equal(pop_id(q), 50);

	/* Closed: the held work is still handed out once memory frees. */
	vgpu_queue_close(q);
	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(30);
	vgpu_queue_done(q, got[0], 1000);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[3].item);
	assert_null(vgpu_queue_pop(q, 0, -1));

	/* A quota lowered below what is queued: the work runs alone. */
	vgpu_queue_done(q, got[1], 1000);
	vgpu_queue_done(q, got[2], 1000);
	vgpu_queue_done(q, p.got, 1000);
	vgpu_queue_free(q);
	q = new_queue(1, 8, 8, NULL);
	init(&t[4], 4, 0);
	t[4].item.sched.mem_bytes = 8u << 20;
	assert_int_equal(vgpu_queue_push(q, &t[4].item), VGPU_OK);
	assert_int_equal(vgpu_queue_set_vm_quota(q, 0, 1u << 20), VGPU_OK);
	assert_int_equal(pop_id(q), 4);
	vgpu_queue_free(q);
}

/* The in-flight budget: low-priority work goes while the GPU's estimated
 * time in flight is under it (one always), high priority above everything
 * running goes anyway, and a done() lets the rest go on. */
static void in_flight_budget(void **state)
{
	static const int levels[2] = { 0, 2 };
	struct vgpu_sched_params prm;
	struct vgpu_queue *q = NULL;
	struct vgpu_queue_item *got[2];
	struct tagged lo[3], hi;
	(void)state;

	vgpu_sched_params_default(&prm);
	prm.inflight_ns = 1000000; /* 1 ms */
	prm.guard_ns = 0;          /* guard() tests it */
	q = queue_with(2, 8, 8, levels, &prm);
	for (int i = 0; i < 3; i++) {
		init(&lo[i], i, 0);
		lo[i].item.units = 200000; /* 0.8 ms each at 4 ps */
		assert_int_equal(vgpu_queue_push(q, &lo[i].item), VGPU_OK);
	}
	got[0] = vgpu_queue_pop(q, 0, 0);
	got[1] = vgpu_queue_pop(q, 0, 0);
	assert_ptr_equal(got[0], &lo[0].item);
	assert_ptr_equal(got[1], &lo[1].item); /* 0.8 ms in flight: under 1 ms */
	assert_int_equal(pop_id(q), -1);       /* 1.6 ms: the third waits */
	init(&hi, 9, 1);
	assert_int_equal(vgpu_queue_push(q, &hi.item), VGPU_OK);
	assert_int_equal(pop_id(q), 9); /* above everything running */
	vgpu_queue_done(q, got[0], 800000);
	assert_int_equal(pop_id(q), 2); /* 0.8 ms and high's 4 us: under 1 ms */
	vgpu_queue_free(q);
}

/* The guard: while high priority is active on the GPU (running, or given
 * work within guard_ns), the levels below it get one work there at most;
 * once it has been idle guard_ns, the in-flight budget alone applies. */
static void guard(void **state)
{
	static const int levels[2] = { 0, 2 };
	struct vgpu_sched_params prm;
	struct vgpu_queue *q = NULL;
	struct vgpu_queue_item *lo0, *hi0, *lo1;
	struct tagged lo[3], hi;
	uint64_t t0;
	(void)state;

	vgpu_sched_params_default(&prm);
	prm.inflight_ns = 0;        /* the budget would admit every work */
	prm.inflight_min = 4;
	prm.guard_ns = 50000000;    /* 50 ms, far above this test's own delays */
	q = queue_with(2, 8, 8, levels, &prm);
	for (int i = 0; i < 3; i++) {
		init(&lo[i], i, 0);
		assert_int_equal(vgpu_queue_push(q, &lo[i].item), VGPU_OK);
	}
	init(&hi, 9, 1);
	assert_int_equal(vgpu_queue_push(q, &hi.item), VGPU_OK);
	hi0 = vgpu_queue_pop(q, 0, 0);
	assert_ptr_equal(hi0, &hi.item);
	lo0 = vgpu_queue_pop(q, 0, 0);
	assert_ptr_equal(lo0, &lo[0].item); /* high runs: one low work may */
	assert_null(vgpu_queue_pop(q, 0, 0)); /* a second may not */
	t0 = vgpu_now_ns();
	vgpu_queue_done(q, hi0, 1000);
	assert_null(vgpu_queue_pop(q, 0, 0)); /* high done, but picked < 50 ms ago */
	vgpu_queue_done(q, lo0, 1000);
	lo1 = vgpu_queue_pop(q, 0, 0);
	assert_ptr_equal(lo1, &lo[1].item); /* none below runs: one may */
	/* After the guard time the budget alone applies: the third runs
	 * beside the second. The pop waits for a done() or a change; the
	 * guard's end is neither, so ask again after it. */
	while (vgpu_now_ns() - t0 < prm.guard_ns + 1000000)
		usleep(5000);
	assert_int_equal(pop_id(q), 2);
	vgpu_queue_done(q, lo1, 1000);
	vgpu_queue_free(q);
}

static void drain_vm(void **state)
{
	static const int vm[8] = { 0, 1, 1, 0, 1, 2, 1, 2 };
	static const int levels[3] = { 2, 1, 0 };
	struct vgpu_queue *q = new_queue(3, 4, 20, levels);
	struct vgpu_queue_item *list = (struct vgpu_queue_item *)&list;
	struct tagged t[8], extra[4];
	int i;
	(void)state;

	for (i = 0; i < 8; i++) {
		init(&t[i], i, (uint32_t)vm[i]);
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	init(&extra[0], 99, 1);
	assert_refused(q, &extra[0], VGPU_BUSY); /* VM 1 at its cap of 4 */

	assert_int_equal(vgpu_queue_drain_vm(q, 1, &list), 4);
	for (i = 0; i < 4; i++) {
		static const int drained[4] = { 1, 2, 4, 6 };

		assert_non_null(list);
		assert_int_equal(((struct tagged *)list)->id, drained[i]);
		list = (struct vgpu_queue_item *)list->sched.next;
	}
	assert_null(list);
	assert_int_equal(vgpu_queue_depth(q, -1), 4);
	assert_int_equal(vgpu_queue_depth(q, 2), 2);
	assert_int_equal(vgpu_queue_depth(q, 1), 0);
	assert_int_equal(vgpu_queue_depth(q, 0), 2);

	/* Nothing left of VM 1: an empty list. Its cap is free again, and
	 * pushes after a drain land behind nothing. */
	list = (struct vgpu_queue_item *)&list;
	assert_int_equal(vgpu_queue_drain_vm(q, 1, &list), 0);
	assert_null(list);
	for (i = 0; i < 4; i++) {
		init(&extra[i], 100 + i, 1);
		assert_int_equal(vgpu_queue_push(q, &extra[i].item), VGPU_OK);
	}
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(pop_id(q), 3);
	for (i = 0; i < 4; i++)
		assert_int_equal(pop_id(q), 100 + i);
	assert_int_equal(pop_id(q), 5);
	assert_int_equal(pop_id(q), 7);
	assert_int_equal(pop_id(q), -1);
	vgpu_queue_free(q);
}

static void bad_arguments(void **state)
{
	struct vgpu_queue *q = (struct vgpu_queue *)&q, *keep;
	struct vgpu_queue_item *list = NULL;
	struct vgpu_sched_params prm;
	struct tagged t;
	(void)state;

	vgpu_sched_params_default(&prm);
	assert_int_equal(vgpu_queue_new(0, 1, 1, 1, 1, &prm, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 0, 1, 1, 1, &prm, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 0, 1, 1, &prm, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 1, 0, 1, &prm, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 1, 1, 0, &prm, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 1, 1, 1, NULL, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 1, 1, 1, &prm, NULL), VGPU_INVALID_PARAM);
	assert_ptr_equal(q, (struct vgpu_queue *)&q); /* untouched on failure */
	vgpu_queue_free(NULL);

	keep = new_queue(2, 2, 2, NULL);
	init(&t, 0, 2);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	init(&t, 0, UINT32_MAX);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_remove_vm(keep, 1), VGPU_OK);
	init(&t, 0, 1); /* a VM removed */
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_set_vm(keep, 1, 2, 0, 1, 0), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_set_pool(keep, 0, 0, 1000, 1), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_room(keep, 2), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_push(keep, NULL), VGPU_INVALID_PARAM);
	init(&t, 0, 0);
	assert_int_equal(vgpu_queue_push(NULL, &t.item), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_depth(keep, -1), 0);

	assert_int_equal(vgpu_queue_push(keep, &t.item), VGPU_OK);
	assert_int_equal(vgpu_queue_remove_vm(keep, 0), VGPU_BUSY);
	assert_int_equal(vgpu_queue_depth(keep, 3), 0);
	assert_int_equal(vgpu_queue_depth(keep, -2), 0);
	assert_int_equal(vgpu_queue_depth(NULL, -1), 0);
	assert_int_equal(vgpu_queue_drain_vm(keep, 2, &list), 0);
	assert_null(list);
	assert_int_equal(vgpu_queue_drain_vm(keep, 0, NULL), 0);
	assert_int_equal(vgpu_queue_drain_vm(NULL, 0, &list), 0);
	assert_null(vgpu_queue_pop(NULL, 0, 0));
	assert_null(vgpu_queue_pop(keep, 1, 0)); /* no GPU 1 */
	vgpu_queue_close(NULL);
	assert_int_equal(vgpu_queue_depth(keep, -1), 1);
	assert_ptr_equal(vgpu_queue_pop(keep, 0, 0), &t.item);
	vgpu_queue_free(keep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(priority_order),
		cmocka_unit_test(turns_within_level),
		cmocka_unit_test(per_vm_cap),
		cmocka_unit_test(total_cap),
		cmocka_unit_test(close_wakes_popper),
		cmocka_unit_test(push_then_wake),
		cmocka_unit_test(pop_timeout),
		cmocka_unit_test(held_back),
		cmocka_unit_test(live_change_and_done),
		cmocka_unit_test(memory_quota),
		cmocka_unit_test(in_flight_budget),
		cmocka_unit_test(guard),
		cmocka_unit_test(drain_vm),
		cmocka_unit_test(bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
