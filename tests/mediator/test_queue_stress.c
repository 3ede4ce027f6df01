/* SPDX-License-Identifier: MIT */
/*
 * test_queue_stress.c - the queue under contention: 4 pushers of 10000
 * items each (one VM slot each, priorities mixed, retrying on VGPU_BUSY
 * against small caps) and one popper. Every item comes out exactly once, the
 * caps are never exceeded, and per pusher each priority level stays FIFO.
 * Meant to be run under ThreadSanitizer too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
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
		t->item.vm_slot = (uint32_t)p->id;
		t->item.priority = (int)(rand_r(&seed) % 3);
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

static void stress(void **state)
{
	struct pusher pushers[PUSHERS];
	pthread_t threads[PUSHERS];
	int last[PUSHERS][3];
	unsigned char *seen;
	struct vgpu_queue *q = NULL;
	struct vgpu_queue_item *it;
	struct tagged *t;
	int i, got = 0, pr;
	(void)state;

	assert_int_equal(vgpu_queue_new(PUSHERS, PER_VM_CAP, TOTAL_CAP, &q), VGPU_OK);
	seen = calloc(PUSHERS * PER_PUSHER, 1);
	assert_non_null(seen);
	for (i = 0; i < PUSHERS; i++) {
		pushers[i] = (struct pusher){ .q = q, .id = i };
		pushers[i].items = calloc(PER_PUSHER, sizeof(struct tagged));
		assert_non_null(pushers[i].items);
		for (pr = 0; pr < 3; pr++)
			last[i][pr] = -1;
	}
	for (i = 0; i < PUSHERS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, pusher_main, &pushers[i]), 0);

	while (got < PUSHERS * PER_PUSHER) {
		assert_true(vgpu_queue_depth(q, -1) <= TOTAL_CAP);
		it = vgpu_queue_pop(q, 5000);
		assert_non_null(it); /* 5 s without an item: something was lost */
		t = (struct tagged *)it;
		assert_in_range(t->pusher, 0, PUSHERS - 1);
		assert_in_range(t->seq, 0, PER_PUSHER - 1);
		assert_int_equal(seen[t->pusher * PER_PUSHER + t->seq], 0);
		seen[t->pusher * PER_PUSHER + t->seq] = 1;
		pr = it->priority;
		assert_true(t->seq > last[t->pusher][pr]);
		last[t->pusher][pr] = t->seq;
		got++;
	}
	for (i = 0; i < PUSHERS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(pushers[i].failed, 0);
	}
	assert_null(vgpu_queue_pop(q, 0));
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
