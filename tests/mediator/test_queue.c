/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c - the mediator's priority queue, one thread at a time except
 * where a popper must be woken: priority order across levels, FIFO within a
 * level, per-VM and total caps (VGPU_BUSY, queue and item untouched, freed by
 * pops), close (wakes a blocked popper, refuses pushes, still drains), a push
 * waking nobody until vgpu_queue_wake(), pop
 * timeouts, drain_vm and bad arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "queue.h"
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

static void init(struct tagged *t, int id, int priority, uint32_t vm_slot)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->item.priority = priority;
	t->item.vm_slot = vm_slot;
}

static int pop_id(struct vgpu_queue *q)
{
	struct vgpu_queue_item *it = vgpu_queue_pop(q, 0);

	return it ? ((struct tagged *)it)->id : -1;
}

static struct vgpu_queue *new_queue(uint32_t max_vms, uint32_t per_vm, uint32_t total)
{
	struct vgpu_queue *q = NULL;

	assert_int_equal(vgpu_queue_new(max_vms, per_vm, total, &q), VGPU_OK);
	assert_non_null(q);
	return q;
}

static void priority_order(void **state)
{
	static const int prio[9] = { 0, 1, 2, 0, 2, 1, 1, 0, 2 };
	static const int expect[9] = { 2, 4, 8, 1, 5, 6, 0, 3, 7 };
	struct vgpu_queue *q = new_queue(4, 16, 16);
	struct tagged t[9];
	uint64_t before = vgpu_now_ns();
	int i;
	(void)state;

	for (i = 0; i < 9; i++) {
		init(&t[i], i, prio[i], (uint32_t)i % 4);
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
		assert_true(t[i].item.enqueued_ns >= before);
		if (i > 0)
			assert_true(t[i].item.enqueued_ns >= t[i - 1].item.enqueued_ns);
	}
	assert_int_equal(vgpu_queue_depth(q, -1), 9);
	assert_int_equal(vgpu_queue_depth(q, 0), 3);
	assert_int_equal(vgpu_queue_depth(q, 1), 3);
	assert_int_equal(vgpu_queue_depth(q, 2), 3);
	for (i = 0; i < 9; i++)
		assert_int_equal(pop_id(q), expect[i]);
	assert_int_equal(pop_id(q), -1);
	assert_int_equal(vgpu_queue_depth(q, -1), 0);

	/* A later high-priority push overtakes queued low-priority work. */
	init(&t[0], 100, 0, 0);
	init(&t[1], 101, 0, 0);
	init(&t[2], 102, 2, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	assert_int_equal(pop_id(q), 100);
	assert_int_equal(vgpu_queue_push(q, &t[2].item), VGPU_OK);
	assert_int_equal(pop_id(q), 102);
	assert_int_equal(pop_id(q), 101);
	vgpu_queue_free(q);
}

static void fifo_within_level(void **state)
{
	struct vgpu_queue *q = new_queue(8, 100, 100);
	struct tagged t[50];
	int i, p;
	(void)state;

	for (p = 0; p < 3; p++) {
		for (i = 0; i < 50; i++) {
			init(&t[i], i, p, (uint32_t)(i * 7) % 8);
			assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
		}
		/* Interleave pops and pushes: the order still holds. */
		for (i = 0; i < 25; i++)
			assert_int_equal(pop_id(q), i);
		for (i = 0; i < 25; i++) {
			assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
			assert_null(t[i].item.next);
		}
		for (i = 25; i < 50; i++)
			assert_int_equal(pop_id(q), i);
		for (i = 0; i < 25; i++)
			assert_int_equal(pop_id(q), i);
		assert_int_equal(vgpu_queue_depth(q, p), 0);
	}
	vgpu_queue_free(q);
}

/* A refused push leaves the item as it was. */
static void assert_refused(struct vgpu_queue *q, struct tagged *t, int expect)
{
	struct vgpu_queue_item *sentinel = (struct vgpu_queue_item *)t;

	t->item.next = sentinel;
	t->item.enqueued_ns = 12345;
	assert_int_equal(vgpu_queue_push(q, &t->item), expect);
	assert_ptr_equal(t->item.next, sentinel);
	assert_int_equal(t->item.enqueued_ns, 12345);
	t->item.next = NULL;
}

static void per_vm_cap(void **state)
{
	struct vgpu_queue *q = new_queue(3, 3, 100);
	struct tagged a[4], b[3];
	int i;
	(void)state;

	for (i = 0; i < 3; i++) {
		init(&a[i], i, i % 3, 1);
		assert_int_equal(vgpu_queue_push(q, &a[i].item), VGPU_OK);
	}
	/* The fourth of VM 1 is refused at any priority; the queue is unchanged. */
	for (i = 0; i < 3; i++) {
		init(&a[3], 3, i, 1);
		assert_refused(q, &a[3], VGPU_BUSY);
		assert_int_equal(vgpu_queue_depth(q, -1), 3);
		assert_int_equal(vgpu_queue_depth(q, i), 1);
	}
	/* Other VMs are not affected. */
	for (i = 0; i < 3; i++) {
		init(&b[i], 10 + i, 0, 2);
		assert_int_equal(vgpu_queue_push(q, &b[i].item), VGPU_OK);
	}
	/* A pop of VM 1's item frees one place for VM 1. */
	assert_int_equal(pop_id(q), 2);
	init(&a[3], 3, 2, 1);
	assert_int_equal(vgpu_queue_push(q, &a[3].item), VGPU_OK);
	init(&a[2], 2, 2, 1);
	assert_refused(q, &a[2], VGPU_BUSY);
	/* Order after the refusals: 3 (p2), 1 (p1), 0, 10, 11, 12 (p0). */
	assert_int_equal(pop_id(q), 3);
	assert_int_equal(pop_id(q), 1);
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(pop_id(q), 10);
	assert_int_equal(pop_id(q), 11);
	assert_int_equal(pop_id(q), 12);
	assert_int_equal(pop_id(q), -1);
	vgpu_queue_free(q);
}

static void total_cap(void **state)
{
	struct vgpu_queue *q = new_queue(8, 4, 5);
	struct tagged t[7];
	int i;
	(void)state;

	for (i = 0; i < 5; i++) {
		init(&t[i], i, 1, (uint32_t)i);
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	init(&t[5], 5, 2, 7); /* a fresh VM, high priority: still refused */
	assert_refused(q, &t[5], VGPU_BUSY);
	assert_int_equal(vgpu_queue_depth(q, -1), 5);
	assert_int_equal(vgpu_queue_depth(q, 2), 0);

	assert_int_equal(pop_id(q), 0);
	assert_int_equal(vgpu_queue_push(q, &t[5].item), VGPU_OK);
	init(&t[6], 6, 0, 6);
	assert_refused(q, &t[6], VGPU_BUSY);
	assert_int_equal(pop_id(q), 5);
	for (i = 1; i < 5; i++)
		assert_int_equal(pop_id(q), i);
	assert_int_equal(pop_id(q), -1);
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

	p->got = vgpu_queue_pop(p->q, p->timeout_ms);
	p->elapsed_ns = vgpu_now_ns() - start;
	return NULL;
}

static void close_wakes_popper(void **state)
{
	struct vgpu_queue *q = new_queue(2, 4, 4);
	struct popper p = { .q = q, .timeout_ms = -1 };
	struct tagged t[2];
	pthread_t th;
	(void)state;

	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(50);
	vgpu_queue_close(q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_null(p.got);

	init(&t[0], 0, 1, 0);
	assert_refused(q, &t[0], VGPU_SHUTDOWN);
	assert_int_equal(vgpu_queue_depth(q, -1), 0);
	assert_null(vgpu_queue_pop(q, -1)); /* closed and empty: at once */
	vgpu_queue_close(q);                /* twice is harmless */
	vgpu_queue_free(q);

	/* Closed with work queued: the work is still handed out, then NULL. */
	q = new_queue(2, 4, 4);
	init(&t[0], 0, 0, 0);
	init(&t[1], 1, 2, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	vgpu_queue_close(q);
	assert_int_equal(pop_id(q), 1);
	assert_ptr_equal(vgpu_queue_pop(q, -1), &t[0].item);
	assert_null(vgpu_queue_pop(q, -1));
	vgpu_queue_free(q);
}

/* A push leaves a sleeping popper asleep (it finds the item only at its
 * timeout); vgpu_queue_wake() wakes it. */
static void push_then_wake(void **state)
{
	struct vgpu_queue *q = new_queue(2, 4, 4);
	struct popper p = { .q = q, .timeout_ms = 400 };
	struct tagged t[2];
	pthread_t th;
	(void)state;

	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(30);
	init(&t[0], 1, 0, 1);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[0].item);
	assert_true(p.elapsed_ns >= 390000000ull);

	p = (struct popper){ .q = q, .timeout_ms = 10000 };
	assert_int_equal(pthread_create(&th, NULL, popper_main, &p), 0);
	sleep_ms(30);
	init(&t[1], 2, 0, 1);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	vgpu_queue_wake(q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_ptr_equal(p.got, &t[1].item);
	assert_true(p.elapsed_ns < 5000000000ull);
	vgpu_queue_free(q);
}

static void pop_timeout(void **state)
{
	struct vgpu_queue *q = new_queue(1, 1, 1);
	uint64_t start, elapsed;
	(void)state;

	start = vgpu_now_ns();
	assert_null(vgpu_queue_pop(q, 0));
	assert_true(vgpu_now_ns() - start < 50000000ull);

	start = vgpu_now_ns();
	assert_null(vgpu_queue_pop(q, 50));
	elapsed = vgpu_now_ns() - start;
	assert_true(elapsed >= 50000000ull);
	assert_true(elapsed < 1000000000ull); /* generous for sanitizer builds */
	vgpu_queue_free(q);
}

static void drain_vm(void **state)
{
	/* id: vm, priority */
	static const int vm[10] = { 0, 1, 1, 0, 1, 2, 1, 0, 1, 2 };
	static const int pr[10] = { 0, 0, 2, 1, 1, 2, 0, 2, 2, 0 };
	static const int drained[5] = { 2, 8, 4, 1, 6 };
	struct vgpu_queue *q = new_queue(3, 5, 20);
	struct vgpu_queue_item *list = (struct vgpu_queue_item *)&list;
	struct tagged t[10], extra[5];
	int i;
	(void)state;

	for (i = 0; i < 10; i++) {
		init(&t[i], i, pr[i], (uint32_t)vm[i]);
		assert_int_equal(vgpu_queue_push(q, &t[i].item), VGPU_OK);
	}
	init(&extra[0], 99, 0, 1);
	assert_refused(q, &extra[0], VGPU_BUSY); /* VM 1 at its cap of 5 */

	assert_int_equal(vgpu_queue_drain_vm(q, 1, &list), 5);
	for (i = 0; i < 5; i++) {
		assert_non_null(list);
		assert_int_equal(((struct tagged *)list)->id, drained[i]);
		list = list->next;
	}
	assert_null(list);
	assert_int_equal(vgpu_queue_depth(q, -1), 5);
	assert_int_equal(vgpu_queue_depth(q, 0), 2);
	assert_int_equal(vgpu_queue_depth(q, 1), 1);
	assert_int_equal(vgpu_queue_depth(q, 2), 2);

	/* Nothing left of VM 1: an empty list. Its cap is free again. */
	list = (struct vgpu_queue_item *)&list;
	assert_int_equal(vgpu_queue_drain_vm(q, 1, &list), 0);
	assert_null(list);
	for (i = 0; i < 5; i++) {
		init(&extra[i], 100 + i, 1, 1);
		assert_int_equal(vgpu_queue_push(q, &extra[i].item), VGPU_OK);
	}
	/* The tails are right: pushes after a drain land behind the survivors. */
	assert_int_equal(pop_id(q), 5);
	assert_int_equal(pop_id(q), 7);
	assert_int_equal(pop_id(q), 3);
	for (i = 0; i < 5; i++)
		assert_int_equal(pop_id(q), 100 + i);
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(pop_id(q), 9);
	assert_int_equal(pop_id(q), -1);

	/* Draining the last item of a level empties it cleanly. */
	init(&t[0], 0, 2, 0);
	init(&t[1], 1, 2, 2);
	assert_int_equal(vgpu_queue_push(q, &t[0].item), VGPU_OK);
	assert_int_equal(vgpu_queue_push(q, &t[1].item), VGPU_OK);
	assert_int_equal(vgpu_queue_drain_vm(q, 2, &list), 1);
	assert_ptr_equal(list, &t[1].item);
	assert_null(list->next);
	init(&t[2], 2, 2, 2);
	assert_int_equal(vgpu_queue_push(q, &t[2].item), VGPU_OK);
	assert_int_equal(pop_id(q), 0);
	assert_int_equal(pop_id(q), 2);
	assert_int_equal(pop_id(q), -1);
	vgpu_queue_free(q);
}

static void bad_arguments(void **state)
{
	struct vgpu_queue *q = (struct vgpu_queue *)&q, *keep;
	struct vgpu_queue_item *list = NULL;
	struct tagged t;
	(void)state;

	assert_int_equal(vgpu_queue_new(0, 1, 1, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 0, 1, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 0, &q), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_new(1, 1, 1, NULL), VGPU_INVALID_PARAM);
	assert_ptr_equal(q, (struct vgpu_queue *)&q); /* untouched on failure */
	vgpu_queue_free(NULL);

	keep = new_queue(2, 2, 2);
	init(&t, 0, -1, 0);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	init(&t, 0, 3, 0);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	init(&t, 0, 0, 2);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	init(&t, 0, 0, UINT32_MAX);
	assert_refused(keep, &t, VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_push(keep, NULL), VGPU_INVALID_PARAM);
	init(&t, 0, 0, 0);
	assert_int_equal(vgpu_queue_push(NULL, &t.item), VGPU_INVALID_PARAM);
	assert_int_equal(vgpu_queue_depth(keep, -1), 0);

	assert_int_equal(vgpu_queue_push(keep, &t.item), VGPU_OK);
	assert_int_equal(vgpu_queue_depth(keep, 3), 0);
	assert_int_equal(vgpu_queue_depth(keep, -2), 0);
	assert_int_equal(vgpu_queue_depth(NULL, -1), 0);
	assert_int_equal(vgpu_queue_drain_vm(keep, 2, &list), 0);
	assert_null(list);
	assert_int_equal(vgpu_queue_drain_vm(keep, 0, NULL), 0);
	assert_int_equal(vgpu_queue_drain_vm(NULL, 0, &list), 0);
	assert_null(vgpu_queue_pop(NULL, 0));
	vgpu_queue_close(NULL);
	assert_int_equal(vgpu_queue_depth(keep, -1), 1);
	assert_ptr_equal(vgpu_queue_pop(keep, 0), &t.item);
	vgpu_queue_free(keep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(priority_order),
		cmocka_unit_test(fifo_within_level),
		cmocka_unit_test(per_vm_cap),
		cmocka_unit_test(total_cap),
		cmocka_unit_test(close_wakes_popper),
		cmocka_unit_test(push_then_wake),
		cmocka_unit_test(pop_timeout),
		cmocka_unit_test(drain_vm),
		cmocka_unit_test(bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
