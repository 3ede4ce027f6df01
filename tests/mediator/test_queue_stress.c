/* SPDX-License-Identifier: MIT */
/*
 * test_queue_stress.c - the queue under contention: 4 pushers of 10000
 * items each (one VM slot each, retrying on VGPU_BUSY against small caps),
 * a thread that keeps changing the VMs' priority, weight and pool while
 * they push, and one popper that reports each item done. Every item comes
 * out exactly once, the caps are never exceeded, and each pusher's items
 * stay in order. Meant to be run under ThreadSanitizer too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "queue.h"
#include "vgpu_error.h"

#define PUSHERS 4
#define PER_PUSHER 10000
#define PER_VM_CAP 16
#define TOTAL_CAP 40

struct tagged {
	struct vgpu_queue_item item; /* first: a popped item is a struct tagged */
	int pusher;
	int seq;
};

struct pusher {
	struct vgpu_queue *q;
	int id;
	struct tagged *items;
	unsigned long busy;          /* refusals seen, for the curious */
	int failed;                  /* a push returned something unexpected */
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	unsigned int seed = (unsigned int)p->id * 2654435761u + 1;
	int i, rc;

	for (i = 0; i < PER_PUSHER; i++) {
		struct tagged *t = &p->items[i];

		t->pusher = p->id;
		t->seq = i;
		t->item.sched.vm_slot = (uint32_t)p->id;
		t->item.op = 1 + (int)(rand_r(&seed) % 4);
		t->item.units = 1 + rand_r(&seed) % 100000;
		while ((rc = vgpu_queue_push(p->q, &t->item)) == VGPU_BUSY) {
			p->busy++;
			sched_yield();
		}
		if (rc != VGPU_OK)
			p->failed++;
		vgpu_queue_wake(p->q); /* a push wakes nobody by itself */
	}
	return NULL;
}

static atomic_bool stop_changing;
static atomic_int change_failed;

/* Live settings changes while the others push and pop. */
static void *changer_main(void *arg)
{
	struct vgpu_queue *q = arg;
	unsigned int seed = 7;
	long n = 0;

	while (!atomic_load(&stop_changing)) {
		uint32_t vm = rand_r(&seed) % PUSHERS;

		if (vgpu_queue_set_vm(q, vm, rand_r(&seed) % 2, (int)(rand_r(&seed) % 3),
				      1 + rand_r(&seed) % 8, 0) != VGPU_OK)
			atomic_fetch_add(&change_failed, 1);
		if (++n % 16 == 0 &&
		    vgpu_queue_set_pool(q, rand_r(&seed) % 2, 1 + rand_r(&seed) % 4, 1000, 1) != VGPU_OK)
			atomic_fetch_add(&change_failed, 1);
		sched_yield();
	}
	return NULL;
}

static void stress(void **state)
{
	struct pusher pushers[PUSHERS];
	pthread_t threads[PUSHERS], changer;
	struct vgpu_sched_params prm;
	int last[PUSHERS];
	unsigned char *seen;
	struct vgpu_queue *q = NULL;
	struct vgpu_queue_item *it;
	struct tagged *t;
	int i, got = 0;
	(void)state;

	vgpu_sched_params_default(&prm);
	prm.inflight_ns = 1000; /* the popper reports each done: a small budget, exercised */
	assert_int_equal(vgpu_queue_new(PUSHERS, 2, 1, PER_VM_CAP, TOTAL_CAP, &prm, &q), VGPU_OK);
	assert_int_equal(vgpu_queue_set_pool(q, 0, 1, 1000, 1), VGPU_OK);
	assert_int_equal(vgpu_queue_set_pool(q, 1, 1, 1000, 1), VGPU_OK);
	for (i = 0; i < PUSHERS; i++)
		assert_int_equal(vgpu_queue_set_vm(q, (uint32_t)i, (uint32_t)i % 2, i % 3, 1, 0), VGPU_OK);
	seen = calloc(PUSHERS * PER_PUSHER, 1);
	assert_non_null(seen);
	for (i = 0; i < PUSHERS; i++) {
		pushers[i] = (struct pusher){ .q = q, .id = i };
		pushers[i].items = calloc(PER_PUSHER, sizeof(struct tagged));
		assert_non_null(pushers[i].items);
		last[i] = -1;
	}
	atomic_store(&stop_changing, false);
	assert_int_equal(pthread_create(&changer, NULL, changer_main, q), 0);
	for (i = 0; i < PUSHERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, pusher_main, &pushers[i]), 0);

	while (got < PUSHERS * PER_PUSHER) {
		assert_true(vgpu_queue_depth(q, -1) <= TOTAL_CAP);
		it = vgpu_queue_pop(q, 0, 5000);
		assert_non_null(it); /* 5 s without an item: something was lost */
		t = (struct tagged *)it;
		assert_in_range(t->pusher, 0, PUSHERS - 1);
		assert_in_range(t->seq, 0, PER_PUSHER - 1);
		assert_int_equal(seen[t->pusher * PER_PUSHER + t->seq], 0);
		seen[t->pusher * PER_PUSHER + t->seq] = 1;
		assert_true(t->seq > last[t->pusher]);
		last[t->pusher] = t->seq;
		vgpu_queue_done(q, it, 1000 + (uint64_t)t->seq);
		got++;
	}
	for (i = 0; i < PUSHERS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(pushers[i].failed, 0);
	}
	atomic_store(&stop_changing, true);
	assert_int_equal(pthread_join(changer, NULL), 0);
	assert_int_equal(atomic_load(&change_failed), 0);
	assert_null(vgpu_queue_pop(q, 0, 0));
	assert_int_equal(vgpu_queue_depth(q, -1), 0);
	for (i = 0; i < PUSHERS * PER_PUSHER; i++)
		assert_int_equal(seen[i], 1);

	vgpu_queue_free(q);
	for (i = 0; i < PUSHERS; i++)
		free(pushers[i].items);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
